package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// attrAllowOutsidePaths is the sweetspot block's opt-out of the project
// directory check.
const attrAllowOutsidePaths = "allow_outside_paths"

// projectDir is the directory a pipeline's paths must stay in: the
// directory given to Load, or the directory of the first file given (as
// for the lock file).
func projectDir(paths []string) string {
	if len(paths) == 0 || paths[0] == "" {
		return ""
	}
	p := paths[0]
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		p = filepath.Dir(p)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return ""
	}
	return abs
}

// checkPaths reports each file a stage's config names (the attributes its
// kind declares in sdk.StageInfo.InputFiles) that lies outside the project
// directory: by "..", by an absolute path, or through a symbolic link,
// unless the sweetspot block allows outside paths.
//
// A string attribute is always a path. A list of strings is a command line
// (exec's command): there an element is a path when it is relative and has
// a slash or names an existing file in the base directory, as the stage
// resolves it; absolute elements (a program such as /usr/bin/env) and
// flags are left to the stage.
func (l *loader) checkPaths(s *stageState) {
	root := l.p.ProjectDir
	if l.p.AllowOutsidePaths || root == "" || s.Spec == nil || len(s.Spec.InputFiles) == 0 {
		return
	}
	cfg := s.Config
	if !cfg.IsKnown() || cfg.IsNull() || !cfg.Type().IsObjectType() {
		return
	}
	base := filepath.Dir(s.DeclRange.Filename)
	if cfg.Type().HasAttribute(attrBaseDir) {
		if v := cfg.GetAttr(attrBaseDir); v.IsKnown() && !v.IsNull() && v.Type() == cty.String {
			base = v.AsString()
		}
	}
	if abs, err := filepath.Abs(base); err == nil {
		base = abs
	}
	for _, f := range InputFiles(cfg, s.Spec.InputFiles) {
		name, v := f.Attr, f.Value
		whole := s.AttrRanges[name]
		if t := v.Type(); t.IsListType() || t.IsTupleType() {
			ranges := elementRanges(s.attrs[name], v.LengthInt())
			i := 0
			for it := v.ElementIterator(); it.Next(); i++ {
				_, e := it.Element()
				if !e.IsKnown() || e.IsNull() || e.Type() != cty.String {
					continue
				}
				p := e.AsString()
				if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "-") {
					continue
				}
				if !strings.ContainsRune(p, '/') && !strings.ContainsRune(p, filepath.Separator) {
					if _, err := os.Lstat(filepath.Join(base, p)); err != nil {
						continue // a program found on PATH, or an argument
					}
				}
				rng := whole
				if ranges != nil {
					rng = ranges[i]
				}
				l.checkPath(s, fmt.Sprintf("%s[%d]", name, i), p, base, root, rng)
			}
			continue
		}
		if v.Type() == cty.String && v.AsString() != "" {
			l.checkPath(s, name, v.AsString(), base, root, whole)
		}
	}
}

func (l *loader) checkPath(s *stageState, attr, p, base, root string, rng hcl.Range) {
	full := p
	if !filepath.IsAbs(full) {
		full = filepath.Join(base, full)
	}
	why := escapes(filepath.Clean(full), root)
	if why == "" {
		return
	}
	l.add(&hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  "Path escapes the project directory",
		Detail: fmt.Sprintf("The %s of %s, %q, %s, outside the project directory %s. Move or copy the file into the project (a symbolic link to a file outside is refused as well), or set %s = true in the sweetspot block to allow paths outside it.",
			attr, s.Addr, p, why, root, attrAllowOutsidePaths),
		Subject: rng.Ptr(),
	})
}

// escapes says how the clean absolute path p leaves root, or "" when it
// stays inside: lexically, and once symbolic links are resolved in both.
func escapes(p, root string) string {
	if !within(p, root) {
		return "is " + filepath.ToSlash(p)
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return ""
	}
	real, err := evalExisting(p)
	if err != nil {
		return ""
	}
	if !within(real, realRoot) {
		return "leads through a symbolic link to " + filepath.ToSlash(real)
	}
	return ""
}

// evalExisting resolves the symbolic links of p's longest existing prefix
// (a file the stage will write, or one not there yet, can still be behind
// a linked directory).
func evalExisting(p string) (string, error) {
	var rest []string
	for {
		real, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(append([]string{real}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

func within(p, root string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
