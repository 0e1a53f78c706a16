package sdk

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
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
			v, diags := ExpressionValue(src, expr, ctx, "var", "local")
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
		v, diags := ExpressionValue(src, expr, ctx, "var")
		if v.IsKnown() || len(diags) != 1 || diags[0].Summary != "Value cannot be written in an expression" {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
		if r := diags[0].Subject; string(src[r.Start.Byte:r.End.Byte]) != "var.inf" {
			t.Errorf("subject %v, want the reference", r)
		}
	})
	t.Run("unknown value", func(t *testing.T) {
		src, expr := parse(t, "var.unknown * s")
		v, diags := ExpressionValue(src, expr, ctx, "var")
		if v.IsKnown() || len(diags) != 0 {
			t.Fatalf("value %#v, diagnostics %v; want an unknown string and no diagnostics", v, diags)
		}
	})
	t.Run("missing attribute", func(t *testing.T) {
		src, expr := parse(t, "var.nope * s")
		v, diags := ExpressionValue(src, expr, ctx, "var")
		if v.IsKnown() || !diags.HasErrors() {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
	})
	t.Run("source too short", func(t *testing.T) {
		_, expr := parse(t, "var.n * s")
		v, diags := ExpressionValue([]byte("x"), expr, ctx, "var")
		if v.IsKnown() || len(diags) != 1 || diags[0].Summary != "Expression source not available" {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
	})
	t.Run("not native syntax", func(t *testing.T) {
		v, diags := ExpressionValue(nil, hcl.StaticExpr(cty.StringVal("s"), hcl.Range{}), ctx, "var")
		if v.IsKnown() || len(diags) != 1 || diags[0].Summary != "Expression not in native syntax" {
			t.Fatalf("value %#v, diagnostics %v", v, diags)
		}
	})
	t.Run("no roots leaves the text", func(t *testing.T) {
		src, expr := parse(t, "var.n * s")
		v, diags := ExpressionValue(src, expr, nil)
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

// scanToken is a token in a trace: "TYPE@BYTE" and where it ends.
type scanToken struct {
	text string
	end  int
}

// lexerTrace lists the tokens of src that sourceScan takes notice of, as
// hclsyntax's lexer makes them. A line comment's newline counts as a
// newline, as the parser counts it.
func lexerTrace(src []byte) []scanToken {
	var out []scanToken
	add := func(typ hclsyntax.TokenType, start, end int) {
		out = append(out, scanToken{fmt.Sprintf("%s@%d", typ, start), end})
	}
	toks, _ := hclsyntax.LexConfig(src, "x.hcl", hcl.InitialPos)
	for _, tok := range toks {
		switch tok.Type {
		case hclsyntax.TokenComment:
			if bytes.HasSuffix(tok.Bytes, []byte("\n")) {
				add(hclsyntax.TokenNewline, tok.Range.End.Byte-1, tok.Range.End.Byte)
			}
		case hclsyntax.TokenOParen, hclsyntax.TokenCParen, hclsyntax.TokenOBrack, hclsyntax.TokenCBrack,
			hclsyntax.TokenOBrace, hclsyntax.TokenCBrace, hclsyntax.TokenOQuote, hclsyntax.TokenCQuote,
			hclsyntax.TokenOHeredoc, hclsyntax.TokenCHeredoc, hclsyntax.TokenTemplateInterp,
			hclsyntax.TokenTemplateControl, hclsyntax.TokenTemplateSeqEnd, hclsyntax.TokenComma,
			hclsyntax.TokenNewline, hclsyntax.TokenIdent,
			hclsyntax.TokenPlus, hclsyntax.TokenMinus, hclsyntax.TokenStar, hclsyntax.TokenSlash,
			hclsyntax.TokenPercent, hclsyntax.TokenBang, hclsyntax.TokenQuestion, hclsyntax.TokenOr,
			hclsyntax.TokenAnd, hclsyntax.TokenEqualOp, hclsyntax.TokenNotEqual, hclsyntax.TokenLessThan,
			hclsyntax.TokenLessThanEq, hclsyntax.TokenGreaterThan, hclsyntax.TokenGreaterThanEq:
			add(tok.Type, tok.Range.Start.Byte, tok.Range.End.Byte)
		}
	}
	return out
}

// scanTrace is the same list as CheckSource's scan reads the text, with
// no limits. The scan stops at a byte that is not UTF-8 outside strings
// and comments, which it refuses: stop is that byte's offset, or the
// text's length.
func scanTrace(src []byte) (trace []scanToken, stop int) {
	s := sourceScan{src: src, maxBytes: math.MaxInt, maxNesting: math.MaxInt, maxDepth: math.MaxInt}
	s.trace = func(typ hclsyntax.TokenType, start, end int) {
		if typ != tokUnclosedComment {
			trace = append(trace, scanToken{fmt.Sprintf("%s@%d", typ, start), end})
		}
	}
	if !s.run() {
		if s.problem != problemEncoding {
			panic(fmt.Sprintf("problem %d with no limits", s.problem))
		}
		return trace, s.at
	}
	return trace, len(src)
}

// compareScan compares the lexer's trace of src with the scan's. Where the
// scan refuses a byte that is not UTF-8, only what precedes the lexer's
// token holding that byte is compared: the lexer's identifier tables may
// take the byte, and what follows it, for letters.
func compareScan(src []byte) string {
	lexer := lexerTrace(src)
	scan, stop := scanTrace(src)
	cut := stop
	for _, t := range lexer {
		_, at, _ := strings.Cut(t.text, "@")
		if n, _ := strconv.Atoi(at); n <= stop && stop < t.end {
			cut = min(cut, n)
		}
	}
	before := func(trace []scanToken) []string {
		var out []string
		for _, t := range trace {
			_, at, _ := strings.Cut(t.text, "@")
			if n, _ := strconv.Atoi(at); n < cut || stop == len(src) {
				out = append(out, t.text)
			}
		}
		return out
	}
	return cmp.Diff(before(lexer), before(scan))
}

// scanSeeds are texts whose lexing has corners: templates in templates,
// heredocs, comments, escapes, ~ markers, directives, line ends.
var scanSeeds = []string{
	"a = 1 + 2 * (3 - 4) / 5 % 6\nb = !c && d || e == f != g < h <= i > j >= k ? l : m\n",
	"x = [for k, v in m : k => v if v != 0]\ny = {for k, v in m :\n k => v +\n 1}\n",
	"x = { a = 1, b = [1, 2], \"c\" = f(1, g(2)) }\n",
	"block \"l\" {\n  nested {\n    a = 1 # comment\n  }\n}\n// c\n/* multi\nline */ b = 2\n",
	"a = \"x ${b} ${\"y ${c}\"} $${lit} %%{lit} \\\"q\\\" \\${n} $$ %% $ %\"\n",
	"a = \"${ {a = 1}.a } ${~ b ~} %{ if c }yes%{ else }no%{ endif } %{~ for x in xs ~}${x}%{ endfor }\"\n",
	"a = <<EOT\nline ${b}\n  %{ if c }x%{ endif }\n  EOT\nb = <<-EOT\n    indented\n    EOT\n",
	"a = <<EOT\n${<<INNER\ninner ${x}\nINNER\n}\nEOT\n",
	"a = <<EOT\nEOT-ish\nEOTx\n EOT \n",
	"a = <<EOT\r\nwindows\r\nEOT\r\nb = 1\r\n",
	"a = <<EOT\nlone\rreturn\nEOT\nb = (1)\n",
	"a = <<EOT\n\xffEOT\nb = (1)\n",
	"a = <<EOT\n$\nEOT\nb = 1\n",
	"a = <<EOT\n%\n$x\n$$\nEOT\n",
	"a = <<é\nx\né\n",
	"a = << EOT\n",
	"a = <<EOT",
	"a = 1e-5 - 2E+3 - 1.5e2 -1.-2 - 1ea-b\nb = x-y - z\n",
	"a = f(x)[y][z].w[*].v.*.u\n",
	"a = 1 /* unclosed\nb = (2)\n",
	"a = (1 /* c */ + 2) // d\n",
	"\xef\xbb\xbfa = (1)\n",
	"a = \"unterminated\nb = (1)\n",
	"a = \"${\n",
	"a = }}} ${ {\"${\"}\"}\"}\n",
	"a = \"${x ~}\" ~} }\n",
	"a = é - ü_x-y + 日本\n",
	"a = \"\\",
	"a = \xcb0 + \xcb(1)\n",
	"a = b\xcb\"c\"\n",
	"a = <<\xcb0\nx\n\xcb0\n",
	"a = \"\xcb\" + <<E\n\xff\xcb\nE\n",
	"x = \"%{ /* c */ if a }b%{ endif }\"\n",
	"x = { # c\n for k in m : k => 1 }\n",
}

// FuzzSourceScan checks that CheckSource reads text as hclsyntax's lexer
// does: the same brackets, strings, heredocs, interpolations, operators
// and newlines at the same places. A difference could let nesting past
// the check.
func FuzzSourceScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if diff := compareScan(src); diff != "" {
			t.Errorf("scan differs from the lexer on %q (-lexer +scan):\n%s", src, diff)
		}
		_ = CheckSource(src, "x.hcl", hcl.InitialPos)
	})
}

// TestCheckSource refuses each shape of text that nests or chains too
// deep, at the first place it goes beyond the limit, and passes each at
// the limit.
func TestCheckSource(t *testing.T) {
	const n = 70000
	rep := strings.Repeat
	tests := []struct {
		name, src string
		summary   string
		// where the diagnostic points: byte, line and column of its start
		// and the length of its range.
		byte, line, col, len int
	}{
		{"parentheses", "x = " + rep("(", n) + "1" + rep(")", n), "Nesting too deep", 4 + 256, 1, 5 + 256, 1},
		{"lists", "x = " + rep("[", n) + rep("]", n), "Nesting too deep", 4 + 256, 1, 5 + 256, 1},
		{"objects", "x = " + rep("{a = ", n) + "1" + rep("}", n), "Nesting too deep", 4 + 5*256, 1, 5 + 5*256, 1},
		{"function calls", "x = " + rep("f(", n) + "1" + rep(")", n), "Nesting too deep", 4 + 2*256 + 1, 1, 5 + 2*256 + 1, 1},
		// Each level is a string and an interpolation: the 257th is the
		// string of the 129th.
		{"templates", "x = " + rep(`"${`, n) + "1" + rep(`}"`, n), "Nesting too deep", 4 + 3*128, 1, 5 + 3*128, 1},
		{"directives", `x = "` + rep("%{ if true }", n) + rep("%{ endif }", n) + `"`, "Nesting too deep", 5 + 12*255, 1, 6 + 12*255, 2},
		{"heredocs", "x = <<E\n" + rep("${<<E\n", n) + rep("}\nE\n", n), "Nesting too deep", 8 + 6*127 + 2, 129, 3, 3},
		{"blocks", rep("b {\n", n) + rep("}\n", n), "Nesting too deep", 4*256 + 2, 257, 3, 1},
		{"parentheses on lines", "x = " + rep("(\n", n) + "1" + rep(")", n), "Nesting too deep", 4 + 2*256, 257, 1, 1},
		// é, 日 and 本 are a column each.
		{"columns count characters", `x = "é日本" + ` + rep("(", 300), "Nesting too deep", 17 + 256, 1, 13 + 256, 1},
		{"a sum of a million terms", "x = 1" + rep("+1", 1000000-1), "Expression too deep", 5 + 2*1024, 1, 6 + 2*1024, 1},
		{"conditionals", "x = " + rep("a ? 1 : ", n) + "0", "Expression too deep", 4 + 8*1024 + 2, 1, 5 + 8*1024 + 2, 1},
		{"negations", "x = " + rep("-", n) + "1", "Expression too deep", 4 + 1024, 1, 5 + 1024, 1},
		{"indexes", "x = a" + rep("[b]", n), "Expression too deep", 5 + 3*1024, 1, 6 + 3*1024, 1},
		{"splats", "x = a" + rep(".*.b", n), "Expression too deep", 5 + 4*1024 + 1, 1, 6 + 4*1024 + 1, 1},
		// The count goes on inside the parentheses, and the sum's terms
		// count once each.
		{"a sum in a sum", "x = 1" + rep(" + 1", 1000) + " + (1" + rep(" + 1", 100) + ")", "Expression too deep", 5 + 4*1000 + 5 + 4*22 + 1, 1, 6 + 4*1000 + 5 + 4*22 + 1, 1},
		{"too large", "x = 1\n" + rep("# a comment line\n", 1<<20/17+1), "Input too large", 1 << 20, 1 + (1<<20-6)/17 + 1, 1 + (1<<20-6)%17, 1},
		{"unterminated comment", "x = 1 /* no end\ny = 2\n", "Unterminated comment", 6, 1, 7, 2},
		{"not UTF-8", "x = a\xcb(1)\n", "Invalid character encoding", 5, 1, 6, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := CheckSource([]byte(tt.src), "x.hcl", hcl.InitialPos)
			if len(diags) != 1 {
				t.Fatalf("got %d diagnostics, want 1: %v", len(diags), diags)
			}
			d := diags[0]
			if d.Severity != hcl.DiagError || d.Summary != tt.summary || d.Subject == nil {
				t.Fatalf("got %v, want an error %q with a subject", d, tt.summary)
			}
			got := *d.Subject
			want := hcl.Range{
				Filename: "x.hcl",
				Start:    hcl.Pos{Byte: tt.byte, Line: tt.line, Column: tt.col},
				End:      hcl.Pos{Byte: tt.byte + tt.len, Line: tt.line, Column: tt.col + tt.len},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("subject (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCheckExpressionSource: in one expression's text newlines do not end
// the expression, so a sum over many lines is one chain; in a file they end
// the attribute, and the parser refuses a newline after an operator.
func TestCheckExpressionSource(t *testing.T) {
	src := []byte("1" + strings.Repeat(" +\n1", 1000000))
	diags := CheckExpressionSource(src, "x", hcl.InitialPos)
	want := hcl.Range{Filename: "x", Start: hcl.Pos{Byte: 4098, Line: 1025, Column: 3}, End: hcl.Pos{Byte: 4099, Line: 1025, Column: 4}}
	if len(diags) != 1 || diags[0].Summary != "Expression too deep" || *diags[0].Subject != want {
		t.Errorf("CheckExpressionSource = %v, want one \"Expression too deep\" at %v", diags, want)
	}
	if _, err := ParseExpression(string(src)); err == nil || !strings.Contains(err.Error(), "Expression too deep at line 1025, column 3 of the expression") {
		t.Errorf("ParseExpression = %v", err)
	}
	if diags := CheckSource(append([]byte("x = "), src[:40000]...), "x", hcl.InitialPos); diags != nil {
		t.Errorf("CheckSource = %v, want nothing: each line is an attribute's end", diags)
	}
}

func TestCheckSourceWithinLimits(t *testing.T) {
	rep := strings.Repeat
	tests := []struct {
		name, src string
		want      cty.Value // the value of x, if it is to be evaluated
	}{
		{"256 parentheses", "x = " + rep("(", 256) + "1" + rep(")", 256), cty.NumberIntVal(1)},
		{"255 lists", "x = " + rep("[", 255) + rep("]", 255), cty.NilVal},
		{"a sum of 1000 terms", "x = 1" + rep(" + 1", 999), cty.NumberIntVal(1000)},
		{"a long list", "x = length([" + rep("1 + 1, ", 20000) + "])", cty.NumberIntVal(20000)},
		{"a long template", `x = strlen("` + rep("${1 + 1}", 5000) + `")`, cty.NumberIntVal(5000)},
		{"items start afresh", "x = [" + rep("1 + 1 + 1 + 1, ", 1000) + "]\ny = {\n" + rep("  a = 1 + 1 + 1 + 1\n", 1000) + "}\n", cty.NilVal},
		{"200 directives", `x = "` + rep("%{ if true }", 200) + "y" + rep("%{ endif }", 200) + `"`, cty.StringVal("y")},
		{"a heredoc", "x = <<-EOT\n  ((((${1 + 1}\n  EOT\n", cty.StringVal("((((2\n")},
		{"comments", "# (((((\nx = 1 // [[[[[\n/* {{{{ */\n", cty.NumberIntVal(1)},
		{"line ends and a byte order mark", "\xef\xbb\xbfx = (\r\n1\r\n)\r\n", cty.NumberIntVal(1)},
		{"not UTF-8 in a comment", "x = 1 # caf\xe9\n", cty.NumberIntVal(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := []byte(tt.src)
			if diags := CheckSource(src, "x.hcl", hcl.InitialPos); diags != nil {
				t.Fatalf("refused: %v", diags)
			}
			f, diags := hclsyntax.ParseConfig(src, "x.hcl", hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatal(diags)
			}
			if tt.want == cty.NilVal {
				return
			}
			attrs, _ := f.Body.JustAttributes()
			got, diags := attrs["x"].Expr.Value(&hcl.EvalContext{Functions: functions})
			if diags.HasErrors() || !got.RawEquals(tt.want) {
				t.Errorf("x = %#v (%v), want %#v", got, diags, tt.want)
			}
		})
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
	_, diags = ExpressionValue(src, expr, ctx, "var")
	if len(diags) != 1 || diags[0].Summary != "Nesting too deep" || *diags[0].Subject != expr.Range() {
		t.Errorf("ExpressionValue = %v, want one \"Nesting too deep\" at the expression", diags)
	}
}
