package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// deepShape is an expression that nests or chains far past the limits of
// describe.CheckSource, on one line.
type deepShape struct {
	name, expr string
	summary    string
	// nth is the offset in expr of the kth level (nesting) or operator
	// (depth), counted from 1.
	nth func(k int) int
}

// deepLevels is how deep the shapes go: as deep as the attack that
// crashed the host.
const deepLevels = 70000

func deepShapes() []deepShape {
	n, rep := deepLevels, strings.Repeat
	return []deepShape{
		{"parentheses", rep("(", n) + "1" + rep(")", n), "Nesting too deep", func(k int) int { return k - 1 }},
		{"lists", rep("[", n) + rep("]", n), "Nesting too deep", func(k int) int { return k - 1 }},
		{"objects", rep("{ a = ", n) + "1" + rep(" }", n), "Nesting too deep", func(k int) int { return 6 * (k - 1) }},
		{"function calls", rep("max(", n) + "1" + rep(")", n), "Nesting too deep", func(k int) int { return 4*(k-1) + 3 }},
		// A string and its interpolation are two levels.
		{"templates", rep(`"${`, n) + "1" + rep(`}"`, n), "Nesting too deep", func(k int) int { return 3*((k-1)/2) + (k-1)%2 }},
		{"a sum of a million terms", "1" + rep("+1", 1000000-1), "Expression too deep", func(k int) int { return 1 + 2*(k-1) }},
	}
}

// limitsPipeline declares a variable whose -var value is parsed (a
// number's, not a string's).
const limitsPipeline = "variable \"x\" {\n  type    = number\n  default = 1\n}\n"

