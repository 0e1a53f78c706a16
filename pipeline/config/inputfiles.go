package config

import (
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// InputFile is one value of a stage's config that its kind declares as
// naming files (sdk.StageInfo.InputFiles).
type InputFile struct {
	// Key names the value in the cache key: the declared name, with the
	// indexes of the blocks it lies in ("family[1].path").
	Key string
	// Attr is its attribute path as diagnostics and AttrRanges spell it
	// ("family.1.path").
	Attr  string
	Value cty.Value
}

// InputFiles lists the known, non-null values of cfg that the declared
// names point at. A name is an attribute ("path") or a dotted path into
// blocks ("family.path"), which names the attribute in every block of a
// list.
func InputFiles(cfg cty.Value, names []string) []InputFile {
	var out []InputFile
	for _, name := range names {
		walkInputFile(cfg, strings.Split(name, "."), "", "", &out)
	}
	return out
}

func walkInputFile(v cty.Value, steps []string, key, attr string, out *[]InputFile) {
	if !v.IsKnown() || v.IsNull() {
		return
	}
	if len(steps) == 0 {
		*out = append(*out, InputFile{Key: key, Attr: attr, Value: v})
		return
	}
	t := v.Type()
	if t.IsListType() || t.IsTupleType() {
		i := 0
		for it := v.ElementIterator(); it.Next(); i++ {
			_, e := it.Element()
			walkInputFile(e, steps, key+"["+strconv.Itoa(i)+"]", attr+"."+strconv.Itoa(i), out)
		}
		return
	}
	if !t.IsObjectType() || !t.HasAttribute(steps[0]) {
		return
	}
	join := func(a, b string) string {
		if a == "" {
			return b
		}
		return a + "." + b
	}
	walkInputFile(v.GetAttr(steps[0]), steps[1:], join(key, steps[0]), join(attr, steps[0]), out)
}
