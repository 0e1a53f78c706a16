package diagtext

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

func TestLocationHasLineAndColumn(t *testing.T) {
	p := hclparse.NewParser()
	src := "a = 1\nbb = nope\n"
	f, diags := p.ParseHCL([]byte(src), "p.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	attrs, _ := f.Body.JustAttributes()
	rng := attrs["bb"].Expr.Range()
	diags = hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Bad value", Detail: "It is bad.", Subject: &rng}}
	var out bytes.Buffer
	if err := Write(&out, p.Files(), diags, 78, false); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"Error: Bad value", "on p.hcl:2:6:", "2: bb = nope", "It is bad."} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// A diagnostic on a line of 800,000 characters prints a window of that
// line around the problem, not the line: the output stays a few lines
// long and still shows where the problem is and what the text there is.
func TestLongLinesAreClipped(t *testing.T) {
	p := hclparse.NewParser()
	long := strings.Repeat("x", 400000)
	src := "a = \"" + long + "\" + nope + \"" + long + "\"\n"
	f, diags := p.ParseHCL([]byte(src), "p.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	attrs, _ := f.Body.JustAttributes()
	_, diags = attrs["a"].Expr.Value(nil)
	if !diags.HasErrors() {
		t.Fatal("evaluating an unknown variable gave no error")
	}
	for _, color := range []bool{false, true} {
		var out bytes.Buffer
		if err := Write(&out, p.Files(), diags, 78, color); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if len(got) > 4000 {
			t.Errorf("color=%v: %d bytes of output for one diagnostic", color, len(got))
		}
		col := len(`a = "`) + len(long) + len(`" + `) + 1
		for _, want := range []string{"on p.hcl:1:" + strconv.Itoa(col), "nope", "more characters]", " characters] …"} {
			if !strings.Contains(got, want) {
				t.Errorf("color=%v: output lacks %q:\n%.2000s", color, want, got)
			}
		}
	}
}
