package config

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// TestEdgeKeepsThePortContract checks edges against the port contract as
// docs/plugins.md (section 3) and docs/tables.md state it, the same rule
// the SDK's writer holds a batch to (sdk.CheckSchema): each column the
// consumer declares, with its type; extra columns fine; a column the
// consumer declares non-nullable must not be declared nullable upstream.
func TestEdgeKeepsThePortContract(t *testing.T) {
	nullable := func(f arrow.Field) arrow.Field { f.Nullable = true; return f }
	tests := []struct {
		name     string
		produced []arrow.Field
		consumed []arrow.Field
		want     string // "" when the edge is fine
	}{
		{"same", []arrow.Field{i64("a")}, []arrow.Field{i64("a")}, ""},
		{"extra column", []arrow.Field{str("z"), i64("a")}, []arrow.Field{i64("a")}, ""},
		{"missing", []arrow.Field{i64("a")}, []arrow.Field{i64("a"), str("b")}, `lacks the column "b" (utf8)`},
		{"other type", []arrow.Field{i32("a")}, []arrow.Field{i64("a")}, `has the column "a" as int32 where int64 is expected`},
		{"nullable where none allowed", []arrow.Field{nullable(i64("a"))}, []arrow.Field{i64("a")}, `declares the column "a" nullable where no null is expected`},
		{"no null where nulls allowed", []arrow.Field{i64("a")}, []arrow.Field{nullable(i64("a"))}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cat := newFakeCatalog()
			cat.plugins["edge"] = &describe.PluginDescription{
				Name: "edge", Version: "0.0.1", SDKVersion: sdk.SDKVersion, ProtocolVersion: sdk.ProtocolVersion,
				Stages: []describe.StageDescription{
					{Kind: "produce", Outputs: []describe.PortDescription{{Name: "out", ArrowSchema: schemaBytes(tc.produced...)}}},
					{Kind: "consume", Inputs: []describe.PortDescription{{Name: "input", ArrowSchema: schemaBytes(tc.consumed...)}}},
				},
			}
			src := `
stage "produce" "p" {
  plugin = "edge"
}
stage "consume" "c" {
  plugin = "edge"
  input  = stage.produce.p
}
`
			l := newLoader(cat, nil)
			_, diags := l.load([]source{{name: "p.hcl", src: []byte(src)}})
			switch {
			case tc.want == "" && diags.HasErrors():
				t.Errorf("edge refused: %s", diags.Error())
			case tc.want != "" && (len(diags) != 1 || !strings.Contains(diags[0].Detail, tc.want)):
				t.Errorf("diagnostics = %v, want one saying %q", diags, tc.want)
			}
		})
	}
}
