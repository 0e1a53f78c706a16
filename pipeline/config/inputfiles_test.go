package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
)

func TestInputFilesFollowBlocks(t *testing.T) {
	fam := func(path string) cty.Value {
		v := cty.NullVal(cty.String)
		if path != "" {
			v = cty.StringVal(path)
		}
		return cty.ObjectVal(map[string]cty.Value{"kind": cty.StringVal("table"), "path": v})
	}
	cfg := cty.ObjectVal(map[string]cty.Value{
		"path":   cty.StringVal("top.csv"),
		"family": cty.ListVal([]cty.Value{fam("a.csv"), fam(""), fam("c.csv")}),
	})
	var got []string
	for _, f := range InputFiles(cfg, []string{"path", "family.path", "missing.path"}) {
		got = append(got, f.Key+" "+f.Attr+" "+f.Value.AsString())
	}
	// The null path of the second block is left out; its index is kept.
	want := []string{"path path top.csv", "family[0].path family.0.path a.csv", "family[2].path family.2.path c.csv"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
