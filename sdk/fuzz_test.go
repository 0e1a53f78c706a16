package sdk

import (
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
)

// FuzzDecodeWireConfig feeds the plugin's config decoding what a host (or
// anything speaking to the plugin's socket) may send: it must report
// problems, never panic.
func FuzzDecodeWireConfig(f *testing.F) {
	for _, v := range []cty.Value{
		cty.EmptyObjectVal,
		cty.ObjectVal(map[string]cty.Value{
			"name":   cty.StringVal("x"),
			"seed":   cty.NumberIntVal(7),
			"depth":  cty.ListVal([]cty.Value{cty.NumberIntVal(1)}),
			"budget": cty.ObjectVal(map[string]cty.Value{"max_trials": cty.NumberIntVal(3), "max_wall": cty.StringVal("1m")}),
			"layer":  cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"width": cty.NumberIntVal(8)})}),
			"tags":   cty.MapVal(map[string]cty.Value{"k": cty.StringVal("v")}),
		}),
		cty.ObjectVal(map[string]cty.Value{"small": cty.NumberFloatVal(1e300), "extra": cty.DynamicVal}),
		cty.ObjectVal(map[string]cty.Value{
			"family": cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
				"kind": cty.StringVal("axis"), "knobs": cty.StringVal("{ channels = 8 * s }"),
				"size": cty.TupleVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("s"), "min": cty.NumberIntVal(1), "max": cty.NumberIntVal(32)})}),
			})}),
			"pair": cty.ObjectVal(map[string]cty.Value{"first": cty.StringVal("a"), "second": cty.NumberIntVal(2)}),
		}),
	} {
		msg, err := ctymsgpack.Marshal(v, v.Type())
		if err != nil {
			f.Fatal(err)
		}
		ty, err := ctyjson.MarshalType(v.Type())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(msg, ty)
	}
	f.Fuzz(func(t *testing.T, msg, ty []byte) {
		v, err := stagerpc.DecodeConfig(msg, ty)
		if err != nil {
			return
		}
		_, _ = decodeConfig(reflect.TypeFor[fullConfig](), v)
		if c, diags := decodeConfig(reflect.TypeFor[zooConfig](), v); !diags.HasErrors() {
			for _, f := range c.(*zooConfig).Families {
				_, _ = f.Knobs.Eval(map[string]cty.Value{"s": cty.NumberIntVal(4)})
			}
		}
	})
}

// FuzzExpression feeds the deferred-expression path what a pipeline file
// may hold: the host's substitution must never panic, and the text it
// sends must parse wherever the written expression did; the plugin's
// parsing and evaluation must never panic either.
func FuzzExpression(f *testing.F) {
	for _, src := range []string{
		"{ channels = var.base * s, layers = 1 + floor(log(s, 2)) }",
		"9 * channels * channels * layers",
		`"${var.name}-${s}" == "x"`,
		"var.list[*] + var.list.0 + var.obj[\"for\"]",
		"[for k, v in var.obj : v if k != var.name]",
		"<<EOT\n%{ for x in var.list }${x}%{ endfor }\nEOT\n",
		"var.list.*.x",
		"{ (var.name) = s, var.name = 1 }",
		"try(var.nope, s)",
		"-var.neg - -var.neg",
	} {
		f.Add(src)
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"var": cty.ObjectVal(map[string]cty.Value{
			"base": cty.NumberIntVal(8),
			"neg":  cty.NumberIntVal(-3),
			"name": cty.StringVal("a${b}%{c}\"\n"),
			"list": cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
			"obj":  cty.ObjectVal(map[string]cty.Value{"for": cty.NumberIntVal(1), "null": cty.True}),
		}),
	}}
	vars := map[string]cty.Value{"s": cty.NumberIntVal(4), "channels": cty.NumberIntVal(32), "layers": cty.NumberIntVal(3)}
	f.Fuzz(func(t *testing.T, src string) {
		written, err := ParseExpression(src)
		if err == nil {
			_, _ = written.Eval(vars)
			_ = written.Variables()
		}
		b := []byte("x = " + src + "\n")
		file, diags := hclsyntax.ParseConfig(b, "p.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			return
		}
		attrs, _ := file.Body.JustAttributes()
		a, ok := attrs["x"]
		if !ok {
			return
		}
		v, diags := describe.ExpressionValue(b, a.Expr, ctx, "var")
		if diags.HasErrors() || !v.IsKnown() || err != nil {
			return
		}
		sent, perr := ParseExpression(v.AsString())
		if perr != nil {
			t.Fatalf("%q parses, but the text sent for it, %q, does not: %v", src, v.AsString(), perr)
		}
		_, _ = sent.Eval(vars)
	})
}
