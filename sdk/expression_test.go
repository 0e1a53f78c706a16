package sdk

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

func mustParse(t *testing.T, src string) Expression {
	t.Helper()
	e, err := ParseExpression(src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestExpressionEval(t *testing.T) {
	n := cty.NumberIntVal
	tests := []struct {
		src  string
		vars map[string]cty.Value
		want cty.Value
	}{
		{"{ channels = 8 * s }", map[string]cty.Value{"s": n(4)}, cty.ObjectVal(map[string]cty.Value{"channels": n(32)})},
		// log2(5) is 2.32..., so one more than its floor is 3.
		{"1 + floor(log(s, 2))", map[string]cty.Value{"s": n(5)}, n(3)},
		{"9 * channels * channels * layers", map[string]cty.Value{"channels": n(16), "layers": n(3)}, n(6912)},
		{"ceil(pow(s, 0.5))", map[string]cty.Value{"s": n(10)}, n(4)},
		{"max(1, min(s, 8))", map[string]cty.Value{"s": n(20)}, n(8)},
		{"abs(signum(-s))", map[string]cty.Value{"s": n(3)}, n(1)},
		{"floor(x + 0.5)", map[string]cty.Value{"x": cty.NumberFloatVal(2.5)}, n(3)},
		{"[for i in range(k) : i * s]", map[string]cty.Value{"k": n(3), "s": n(2)}, cty.TupleVal([]cty.Value{n(0), n(2), n(4)})},
		{"42", nil, n(42)},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			got, err := mustParse(t, tt.src).Eval(tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if !got.RawEquals(tt.want) && !got.Equals(tt.want).True() {
				t.Errorf("Eval = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestExpressionEvalErrors(t *testing.T) {
	withPath, err := parseExpression("8 * t", []string{"family", "1", "knobs"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		e       Expression
		vars    map[string]cty.Value
		path    []string
		summary string
		detail  string
	}{
		{"unknown variable", withPath, map[string]cty.Value{"s": cty.NumberIntVal(4)},
			[]string{"family", "1", "knobs"}, "Unknown variable", "There is no variable named \"t\"."},
		{"wrong type", mustParse(t, "s * 2"), map[string]cty.Value{"s": cty.StringVal("big")},
			nil, "Invalid operand", "`s * 2`"},
		{"unknown value", mustParse(t, "s * 2"), map[string]cty.Value{"s": cty.UnknownVal(cty.Number)},
			nil, "Value not known", "`s * 2`"},
		{"zero expression", Expression{}, nil, nil, "No expression", "not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.e.Eval(tt.vars)
			ds, ok := err.(Diagnostics)
			if !ok || len(ds) == 0 {
				t.Fatalf("Eval = %#v, %v; want Diagnostics", v, err)
			}
			d := ds[0]
			if d.Severity != SeverityError || d.Summary != tt.summary || !strings.Contains(d.Detail, tt.detail) {
				t.Errorf("diagnostic %+v, want %q with %q in its detail", d, tt.summary, tt.detail)
			}
			if diff := cmp.Diff(tt.path, d.Path); diff != "" {
				t.Errorf("path (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpressionVariables(t *testing.T) {
	tests := []struct {
		src  string
		want []string
	}{
		{"{ channels = 8 * s, layers = 1 + floor(log(s, 2)) }", []string{"s"}},
		{"9 * channels * channels * layers", []string{"channels", "layers"}},
		{"[for i in range(k) : i * s]", []string{"k", "s"}},
		{"t.x[0] + u", []string{"t", "u"}},
		{"1 + 2", nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, mustParse(t, tt.src).Variables()); diff != "" {
			t.Errorf("Variables(%s) (-want +got):\n%s", tt.src, diff)
		}
	}
	if (Expression{}).Variables() != nil {
		t.Error("a zero Expression reads no variables")
	}
}

func TestParseExpressionErrors(t *testing.T) {
	for src, want := range map[string]string{
		"":            "empty",
		"8 *":         "Missing expression",
		"flor(s)":     `calls "flor", which is not a function`,
		"{ a = 1 } }": "Extra characters",
	} {
		if _, err := ParseExpression(src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseExpression(%q) error = %v, want %q", src, err, want)
		}
	}
}

// TestExpressionValue checks the host's substitution: the text the plugin
// gets must mean, with the plugin's variables alone, what the written
// expression means with the host's and the plugin's together.
func TestExpressionValue(t *testing.T) {
	host := map[string]cty.Value{
		"base": cty.NumberIntVal(8),
		"neg":  cty.NumberIntVal(-3),
		// As HCL parses it. A float64-made value is written by its shortest
		// decimal, which reads back as the same float64.
		"frac":  cty.MustParseNumberVal("0.1"),
		"huge":  cty.MustParseNumberVal("1e400"),
		"name":  cty.StringVal("conv\"net ${x} %{y}\n"),
		"odd":   cty.StringVal("$${x} %%{y} $ % \x01 \u00e9 \U0001F600 \\ \t\r\u2028"),
		"list":  cty.ListVal([]cty.Value{cty.NumberIntVal(1), cty.NumberIntVal(2)}),
		"obj":   cty.ObjectVal(map[string]cty.Value{"for": cty.NumberIntVal(1), "null": cty.True, "a b": cty.StringVal("x")}),
		"empty": cty.EmptyObjectVal,
		"none":  cty.NullVal(cty.Number),
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{
		"var":   cty.ObjectVal(host),
		"local": cty.ObjectVal(map[string]cty.Value{"k": cty.NumberIntVal(2)}),
	}}
	plugin := map[string]cty.Value{"s": cty.NumberIntVal(4)}
	tests := []struct {
		src, want string
	}{
		{"{ channels = var.base * s }", "{ channels = 8 * s }"},
		{"s - var.neg", "s - (-3)"},
		{"var.frac * s", "0.1 * s"},
		{"var.huge", "1e+400"},
		{`"${var.name}-${s}"`, `"${"conv\"net $${x} %%{y}\n"}-${s}"`},
		// Printable characters are written as they are, others escaped.
		{"var.odd", `"$$${x} %%%{y} $ % \u0001 é 😀 \\ \t\r\u2028"`},
		{"var.list[local.k - 1] * s", "([1, 2])[2 - 1] * s"},
		{"var.list[*]", "([1, 2])[*]"},
		{`var.obj["for"] + s`, "1 + s"},
		{"var.obj", `({"a b" = "x", "for" = 1, "null" = true})`},
		{"merge(var.empty, { s = s })", "merge(({}), { s = s })"},
		{"var.none == null ? s : 0", "null == null ? s : 0"},
		{"[for var in [1] : var * s]", "[for var in [1] : var * s]"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			src := []byte("x = " + tt.src + "\n")
			f, diags := hclsyntax.ParseConfig(src, "p.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			attrs, _ := f.Body.JustAttributes()
			expr := attrs["x"].Expr
			v, diags := describe.ExpressionValue(src, expr, ctx, "var", "local")
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if got := v.AsString(); got != tt.want {
				t.Errorf("source = %s, want %s", got, tt.want)
			}
			// Same meaning: the written expression with both sets of
			// variables, the sent text with the plugin's alone.
			all := map[string]cty.Value{"s": plugin["s"]}
			for k, val := range ctx.Variables {
				all[k] = val
			}
			want, wd := expr.Value(&hcl.EvalContext{Variables: all, Functions: functions})
			got, err := mustParse(t, v.AsString()).Eval(plugin)
			if wd.HasErrors() || err != nil {
				t.Fatalf("written: %v; sent: %v", wd, err)
			}
			// A literal writes a list as a tuple: compare as the written type.
			if conv, err := convert.Convert(got, want.Type()); err != nil || !conv.Equals(want).True() {
				t.Errorf("sent text gives %#v, the written expression %#v", got, want)
			}
		})
	}
}

func TestExpressionValueProblems(t *testing.T) {
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{
		"inf":     cty.PositiveInfinity,
		"unknown": cty.UnknownVal(cty.Number),
		"n":       cty.NumberIntVal(1),
	})}}
	parse := func(t *testing.T, src string) ([]byte, hcl.Expression) {
		t.Helper()
		b := []byte("x = " + src + "\n")
		f, diags := hclsyntax.ParseConfig(b, "p.hcl", hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		attrs, _ := f.Body.JustAttributes()
		return b, attrs["x"].Expr
	}
	t.Run("infinite number", func(t *testing.T) {
		src, expr := parse(t, "var.inf * s")
		v, diags := describe.ExpressionValue(src, expr, ctx, "var")
		if v.IsKnown() || len(diags) != 1 || diags[0].Summary != "Value cannot be written in an expression" {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
		if r := diags[0].Subject; string(src[r.Start.Byte:r.End.Byte]) != "var.inf" {
			t.Errorf("subject %v, want the reference", r)
		}
	})
	t.Run("unknown value", func(t *testing.T) {
		src, expr := parse(t, "var.unknown * s")
		v, diags := describe.ExpressionValue(src, expr, ctx, "var")
		if v.IsKnown() || len(diags) != 0 {
			t.Fatalf("value %#v, diagnostics %v; want an unknown string and no diagnostics", v, diags)
		}
	})
	t.Run("missing attribute", func(t *testing.T) {
		src, expr := parse(t, "var.nope * s")
		v, diags := describe.ExpressionValue(src, expr, ctx, "var")
		if v.IsKnown() || !diags.HasErrors() {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
	})
	t.Run("source too short", func(t *testing.T) {
		_, expr := parse(t, "var.n * s")
		v, diags := describe.ExpressionValue([]byte("x"), expr, ctx, "var")
		if v.IsKnown() || len(diags) != 1 || diags[0].Summary != "Expression source not available" {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
	})
	t.Run("not native syntax", func(t *testing.T) {
		v, diags := describe.ExpressionValue(nil, hcl.StaticExpr(cty.StringVal("s"), hcl.Range{}), ctx, "var")
		if v.IsKnown() || len(diags) != 1 || diags[0].Summary != "Expression not in native syntax" {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
	})
	t.Run("no roots leaves the text", func(t *testing.T) {
		src, expr := parse(t, "var.n * s")
		v, diags := describe.ExpressionValue(src, expr, nil)
		if diags.HasErrors() || v.AsString() != "var.n * s" {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
	})
}

func TestFunctions(t *testing.T) {
	fs := Functions()
	for _, name := range []string{"floor", "ceil", "log", "pow", "max", "min", "abs", "signum", "try", "can", "format"} {
		if _, ok := fs[name]; !ok {
			t.Errorf("Functions lacks %s", name)
		}
	}
	delete(fs, "floor")
	if _, ok := Functions()["floor"]; !ok {
		t.Error("changing the returned map changed the table")
	}
	if _, ok := functions["floor"]; !ok {
		t.Error("the table lost floor")
	}
}

// TestExpressionLimits: a plugin refuses deferred expression text beyond
// the limits, without crashing; the host refuses to send text that its
// values, written in, take beyond them.
func TestExpressionLimits(t *testing.T) {
	deep := strings.Repeat("(", 70000) + "s" + strings.Repeat(")", 70000)
	_, err := ParseExpression(deep)
	if err == nil || !strings.Contains(err.Error(), "Nesting too deep at line 1, column 257 of the expression") {
		t.Errorf("ParseExpression(70,000 parentheses) = %v", err)
	}
	if _, err := ParseExpression("s" + strings.Repeat(" + s", 1000000)); err == nil || !strings.HasPrefix(err.Error(), "Expression too deep") {
		t.Errorf("ParseExpression(a sum of a million terms) = %v", err)
	}
	// In an expression's text newlines do not end it: a sum over many
	// lines is one chain.
	if _, err := ParseExpression("1" + strings.Repeat(" +\n1", 1000000)); err == nil || !strings.Contains(err.Error(), "Expression too deep at line 1025, column 3 of the expression") {
		t.Errorf("ParseExpression(a sum over a million lines) = %v", err)
	}

	// 200 levels in the file and 100 in the value: 300 in the text.
	nested := cty.EmptyTupleVal
	for range 100 {
		nested = cty.TupleVal([]cty.Value{nested})
	}
	ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{"v": nested})}}
	src := []byte("x = " + strings.Repeat("[", 200) + "var.v" + strings.Repeat("]", 200) + "\n")
	f, diags := hclsyntax.ParseConfig(src, "p.hcl", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	attrs, _ := f.Body.JustAttributes()
	expr := attrs["x"].Expr
	_, diags = describe.ExpressionValue(src, expr, ctx, "var")
	if len(diags) != 1 || diags[0].Summary != "Nesting too deep" || *diags[0].Subject != expr.Range() {
		t.Errorf("describe.ExpressionValue = %v, want one \"Nesting too deep\" at the expression", diags)
	}
}
