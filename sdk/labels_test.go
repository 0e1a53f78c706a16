package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/zclconf/go-cty/cty"
)

// The shape the model_choice stage plans: families told apart by a label,
// each with a labeled size axis and deferred formulas.

type zooAxis struct {
	Name    string  `hcl:"name,label"`
	Min     float64 `hcl:"min"`
	Max     float64 `hcl:"max"`
	Scale   string  `hcl:"scale,optional"`
	Integer bool    `hcl:"integer,optional"`
}

type zooFamily struct {
	Kind   string      `hcl:"kind,label" doc:"How the family is given."`
	Path   string      `hcl:"path,optional"`
	Name   string      `hcl:"name,optional"`
	Axes   []zooAxis   `hcl:"size,block"`
	Knobs  Expression  `hcl:"knobs,optional" doc:"Knobs of a candidate."`
	Params *Expression `hcl:"params,optional"`
}

type zooPair struct {
	First  string `hcl:"first,label"`
	Second string `hcl:"second,label"`
	N      int    `hcl:"n,optional"`
}

type zooConfig struct {
	Families []zooFamily `hcl:"family,block"`
	Pair     *zooPair    `hcl:"pair,block"`
}

func TestLabelAndExpressionSchema(t *testing.T) {
	got, err := configSchemaOf(reflect.TypeFor[zooConfig]())
	if err != nil {
		t.Fatal(err)
	}
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	want := describe.ConfigSchema{Blocks: []describe.BlockSchema{
		{Name: "family", Nesting: describe.NestingList, Labels: []string{"kind"}, Body: describe.ConfigSchema{
			Attributes: []describe.AttributeSchema{
				{Name: "path", Type: raw(`"string"`)},
				{Name: "name", Type: raw(`"string"`)},
				{Name: "knobs", Type: raw(`"string"`), Description: "Knobs of a candidate.", Expression: true},
				{Name: "params", Type: raw(`"string"`), Expression: true},
			},
			Blocks: []describe.BlockSchema{{Name: "size", Nesting: describe.NestingList, Labels: []string{"name"}, Body: describe.ConfigSchema{
				Attributes: []describe.AttributeSchema{
					{Name: "min", Type: raw(`"number"`), Required: true},
					{Name: "max", Type: raw(`"number"`), Required: true},
					{Name: "scale", Type: raw(`"string"`)},
					{Name: "integer", Type: raw(`"bool"`)},
				},
			}}},
		}},
		{Name: "pair", Nesting: describe.NestingSingle, Labels: []string{"first", "second"}, Body: describe.ConfigSchema{
			Attributes: []describe.AttributeSchema{{Name: "n", Type: raw(`"number"`)}},
		}},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}

	// The JSON a host reads names the labels and marks the expressions.
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{`"labels":["kind"]`, `"labels":["first","second"]`, `"name":"knobs","type":"string","description":"Knobs of a candidate.","expression":true`} {
		if !strings.Contains(string(js), frag) {
			t.Errorf("schema JSON lacks %s:\n%s", frag, js)
		}
	}

	ty, err := got.ImpliedType()
	if err != nil {
		t.Fatal(err)
	}
	axis := cty.Object(map[string]cty.Type{"name": cty.String, "min": cty.Number, "max": cty.Number, "scale": cty.String, "integer": cty.Bool})
	wantTy := cty.Object(map[string]cty.Type{
		"family": cty.List(cty.Object(map[string]cty.Type{
			"kind": cty.String, "path": cty.String, "name": cty.String, "knobs": cty.String, "params": cty.String,
			"size": cty.List(axis),
		})),
		"pair": cty.Object(map[string]cty.Type{"first": cty.String, "second": cty.String, "n": cty.Number}),
	})
	if !ty.Equals(wantTy) {
		t.Errorf("implied type\n%#v\nwant\n%#v", ty, wantTy)
	}
}

func TestLabelAndExpressionSchemaErrors(t *testing.T) {
	type labelInAttr struct {
		O struct {
			L string `hcl:"l,label"`
		} `hcl:"o"`
	}
	type intLabel struct {
		B []struct {
			L int `hcl:"l,label"`
		} `hcl:"b,block"`
	}
	type labelClash struct {
		B []struct {
			L string `hcl:"x,label"`
			X string `hcl:"x"`
		} `hcl:"b,block"`
	}
	type exprList struct {
		E []Expression `hcl:"e"`
	}
	type exprMap struct {
		E map[string]Expression `hcl:"e"`
	}
	type exprInAttr struct {
		O struct {
			E Expression `hcl:"e"`
		} `hcl:"o"`
	}
	tests := []struct {
		name string
		typ  reflect.Type
		want string
	}{
		{"label in an attribute struct", reflect.TypeFor[labelInAttr](), "label fields are only allowed in the struct of a block"},
		{"label not a string", reflect.TypeFor[intLabel](), "a label field must be a string, not int"},
		{"label named like an attribute", reflect.TypeFor[labelClash](), `duplicate hcl name "x"`},
		{"expression list", reflect.TypeFor[exprList](), "sdk.Expression must be the type of an attribute field itself"},
		{"expression map", reflect.TypeFor[exprMap](), "sdk.Expression must be the type of an attribute field itself"},
		{"expression in an attribute struct", reflect.TypeFor[exprInAttr](), "not of a struct used as an attribute value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := configSchemaOf(tt.typ)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	// Register reports the same as a panic, the first time the plugin starts.
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(r.(string), "label fields are only allowed") {
				t.Errorf("Register panic = %v", r)
			}
		}()
		type top struct {
			L string `hcl:"l,label"`
		}
		Register(NewSet(), "k", StageInfo{}, func(top) (Stage, error) { return nil, nil })
	}()
}

func TestDecodeLabelsAndExpressions(t *testing.T) {
	obj := func(m map[string]cty.Value) cty.Value { return cty.ObjectVal(m) }
	axis := obj(map[string]cty.Value{
		"name": cty.StringVal("s"), "min": cty.NumberIntVal(1), "max": cty.NumberIntVal(32),
		"scale": cty.StringVal("log"), "integer": cty.True,
	})
	in := obj(map[string]cty.Value{
		"family": cty.TupleVal([]cty.Value{
			obj(map[string]cty.Value{"kind": cty.StringVal("table"), "path": cty.StringVal("zoo.csv")}),
			obj(map[string]cty.Value{
				"kind": cty.StringVal("axis"), "name": cty.StringVal("convnet"),
				"size":   cty.TupleVal([]cty.Value{axis}),
				"knobs":  cty.StringVal("{ channels = 8 * s }"),
				"params": cty.StringVal("9 * channels * channels"),
			}),
		}),
		"pair": obj(map[string]cty.Value{"first": cty.StringVal("a"), "second": cty.StringVal("b")}),
	})
	got, diags := decodeConfig(reflect.TypeFor[zooConfig](), in)
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	c := got.(*zooConfig)
	if len(c.Families) != 2 {
		t.Fatalf("%d families, want 2", len(c.Families))
	}
	table, ax := c.Families[0], c.Families[1]
	if table.Kind != "table" || table.Path != "zoo.csv" || table.Knobs.Source() != "" || table.Params != nil {
		t.Errorf("table family = %+v", table)
	}
	if ax.Kind != "axis" || ax.Name != "convnet" || len(ax.Axes) != 1 {
		t.Fatalf("axis family = %+v", ax)
	}
	if diff := cmp.Diff(zooAxis{Name: "s", Min: 1, Max: 32, Scale: "log", Integer: true}, ax.Axes[0]); diff != "" {
		t.Errorf("size axis (-want +got):\n%s", diff)
	}
	if ax.Knobs.Source() != "{ channels = 8 * s }" || ax.Params == nil || ax.Params.Source() != "9 * channels * channels" {
		t.Errorf("expressions: knobs %q, params %v", ax.Knobs.Source(), ax.Params)
	}
	if diff := cmp.Diff([]string{"family", "1", "knobs"}, ax.Knobs.Path()); diff != "" {
		t.Errorf("knobs path (-want +got):\n%s", diff)
	}
	if c.Pair == nil || c.Pair.First != "a" || c.Pair.Second != "b" {
		t.Errorf("pair = %+v", c.Pair)
	}

	// The plugin evaluates what it received: 8 * 4 channels, then
	// 9 * 32 * 32 parameters.
	knobs, err := ax.Knobs.Eval(map[string]cty.Value{"s": cty.NumberIntVal(4)})
	if err != nil {
		t.Fatal(err)
	}
	if want := obj(map[string]cty.Value{"channels": cty.NumberIntVal(32)}); !knobs.RawEquals(want) {
		t.Errorf("knobs = %#v, want %#v", knobs, want)
	}
	params, err := ax.Params.Eval(map[string]cty.Value{"channels": knobs.GetAttr("channels")})
	if err != nil {
		t.Fatal(err)
	}
	if !params.RawEquals(cty.NumberIntVal(9216)) {
		t.Errorf("params = %#v, want 9216", params)
	}
}

func TestDecodeLabelsAndExpressionsErrors(t *testing.T) {
	family := func(m map[string]cty.Value) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"family": cty.TupleVal([]cty.Value{cty.ObjectVal(m)})})
	}
	tests := []struct {
		name  string
		in    cty.Value
		diags []string // "path: summary"
		// detail is part of the first diagnostic's detail.
		detail string
	}{
		{"missing label", family(map[string]cty.Value{"path": cty.StringVal("x")}),
			[]string{"family.0.kind: Missing block label"}, `no "kind" label`},
		{"syntax error", family(map[string]cty.Value{"kind": cty.StringVal("axis"), "knobs": cty.StringVal("8 *")}),
			[]string{"family.0.knobs: Invalid expression"}, "Missing expression: Expected the start of an expression"},
		{"unknown function", family(map[string]cty.Value{"kind": cty.StringVal("axis"), "knobs": cty.StringVal("flor(log(s, 2))")}),
			[]string{"family.0.knobs: Invalid expression"}, "calls \"flor\", which is not a function"},
		{"empty", family(map[string]cty.Value{"kind": cty.StringVal("axis"), "knobs": cty.StringVal("  ")}),
			[]string{"family.0.knobs: Invalid expression"}, "empty"},
		{"not a string", family(map[string]cty.Value{"kind": cty.StringVal("axis"), "knobs": cty.ListValEmpty(cty.Number)}),
			[]string{"family.0.knobs: Incorrect attribute value type"}, "string (the source of an expression) required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := decodeConfig(reflect.TypeFor[zooConfig](), tt.in)
			var got []string
			for _, d := range diags {
				got = append(got, strings.Join(d.Path, ".")+": "+d.Summary)
			}
			if diff := cmp.Diff(tt.diags, got); diff != "" {
				t.Fatalf("diagnostics (-want +got):\n%s\n%v", diff, diags)
			}
			if !strings.Contains(diags[0].Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", diags[0].Detail, tt.detail)
			}
		})
	}
}

