package config

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
)

const zooPipeline = caseDir + "/valid/zoo.hcl"

// TestLoadLabelsAndDeferredExpressions loads a stage with labeled blocks
// and deferred expressions, then decodes and evaluates its config as the
// plugin does.
func TestLoadLabelsAndDeferredExpressions(t *testing.T) {
	t.Chdir(repoRoot)
	p := mustLoad(t, []string{zooPipeline})
	s := p.Stage(zooKind + ".zoo")
	if s == nil {
		t.Fatal("stage model_zoo.zoo not loaded")
	}

	t.Run("config value", func(t *testing.T) {
		null := cty.NullVal(cty.String)
		want := cty.ObjectVal(map[string]cty.Value{"family": cty.ListVal([]cty.Value{
			cty.ObjectVal(map[string]cty.Value{
				"kind": cty.StringVal("table"), "path": cty.StringVal("zoo.csv"), "name": null,
				"knobs": null, "params": null,
				"size": cty.ListValEmpty(cty.Object(map[string]cty.Type{
					"var": cty.String, "min": cty.Number, "max": cty.Number, "scale": cty.String, "integer": cty.Bool,
				})),
			}),
			cty.ObjectVal(map[string]cty.Value{
				"kind": cty.StringVal("axis"), "path": null, "name": cty.StringVal("convnet"),
				// var.base and local.min_layers are the host's: their values
				// stand in the text; s, channels and layers are the plugin's.
				"knobs":  cty.StringVal("{ channels = 8 * s, layers = 1 + floor(log(s, 2)) }"),
				"params": cty.StringVal("9 * channels * channels * layers"),
				"size": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
					"var": cty.StringVal("s"), "min": cty.NumberIntVal(1), "max": cty.NumberIntVal(32),
					"scale": cty.StringVal("log"), "integer": cty.True,
				})}),
			}),
		})})
		if diff := cmp.Diff(want, s.Config, ctyEqual); diff != "" {
			t.Errorf("config (-want +got):\n%s\ngot %#v", diff, s.Config)
		}
	})

	t.Run("attribute ranges", func(t *testing.T) {
		src, err := os.ReadFile(zooPipeline)
		if err != nil {
			t.Fatal(err)
		}
		text := func(path string) string {
			r, ok := s.AttrRanges[path]
			if !ok {
				return "<missing>"
			}
			return string(src[r.Start.Byte:r.End.Byte])
		}
		got := map[string]string{}
		for _, path := range []string{"family.1.knobs", "family.1.params", "family.0.kind", "family.kind", "family.1.kind",
			"family.1.size.0.var", "family.1.size.0.max", "family.1"} {
			got[path] = text(path)
		}
		want := map[string]string{
			"family.1.knobs":      "{ channels = var.base * s, layers = local.min_layers + floor(log(s, 2)) }",
			"family.1.params":     "9 * channels * channels * layers",
			"family.0.kind":       `"table"`,
			"family.kind":         `"table"`,
			"family.1.kind":       `"axis"`,
			"family.1.size.0.var": `"s"`,
			"family.1.size.0.max": "32",
			"family.1":            `family "axis"`,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("AttrRanges (-want +got):\n%s", diff)
		}
	})

	t.Run("plugin side", func(t *testing.T) {
		st, diags := zooSet().NewStage(zooKind, s.Config)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		cfg := st.(*zooStage).cfg
		if len(cfg.Families) != 2 || cfg.Families[0].Kind != "table" || cfg.Families[1].Kind != "axis" || cfg.Families[1].Sizes[0].Var != "s" {
			t.Fatalf("decoded config = %+v", cfg)
		}
		axis := cfg.Families[1]
		if diff := cmp.Diff([]string{"s"}, axis.Knobs.Variables()); diff != "" {
			t.Errorf("knobs variables (-want +got):\n%s", diff)
		}
		knobs, err := axis.Knobs.Eval(map[string]cty.Value{"s": cty.NumberIntVal(4)})
		if err != nil {
			t.Fatal(err)
		}
		// 8 * 4 channels; log2(4) is 2, so 1 + 2 layers.
		want := cty.ObjectVal(map[string]cty.Value{"channels": cty.NumberIntVal(32), "layers": cty.NumberIntVal(3)})
		if !knobs.Equals(want).True() {
			t.Errorf("knobs(s=4) = %#v, want %#v", knobs, want)
		}
		params, err := axis.Params.Eval(knobs.AsValueMap())
		if err != nil {
			t.Fatal(err)
		}
		// 9 * 32 * 32 * 3
		if !params.Equals(cty.NumberIntVal(27648)).True() {
			t.Errorf("params = %#v, want 27648", params)
		}

		// A name the plugin does not supply is the plugin's diagnostic,
		// at the attribute's path, which the host maps to its range.
		_, err = axis.Knobs.Eval(map[string]cty.Value{"t": cty.NumberIntVal(4)})
		if err == nil || !strings.Contains(err.Error(), "family.1.knobs: Unknown variable") {
			t.Errorf("knobs without s: %v", err)
		}
	})
}

