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

// rewriteFile replaces the file at path (the file a symlink there leads
// to) with data, atomically: a crash or a full disk leaves the old file
// whole, never a part of each. The file keeps its permissions.
func rewriteFile(path string, data []byte) (err error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	st, err := os.Stat(target)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), target)
}