// TestSpecDecodesLabeledBlocks decodes HCL the way a host does (Spec,
// describe.DeferExpressions, hcldec) and then the way the plugin does.
func TestSpecDecodesLabeledBlocks(t *testing.T) {
	schema, err := configSchemaOf(reflect.TypeFor[zooConfig]())
	if err != nil {
		t.Fatal(err)
	}
	spec, problems := schema.Spec()
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	decode := func(t *testing.T, src string) (cty.Value, hcl.Diagnostics) {
		t.Helper()
		f, diags := hclsyntax.ParseConfig([]byte(src), "p.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
			"var": cty.ObjectVal(map[string]cty.Value{"base": cty.NumberIntVal(8)}),
		}}
		var paths []string
		body := describe.DeferExpressions(f.Body, schema, func(path []string, expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
			paths = append(paths, strings.Join(path, "."))
			return describe.ExpressionValue(f.Bytes, expr, ctx, "var")
		})
		v, diags := hcldec.Decode(body, spec, ctx)
		if !diags.HasErrors() {
			if diff := cmp.Diff([]string{"family.1.knobs"}, paths); diff != "" {
				t.Errorf("deferred paths (-want +got):\n%s", diff)
			}
		}
		return v, diags
	}

	v, diags := decode(t, `
family "table" {
  path = "zoo.csv"
}
family "axis" {
  name = "convnet"
  size "s" {
    min     = 1
    max     = 32
    integer = true
  }
  knobs = { channels = var.base * s }
}
pair "a" "b" {}
`)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got, ds := decodeConfig(reflect.TypeFor[zooConfig](), v)
	if len(ds) > 0 {
		t.Fatal(ds)
	}
	c := got.(*zooConfig)
	if len(c.Families) != 2 || c.Families[0].Kind != "table" || c.Families[1].Kind != "axis" || c.Families[1].Axes[0].Name != "s" {
		t.Fatalf("config = %+v", c)
	}
	if got, want := c.Families[1].Knobs.Source(), "{ channels = 8 * s }"; got != want {
		t.Errorf("knobs source = %q, want %q", got, want)
	}
	if c.Pair == nil || c.Pair.First != "a" || c.Pair.Second != "b" {
		t.Errorf("pair = %+v", c.Pair)
	}

	// hcldec enforces the label count with its own diagnostics, each at
	// the block header.
	for _, tc := range []struct{ name, src, summary, subject string }{
		{"missing label", "family {\n  path = \"x\"\n}\n", "Missing kind for family", "{"},
		{"extra label", "family \"table\" \"more\" {\n  path = \"x\"\n}\n", "Extraneous label for family", `"more"`},
		{"one of two labels", "pair \"a\" {}\n", "Missing second for pair", "{"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := decode(t, tc.src)
			if len(diags) != 1 || diags[0].Summary != tc.summary || diags[0].Subject == nil {
				t.Fatalf("diagnostics = %v, want one %q", diags, tc.summary)
			}
			r := diags[0].Subject
			if got := tc.src[r.Start.Byte:r.End.Byte]; got != tc.subject {
				t.Errorf("subject %q, want %q", got, tc.subject)
			}
		})
	}
}