// TestDeferredSubstitution covers the values the host writes into a
// deferred expression: from -var, typed collections, strings that look like
// templates, and what it must refuse.
func TestDeferredSubstitution(t *testing.T) {
	pipeline := func(knobs string) string {
		return `
variable "widths" {
  type    = list(number)
  default = [4, 8]
}
variable "label" {
  default = "conv"
}
variable "n" {
  type    = number
  default = 2
}
variable "secret" {
  default   = 3
  sensitive = true
}
locals {
  sizes = { small = 1, large = var.n * 10 }
  inf   = log(0, 2)
  half  = var.secret / 2
}
stage "model_zoo" "z" {
  family "axis" {
    knobs = ` + knobs + `
  }
}
`
	}
	tests := []struct {
		name, knobs string
		opts        []LoadOption
		want        string // the text sent; "" when loading fails
		diags       []string
	}{
		{"number from -var", "{ c = var.n * s }", []LoadOption{WithVars(map[string]string{"n": "3"})}, "{ c = 3 * s }", nil},
		{"list and index", "{ w = var.widths[1] * s, all = var.widths }", nil, "{ w = 8 * s, all = ([4, 8]) }", nil},
		{"local object", "local.sizes.large + s", nil, "20 + s", nil},
		{"template-like string", `"${var.label}-${s}"`, []LoadOption{WithVars(map[string]string{"label": "a${b}"})}, `"${"a$${b}"}-${s}"`, nil},
		{"plugin names only", "s * channels", nil, "s * channels", nil},
		{"undeclared variable", "var.widht * s", nil, "", []string{"Reference to undeclared input variable"}},
		{"stage reference", "stage.model_zoo.z + s", nil, "", []string{"Reference to a stage in a config value"}},
		{"infinite local", "local.inf * s", nil, "", []string{"Value cannot be written in an expression"}},
		{"sensitive", "var.secret * local.half * s", nil, "", []string{"Sensitive value in a deferred expression", "Sensitive value in a deferred expression"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoader(newFakeCatalog(), tt.opts)
			src := pipeline(tt.knobs)
			p, diags := l.load([]source{{name: "p.hcl", src: []byte(src)}})
			checkRanges(t, p.Files, diags)
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
				// Every refusal points into the knobs expression.
				if r := d.Subject; r == nil || !strings.Contains(tt.knobs, src[r.Start.Byte:r.End.Byte]) {
					t.Errorf("%q does not point into the expression: %v", d.Summary, d.Subject)
				}
			}
			if diff := cmp.Diff(tt.diags, got); diff != "" {
				t.Fatalf("diagnostics (-want +got):\n%s\n%s", diff, render(p.Files, diags))
			}
			if tt.want == "" {
				return
			}
			knobs := p.Stage(zooKind + ".z").Config.GetAttr("family").Index(cty.NumberIntVal(0)).GetAttr("knobs")
			if !knobs.RawEquals(cty.StringVal(tt.want)) {
				t.Errorf("knobs sent as %#v, want %q", knobs, tt.want)
			}
		})
	}
}
