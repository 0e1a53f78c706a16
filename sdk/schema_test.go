package sdk_test

import (
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
)

// schemaCases are port schemas and batches, with the verdict the port
// contract gives (docs/plugins.md, section 3: each declared column present
// with its type, extra columns fine; docs/tables.md: a column that allows
// no null). They were judged differently by the SDK's writer (which ignored
// nullability) and the first-party test harness (which wanted nullability
// equal both ways).
var schemaCases = []struct {
	name     string
	declared []arrow.Field
	got      []arrow.Field
	ok       bool
}{
	{"same", []arrow.Field{i64f("a", false), strf("b", true)}, []arrow.Field{i64f("a", false), strf("b", true)}, true},
	{"extra column", []arrow.Field{i64f("a", false)}, []arrow.Field{strf("z", true), i64f("a", false)}, true},
	{"other order", []arrow.Field{i64f("a", false), strf("b", false)}, []arrow.Field{strf("b", false), i64f("a", false)}, true},
	{"missing column", []arrow.Field{i64f("a", false), strf("b", false)}, []arrow.Field{i64f("a", false)}, false},
	{"other type", []arrow.Field{i64f("a", false)}, []arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int32}}, false},
	{"nullable where none allowed", []arrow.Field{i64f("a", false)}, []arrow.Field{i64f("a", true)}, false},
	{"no null where nulls allowed", []arrow.Field{i64f("a", true)}, []arrow.Field{i64f("a", false)}, true},
}

func i64f(name string, nullable bool) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64, Nullable: nullable}
}

func strf(name string, nullable bool) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: nullable}
}

func TestCheckSchema(t *testing.T) {
	for _, tc := range schemaCases {
		t.Run(tc.name, func(t *testing.T) {
			gap := sdk.CheckSchema(arrow.NewSchema(tc.declared, nil), arrow.NewSchema(tc.got, nil))
			if gap.OK() != tc.ok {
				t.Errorf("OK() = %t, want %t (problems %q)", gap.OK(), tc.ok, gap.Problems())
			}
			if gap.OK() != (len(gap.Problems()) == 0) {
				t.Errorf("OK() = %t with problems %q", gap.OK(), gap.Problems())
			}
		})
	}
	if gap := sdk.CheckSchema(nil, arrow.NewSchema(nil, nil)); !gap.OK() {
		t.Errorf("a port without a schema takes any batch, got %q", gap.Problems())
	}
}

// writeOne writes one empty batch of its schema to port "out".
type writeOne struct{ schema *arrow.Schema }

func (w writeOne) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	wr, err := out.Writer("out")
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(sdk.Allocator(ctx), w.schema)
	defer b.Release()
	rec := b.NewRecordBatch()
	defer rec.Release()
	return wr.Write(rec)
}

// TestWriterKeepsThePortContract runs the same cases through the SDK's
// writer over the wire: it refuses exactly the batches CheckSchema does.
func TestWriterKeepsThePortContract(t *testing.T) {
	for _, tc := range schemaCases {
		t.Run(tc.name, func(t *testing.T) {
			set := sdk.NewSet(sdk.WithName("schema"))
			sdk.Register(set, "w", sdk.StageInfo{
				Description: "Writes one batch.",
				Outputs:     []sdk.Port{{Name: "out", Schema: arrow.NewSchema(tc.declared, nil)}},
			}, func(struct{}) (sdk.Stage, error) { return writeOne{arrow.NewSchema(tc.got, nil)}, nil })
			p := sdktest.Start(t, set)
			col := sdktest.NewCollector()
			defer col.Release()
			_, err := p.Run(context.Background(), stagehost.RunRequest{Kind: "w", Stage: "w.t",
				Outputs: map[string]func(arrow.RecordBatch) error{"out": col.Port("out")}})
			if refused := errors.Is(err, sdk.ErrSchemaMismatch); refused == tc.ok {
				t.Errorf("Run error = %v, want refused %t", err, !tc.ok)
			}
		})
	}
}

// TestNestingIsStated: describe states a block's nesting, "single" or
// "list"; a schema that leaves it unset is refused alike by the hcldec
// spec a host decodes with and by the config's implied type.
func TestNestingIsStated(t *testing.T) {
	s := describe.ConfigSchema{Blocks: []describe.BlockSchema{{Name: "b"}}}
	spec, problems := s.Spec()
	if len(problems) != 1 || spec["b"] != nil {
		t.Errorf("Spec problems = %q, spec = %v; want the block refused", problems, spec)
	}
	if _, err := s.ImpliedType(); err == nil {
		t.Error("ImpliedType accepts a block without nesting")
	}
}