// TestDeepInputRefused loads each deep shape from a pipeline file, a
// variables file and a -var value: each is refused with one diagnostic at
// its first level or operator past the limit, naming the file, line and
// column, and nothing crashes.
func TestDeepInputRefused(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.hcl")
	if err := os.WriteFile(base, []byte(limitsPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sh := range deepShapes() {
		// The kth level or operator past which the text is refused, where
		// the expression starts at nesting `open`.
		past := func(open int) int {
			if sh.summary == "Nesting too deep" {
				return describe.MaxNesting + 1 - open
			}
			return describe.MaxExpressionDepth + 1 - open
		}
		// In a pipeline file, inside a locals block: one level in.
		t.Run(sh.name+"/pipeline file", func(t *testing.T) {
			path := filepath.Join(dir, "deep.hcl")
			if err := os.WriteFile(path, []byte("locals {\n  x = "+sh.expr+"\n}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			p, diags := Load([]string{path}, newFakeCatalog())
			off := sh.nth(past(1))
			checkRefused(t, p, diags, sh.summary, hcl.Pos{Byte: 15 + off, Line: 2, Column: 7 + off}, path)
		})
		t.Run(sh.name+"/var file", func(t *testing.T) {
			path := filepath.Join(dir, "deep.vars.hcl")
			if err := os.WriteFile(path, []byte("x = "+sh.expr+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			p, diags := Load([]string{base}, newFakeCatalog(), WithVarFiles(path))
			off := sh.nth(past(0))
			checkRefused(t, p, diags, sh.summary, hcl.Pos{Byte: 4 + off, Line: 1, Column: 5 + off}, path)
		})
		t.Run(sh.name+"/-var", func(t *testing.T) {
			p, diags := Load([]string{base}, newFakeCatalog(), WithVars(map[string]string{"x": sh.expr}))
			off := sh.nth(past(0))
			checkRefused(t, p, diags, sh.summary, hcl.Pos{Byte: off, Line: 1, Column: 1 + off}, "<value for var.x>")
		})
	}
	// An expression's newlines do not end it: a sum over a million lines
	// is one chain.
	t.Run("a sum over lines/-var", func(t *testing.T) {
		sum := "1" + strings.Repeat(" +\n1", 1000000)
		p, diags := Load([]string{base}, newFakeCatalog(), WithVars(map[string]string{"x": sum}))
		checkRefused(t, p, diags, "Expression too deep", hcl.Pos{Byte: 4098, Line: 1025, Column: 3}, "<value for var.x>")
	})
	t.Run("huge -var", func(t *testing.T) {
		huge := "[" + strings.Repeat("1, ", 400000) + "]"
		p, diags := Load([]string{base}, newFakeCatalog(), WithVars(map[string]string{"x": huge}))
		checkRefused(t, p, diags, "Input too large", hcl.Pos{Byte: describe.MaxSourceBytes, Line: 1, Column: 1 + describe.MaxSourceBytes}, "<value for var.x>")
	})
	t.Run("huge pipeline file", func(t *testing.T) {
		path := filepath.Join(dir, "huge.hcl")
		line := "# " + strings.Repeat("x", 97) + "\n"
		if err := os.WriteFile(path, []byte(strings.Repeat(line, describe.MaxSourceBytes/100+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		p, diags := Load([]string{path}, newFakeCatalog())
		at := describe.MaxSourceBytes
		checkRefused(t, p, diags, "Input too large", hcl.Pos{Byte: at, Line: 1 + at/100, Column: 1 + at%100}, path)
	})
}

// TestEndlessSourceIsReadOnlyToTheLimit: a pipeline file or variables
// file that never ends (/dev/zero) or is gigabytes long is read only one
// byte past the limit, and refused as too large at that byte.
func TestEndlessSourceIsReadOnlyToTheLimit(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Fatalf("this test needs /dev/zero: %v", err)
	}
	dir := t.TempDir()
	base := filepath.Join(dir, "base.hcl")
	if err := os.WriteFile(base, []byte(limitsPipeline), 0o644); err != nil {
		t.Fatal(err)
	}
	// A sparse file of 8 GiB: read whole, it would take the test's memory.
	sparse := filepath.Join(dir, "sparse.hcl")
	f, err := os.Create(sparse)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(8 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	at := hcl.Pos{Byte: describe.MaxSourceBytes, Line: 1, Column: 1 + describe.MaxSourceBytes}
	for _, path := range []string{"/dev/zero", sparse} {
		t.Run(path+"/pipeline file", func(t *testing.T) {
			p, diags := Load([]string{path}, newFakeCatalog())
			checkRefused(t, p, diags, "Input too large", at, path)
		})
		t.Run(path+"/var file", func(t *testing.T) {
			p, diags := Load([]string{base}, newFakeCatalog(), WithVarFiles(path))
			checkRefused(t, p, diags, "Input too large", at, path)
		})
	}
}

// checkRefused asserts that diags is the one error summary at `at` in
// file, with ranges the renderer can use.
func checkRefused(t *testing.T, p *Pipeline, diags hcl.Diagnostics, summary string, at hcl.Pos, file string) {
	t.Helper()
	if p == nil {
		t.Fatal("nil pipeline")
	}
	if len(diags) != 1 {
		t.Fatalf("got %d diagnostics, want 1: %v", len(diags), diags)
	}
	d := diags[0]
	if d.Severity != hcl.DiagError || d.Summary != summary || d.Subject == nil {
		t.Fatalf("got %q (%v), want the error %q with a subject", d.Summary, d, summary)
	}
	if d.Subject.Filename != file || d.Subject.Start != at {
		t.Errorf("subject starts at %s:%d:%d (byte %d), want %s:%d:%d (byte %d)",
			d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Subject.Start.Byte,
			file, at.Line, at.Column, at.Byte)
	}
	checkRanges(t, p.Files, diags)
	if out := render(p.Files, diags); !strings.Contains(out, fmt.Sprintf("%s:%d:%d", file, at.Line, at.Column)) {
		t.Errorf("rendered diagnostic does not name %s:%d:%d:\n%.500s", file, at.Line, at.Column, out)
	}
}

// TestDeepSettingsAndFormat: LoadSettings and Format refuse deep input as
// Load does.
func TestDeepSettingsAndFormat(t *testing.T) {
	src := []byte("sweetspot {\n  required_version = " + strings.Repeat("(", deepLevels) + "\"1\"" + strings.Repeat(")", deepLevels) + "\n}\n")
	path := filepath.Join(t.TempDir(), "deep.hcl")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	// The sweetspot block is the first level.
	at := hcl.Pos{Byte: 33 + 255, Line: 2, Column: 22 + 255}
	p, diags := LoadSettings([]string{path})
	checkRefused(t, p, diags, "Nesting too deep", at, path)

	out, diags := Format(src, path)
	if out != nil || len(diags) != 1 || diags[0].Summary != "Nesting too deep" || diags[0].Subject.Start != at {
		t.Errorf("Format = %d bytes, %v; want the nesting refused at %v", len(out), diags, at)
	}
}

// TestDeepDeferredExpression: a deferred expression within the limits in
// its file, whose variables' values nest it past them once written in, is
// refused by the host before any plugin sees it.
func TestDeepDeferredExpression(t *testing.T) {
	dir := t.TempDir()
	src := `variable "v" {}

stage "model_zoo" "zoo" {
  family "axis" {
    name = "convnet"
    size "s" {
      min = 1
      max = 4
    }
    knobs = ` + strings.Repeat("[", 200) + "var.v" + strings.Repeat("]", 200) + `
  }
}
`
	path := filepath.Join(dir, "p.hcl")
	vars := filepath.Join(dir, "v.vars.hcl")
	for file, text := range map[string]string{
		path: src,
		vars: "v = " + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "\n",
	} {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, diags := Load([]string{path}, newFakeCatalog(), WithVarFiles(vars))
	at := hcl.Pos{Byte: strings.Index(src, "knobs = ") + 8, Line: 10, Column: 13}
	checkRefused(t, p, diags, "Nesting too deep", at, path)
	if !strings.Contains(diags[0].Detail, "writes the values it refers to into its text") {
		t.Errorf("detail does not say why: %s", diags[0].Detail)
	}
}

// TestAtTheLimitsLoads: a pipeline and variables at the limits load.
func TestAtTheLimitsLoads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	vars := filepath.Join(dir, "v.vars.hcl")
	sum := "1" + strings.Repeat(" + 1", 999)
	for file, text := range map[string]string{
		// The locals block is a level: 255 more.
		path: limitsPipeline + "variable \"l\" {}\n\nlocals {\n  deep = " + strings.Repeat("(", 255) + "var.x" + strings.Repeat(")", 255) + "\n  sum  = " + sum + "\n}\n\nstage \"requirements\" \"r\" {}\n",
		vars: "l = " + strings.Repeat("[", 256) + strings.Repeat("]", 256) + "\n",
	} {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := mustLoad(t, []string{path}, WithVarFiles(vars), WithVars(map[string]string{"x": strings.Repeat("(", 256) + "999 + 1" + strings.Repeat(")", 256)}))
	if got := p.Vars["x"].AsBigFloat().String(); got != "1000" {
		t.Errorf("var.x = %s, want 1000", got)
	}
}

// BenchmarkDeepNesting loads a pipeline file holding each deep shape
// (70,000 levels, or a million terms): the time to refuse it. Before the
// limits, 40,000 parentheses took 12 s and 0.9 GB, and 70,000 crashed.
func BenchmarkDeepNesting(b *testing.B) {
	cat := newFakeCatalog()
	for _, sh := range deepShapes() {
		src := []byte("locals {\n  x = " + sh.expr + "\n}\n")
		b.Run(sh.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				l := newLoader(cat, nil)
				if _, diags := l.load([]source{{name: "deep.hcl", src: src}}); !diags.HasErrors() {
					b.Fatal("not refused")
				}
			}
		})
	}
}
