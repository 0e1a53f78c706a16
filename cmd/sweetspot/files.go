package main

import (
	"fmt"
	"io"
	"io/fs"
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

// writeOutput writes what write produces to the file the user named.
//
//   - A directory is refused.
//   - Something other than a regular file (/dev/stdout, a pipe, a
//     terminal, a device) is written in place, never replaced: a file
//     made in /dev and renamed over /dev/full would take the device's
//     place for every program on the machine.
//   - A regular file, or none, is written atomically through any symlink:
//     a temporary file beside the link's target, synced and renamed over
//     it, so a crash or a full disk leaves the old file whole. It gets
//     perm, or keeps its own permissions when perm is 0.
func writeOutput(path string, perm fs.FileMode, write func(io.Writer) error) (err error) {
	target := path
	if resolved, rerr := filepath.EvalSymlinks(path); rerr == nil {
		target = resolved
	}
	if st, serr := os.Stat(path); serr == nil {
		switch {
		case st.IsDir():
			return fmt.Errorf("%s is a directory; name a file", path)
		case !st.Mode().IsRegular():
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			if err := write(f); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", path, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			return nil
		case perm == 0:
			perm = st.Mode().Perm()
		}
	}
	if perm == 0 {
		perm = 0o644
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := write(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), target); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// isStream reports whether path names something writeOutput writes in
// place (/dev/stdout, a pipe, a terminal): a command then prints no line
// naming it, which would land in the stream itself.
func isStream(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && !st.Mode().IsRegular()
}

// writeOutputBytes is writeOutput of data.
func writeOutputBytes(path string, perm fs.FileMode, data []byte) error {
	return writeOutput(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
