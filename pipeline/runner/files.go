package runner

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// configFiles hashes the files that a stage's config names, as its kind
// declares (sdk.StageInfo.InputFiles), so that editing a dataset, a results
// table or a training script invalidates the cache even though the config
// text did not change. Values that name no existing file (a program found
// on PATH, say) are left out; the plugin reports missing files itself.
func configFiles(st *config.Stage) (map[string]string, error) {
	if st.Spec == nil || len(st.Spec.InputFiles) == 0 || !st.Config.IsKnown() || st.Config.IsNull() || !st.Config.Type().IsObjectType() {
		return nil, nil
	}
	base := ""
	if st.Config.Type().HasAttribute("base_dir") {
		if v := st.Config.GetAttr("base_dir"); v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
			base = v.AsString()
		}
	}
	out := map[string]string{}
	add := func(key string, v cty.Value) error {
		if !v.IsKnown() || v.IsNull() || v.Type() != cty.String {
			return nil
		}
		path := v.AsString()
		if !filepath.IsAbs(path) && base != "" {
			path = filepath.Join(base, path)
		}
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		sum, err := runstore.FileSHA256(path)
		if err != nil {
			return err
		}
		out[key] = sum
		return nil
	}
	for _, f := range config.InputFiles(st.Config, st.Spec.InputFiles) {
		if t := f.Value.Type(); t.IsListType() || t.IsTupleType() || t.IsSetType() {
			i := 0
			for it := f.Value.ElementIterator(); it.Next(); i++ {
				_, e := it.Element()
				if err := add(f.Key+"["+strconv.Itoa(i)+"]", e); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err := add(f.Key, f.Value); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
