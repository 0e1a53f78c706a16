package sdktest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
)

type limits struct {
	MaxTrials *int           `hcl:"max_trials,optional"`
	MaxWall   *time.Duration `hcl:"max_wall,optional"`
}

type rangeObj struct {
	Min int `hcl:"min"`
	Max int `hcl:"max"`
}

type fullConfig struct {
	Name    string            `hcl:"name"`
	Rate    *float64          `hcl:"rate,optional"`
	Depth   []int             `hcl:"depth,optional"`
	Width   *rangeObj         `hcl:"width,optional"`
	Labels  map[string]string `hcl:"labels,optional"`
	Budget  *limits           `hcl:"budget,block"`
	Rules   []rangeObj        `hcl:"rule,block"`
	Ignored string
}

func fullSchema(t *testing.T) describe.ConfigSchema {
	t.Helper()
	set := sdk.NewSet(sdk.WithName("cfg"))
	sdk.Register(set, "full", sdk.StageInfo{Description: "d"}, func(fullConfig) (sdk.Stage, error) { return nil, nil })
	return set.Describe().Stage("full").Config
}

func TestConfigValue(t *testing.T) {
	schema := fullSchema(t)
	budget := cty.ObjectVal(map[string]cty.Value{"max_trials": cty.NumberIntVal(4), "max_wall": cty.StringVal("15m0s")})
	tests := []struct {
		name   string
		config any
		want   cty.Value
	}{
		{"nil", nil, cty.EmptyObjectVal},
		{"struct, unset fields left out", fullConfig{Name: "a", Budget: &limits{MaxTrials: ptr(4), MaxWall: ptr(15 * time.Minute)}},
			cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("a"), "budget": budget})},
		{"struct, every form", fullConfig{Name: "b", Rate: ptr(0.5), Depth: []int{1, 2}, Width: &rangeObj{Min: 4, Max: 8},
			Labels: map[string]string{"k": "v"}, Rules: []rangeObj{{Min: 1, Max: 2}}},
			cty.ObjectVal(map[string]cty.Value{
				"name": cty.StringVal("b"), "rate": cty.NumberFloatVal(0.5),
				"depth":  cty.TupleVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
				"width":  cty.ObjectVal(map[string]cty.Value{"min": cty.NumberIntVal(4), "max": cty.NumberIntVal(8)}),
				"labels": cty.ObjectVal(map[string]cty.Value{"k": cty.StringVal("v")}),
				"rule":   cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"min": cty.NumberIntVal(1), "max": cty.NumberIntVal(2)})}),
			})},
		{"map", map[string]any{"name": "c", "rate": 2}, cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("c"), "rate": cty.NumberIntVal(2)})},
		{"cty value", cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("d")}), cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("d")})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sdktest.ConfigValue(schema, tc.config)
			if err != nil {
				t.Fatal(err)
			}
			if !got.RawEquals(tc.want) {
				t.Errorf("ConfigValue =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

// The HCL form decodes as the host decodes a stage body: every attribute
// and block of the schema is present, null when unset.
func TestConfigValueHCL(t *testing.T) {
	schema := fullSchema(t)
	got, err := sdktest.ConfigValue(schema, `
name  = "e"
depth = [1, 2]
width = { min = 4, max = 8 }
budget {
  max_wall = "1h"
}
rule {
  min = 1
  max = 2
}
`)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]cty.Value{
		"name":            cty.StringVal("e"),
		"rate":            cty.NullVal(cty.Number),
		"depth":           cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
		"budget.max_wall": cty.StringVal("1h"),
	}
	for path, want := range checks {
		v := got
		for _, name := range strings.Split(path, ".") {
			v = v.GetAttr(name)
		}
		if !v.RawEquals(want) {
			t.Errorf("%s = %#v, want %#v", path, v, want)
		}
	}
	if n := got.GetAttr("rule").LengthInt(); n != 1 {
		t.Errorf("%d rule blocks, want 1", n)
	}
}

func TestConfigValueErrors(t *testing.T) {
	schema := fullSchema(t)
	tests := []struct {
		name   string
		config any
		want   string
	}{
		{"unknown attribute", map[string]any{"nmae": "x"}, "config sets nmae, which the stage does not declare (it declares budget, depth, labels, name, rate, rule, width)"},
		{"unknown in cty", cty.ObjectVal(map[string]cty.Value{"nmae": cty.True}), "config sets nmae"},
		{"unknown value", cty.ObjectVal(map[string]cty.Value{"name": cty.UnknownVal(cty.String)}), "not wholly known"},
		{"not an object", 42, "config must be a struct, a map or an object, not int"},
		{"HCL syntax", `name = `, "config HCL: "},
		{"HCL unknown attribute", `nmae = "x"`, `Unsupported argument; An argument named "nmae" is not expected here. Did you mean "name"?`},
		// The host refuses a block without a required attribute before the
		// plugin sees it (docs/plugins.md, section 5), and so does sdktest.
		{"HCL missing required", `rate = 1`, `Missing required argument; The argument "name" is required`},
		{"function", func() {}, "cannot express a func() as a config value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sdktest.ConfigValue(schema, tc.config)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ConfigValue error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

type axis struct {
	Name string  `hcl:"name,label"`
	Min  float64 `hcl:"min"`
	Max  float64 `hcl:"max"`
}

type family struct {
	Kind  string         `hcl:"kind,label"`
	Path  string         `hcl:"path,optional"`
	Sizes []axis         `hcl:"size,block"`
	Knobs sdk.Expression `hcl:"knobs,optional"`
}

type zooConfig struct {
	Families []family `hcl:"family,block"`
}

func zooSchema(t *testing.T) describe.ConfigSchema {
	t.Helper()
	set := sdk.NewSet(sdk.WithName("cfg"))
	sdk.Register(set, "zoo", sdk.StageInfo{Description: "d"}, func(zooConfig) (sdk.Stage, error) { return nil, nil })
	return set.Describe().Stage("zoo").Config
}

// Labels and deferred expressions decode as the host decodes them: the
// label is an attribute of the block's object, the expression its source.
func TestConfigValueLabelsAndExpressions(t *testing.T) {
	schema := zooSchema(t)
	got, err := sdktest.ConfigValue(schema, `
family "table" {
  path = "zoo.csv"
}
family "axis" {
  size "s" {
    min = 1
    max = 32
  }
  knobs = { channels = 8 * s }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	fams := got.GetAttr("family").AsValueSlice()
	if len(fams) != 2 {
		t.Fatalf("%d family blocks, want 2", len(fams))
	}
	checks := map[string]cty.Value{
		"0 kind":  fams[0].GetAttr("kind"),
		"1 kind":  fams[1].GetAttr("kind"),
		"1 knobs": fams[1].GetAttr("knobs"),
		"1 size":  fams[1].GetAttr("size").Index(cty.NumberIntVal(0)).GetAttr("name"),
		"0 knobs": fams[0].GetAttr("knobs"),
	}
	want := map[string]cty.Value{
		"0 kind":  cty.StringVal("table"),
		"1 kind":  cty.StringVal("axis"),
		"1 knobs": cty.StringVal("{ channels = 8 * s }"),
		"1 size":  cty.StringVal("s"),
		"0 knobs": cty.NullVal(cty.String),
	}
	for k, v := range want {
		if !checks[k].RawEquals(v) {
			t.Errorf("family %s = %#v, want %#v", k, checks[k], v)
		}
	}

	// A missing label is an HCL error, as in a pipeline.
	if _, err := sdktest.ConfigValue(schema, "family {\n}\n"); err == nil || !strings.Contains(err.Error(), "Missing kind for family") {
		t.Errorf("missing label: error = %v", err)
	}

	// The Go form: labels as the attributes they are, expressions as
	// their source, an unset expression left out.
	knobs, err := sdk.ParseExpression("{ channels = 8 * s }")
	if err != nil {
		t.Fatal(err)
	}
	v, err := sdktest.ConfigValue(schema, zooConfig{Families: []family{{Kind: "table", Path: "zoo.csv"}, {Kind: "axis", Knobs: knobs}}})
	if err != nil {
		t.Fatal(err)
	}
	wantGo := cty.ObjectVal(map[string]cty.Value{"family": cty.TupleVal([]cty.Value{
		cty.ObjectVal(map[string]cty.Value{"kind": cty.StringVal("table"), "path": cty.StringVal("zoo.csv")}),
		cty.ObjectVal(map[string]cty.Value{"kind": cty.StringVal("axis"), "path": cty.StringVal(""), "knobs": cty.StringVal("{ channels = 8 * s }")}),
	})})
	if !v.RawEquals(wantGo) {
		t.Errorf("ConfigValue(struct) =\n%#v\nwant\n%#v", v, wantGo)
	}
}
