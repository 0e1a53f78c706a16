package diagtext

import (
	"bytes"
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