func TestSpecProblems(t *testing.T) {
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	schema := describe.ConfigSchema{
		Attributes: []describe.AttributeSchema{{Name: "e", Type: raw(`"number"`), Expression: true}},
		Blocks: []describe.BlockSchema{
			{Name: "b", Nesting: describe.NestingList, Labels: []string{"x"}, Body: describe.ConfigSchema{
				Attributes: []describe.AttributeSchema{{Name: "x", Type: raw(`"string"`)}},
			}},
			{Name: "c", Nesting: describe.NestingSingle, Labels: []string{""}},
			{Name: "ok", Nesting: describe.NestingList, Required: true, Labels: []string{"l"}, Body: describe.ConfigSchema{
				Attributes: []describe.AttributeSchema{{Name: "n", Type: raw(`"number"`), Required: true}},
			}},
		},
	}
	spec, problems := schema.Spec()
	want := []string{
		`"e" is an expression, whose type must be string, not number`,
		`the label "x" of the block "b" is empty or named like another label, attribute or block of it`,
		`the label "" of the block "c" is empty or named like another label, attribute or block of it`,
	}
	if diff := cmp.Diff(want, problems); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if len(spec) != 1 {
		t.Fatalf("spec keeps %d entries, want only ok", len(spec))
	}
	ok := spec["ok"].(*hcldec.BlockListSpec)
	if ok.MinItems != 1 || !ok.Nested.(hcldec.ObjectSpec)["n"].(*hcldec.AttrSpec).Required {
		t.Error("a host's spec must enforce required blocks and attributes")
	}
	if label, _ := ok.Nested.(hcldec.ObjectSpec)["l"].(*hcldec.BlockLabelSpec); label == nil || label.Index != 0 || label.Name != "l" {
		t.Errorf("label spec = %#v", ok.Nested.(hcldec.ObjectSpec)["l"])
	}
}
