package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// hclFiles expands directories to the .hcl files directly inside them.
func hclFiles(args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		st, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, a)
			continue
		}
		matches, err := filepath.Glob(filepath.Join(a, "*.hcl"))
		if err != nil {
			return nil, err
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("%s holds no .hcl files", a)
		}
		sort.Strings(matches)
		out = append(out, matches...)
	}
	return out, nil
}
