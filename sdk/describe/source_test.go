package describe

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
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

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
			got, diags := attrs["x"].Expr.Value(&hcl.EvalContext{Functions: map[string]function.Function{"length": stdlib.LengthFunc, "strlen": stdlib.StrlenFunc}})
			if diags.HasErrors() || !got.RawEquals(tt.want) {
				t.Errorf("x = %#v (%v), want %#v", got, diags, tt.want)
			}
		})
	}
}
