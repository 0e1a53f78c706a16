package install

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Source kinds, as Installed.Kind reports them.
const (
	KindLocal  = "local"  // a local directory holding a Go main package
	KindMirror = "mirror" // a local directory of prebuilt executables + SHA256SUMS
	KindGo     = "go"     // a Go module or package path, from the module proxy
)

// SumsFile is the checksum list of a mirror directory, in the format of
// sha256sum(1): "HEX  FILE" per line.
const SumsFile = "SHA256SUMS"

// source is where one plugin's executable comes from.
type source interface {
	kind() string
	// versions lists the versions the source offers on this platform,
	// ascending where that is known.
	versions(ctx context.Context) ([]string, error)
	// fetch puts the executable of version v at dst. want is the version
	// to fetch, or "" for whatever the source has (a local directory has
	// exactly one version: whatever it builds).
	fetch(ctx context.Context, want, dst string) error
	// hashes returns the hashes of version v on every platform the source
	// knows of without building, keyed like lockfile.Plugin.Hashes; nil
	// when only this platform's (computed by the caller) is known.
	hashes(v string) map[string]string
}

// isLocalPath reports a source written as a filesystem path. A Go module
// path never starts with ".", "/" or "~".
func isLocalPath(s string) bool {
	return s == "." || s == ".." || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") ||
		strings.HasPrefix(s, "~/") || filepath.IsAbs(s)
}

// openSource classifies a required_plugins source. Relative paths are
// relative to baseDir, the pipeline's directory.
func (in *installer) openSource(name, src string) (source, error) {
	if !isLocalPath(src) {
		if err := checkModulePath(src); err != nil {
			return nil, fmt.Errorf("plugin %s: source %q is neither a local path (./dir, ../dir, /dir) nor a Go module path: %w", name, src, err)
		}
		return &goSource{in: in, name: name, path: src}, nil
	}
	dir := src
	if rest, ok := strings.CutPrefix(src, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("plugin %s: source %s: %w", name, src, err)
		}
		dir = filepath.Join(home, rest)
	} else if !filepath.IsAbs(src) {
		dir = filepath.Join(in.o.BaseDir, src)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: source %s: %w", name, src, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("plugin %s: source %s (%s) is not a directory: name a directory holding the plugin's Go main package, or a mirror of prebuilt executables with a %s file", name, src, dir, SumsFile)
	}
	if _, err := os.Stat(filepath.Join(dir, SumsFile)); err == nil {
		return &mirrorSource{name: name, dir: dir}, nil
	}
	gofiles, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(gofiles) == 0 {
		return nil, fmt.Errorf("plugin %s: source %s (%s) holds neither Go files to build nor a %s file listing prebuilt executables", name, src, dir, SumsFile)
	}
	return &localSource{in: in, name: name, dir: dir}, nil
}

// checkModulePath rejects what cannot be a module path before go is asked.
func checkModulePath(p string) error {
	first, _, _ := strings.Cut(p, "/")
	switch {
	case p == "" || strings.ContainsAny(p, " \t\\:@"):
		return errors.New("it contains characters a module path cannot")
	case !strings.Contains(first, "."):
		return fmt.Errorf("its first element %q is not a domain name", first)
	}
	return nil
}

// moduleEnv keeps a go.work around the user's working directory out of
// commands about a module that has nothing to do with it.
var moduleEnv = []string{"GOWORK=off"}

// goCmd runs the go command in dir with the installer's environment plus
// env.
func (in *installer) goCmd(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, fmt.Errorf("building plugins needs the Go toolchain (go) on PATH: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), in.o.Env...), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("go %s: %s", strings.Join(args, " "), msg)
	}
	return stdout.Bytes(), nil
}

// localSource builds a Go main package in a local directory. Its version
// is whatever the built plugin reports in its description.
type localSource struct {
	in   *installer
	name string
	dir  string
}

func (s *localSource) kind() string { return KindLocal }

// versions is empty: the version is known only after building.
func (s *localSource) versions(context.Context) ([]string, error) { return nil, nil }

func (s *localSource) fetch(ctx context.Context, _ string, dst string) error {
	// -trimpath keeps the build directory out of the binary, so that the
	// same source and toolchain give the same bytes (and the same hash) on
	// every machine.
	if _, err := s.in.goCmd(ctx, s.dir, nil, "build", "-trimpath", "-tags", sdk.BuildTags, "-o", dst, "."); err != nil {
		return fmt.Errorf("plugin %s: build %s: %w", s.name, s.dir, err)
	}
	return nil
}

func (s *localSource) hashes(string) map[string]string { return nil }

// mirrorSource copies a prebuilt executable from a directory laid out for
// air-gapped machines:
//
//	sweetspot-plugin-NAME_VERSION_OS_ARCH[.exe]
//	SHA256SUMS
type mirrorSource struct {
	name string
	dir  string

	files map[string]mirrorFile // by file name, read once
	sums  map[string]string     // file name -> "sha256:HEX"
}

type mirrorFile struct {
	version, platform string
}

func (s *mirrorSource) kind() string { return KindMirror }

func (s *mirrorSource) load() error {
	if s.files != nil {
		return nil
	}
	sums, err := readSums(filepath.Join(s.dir, SumsFile))
	if err != nil {
		return fmt.Errorf("plugin %s: mirror %s: %w", s.name, s.dir, err)
	}
	files := map[string]mirrorFile{}
	prefix := sdk.PluginPrefix + s.name + "_"
	for file := range sums {
		rest, ok := strings.CutPrefix(strings.TrimSuffix(file, ".exe"), prefix)
		if !ok {
			continue
		}
		parts := strings.Split(rest, "_")
		if len(parts) < 3 {
			continue
		}
		n := len(parts)
		files[file] = mirrorFile{version: strings.Join(parts[:n-2], "_"), platform: parts[n-2] + "_" + parts[n-1]}
	}
	s.files, s.sums = files, sums
	return nil
}

// readSums parses a sha256sum(1) listing ("HEX  NAME" or "HEX *NAME").
func readSums(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		hexSum, file, ok := strings.Cut(text, " ")
		file = strings.TrimPrefix(strings.TrimLeft(file, " "), "*")
		sum, err := hex.DecodeString(hexSum)
		if !ok || err != nil || len(sum) != sha256.Size || file == "" {
			return nil, fmt.Errorf("%s:%d: want \"SHA256HEX  FILE\", got %q", filepath.Base(path), line, text)
		}
		if strings.ContainsAny(file, `/\`) {
			return nil, fmt.Errorf("%s:%d: %q is not a file name in the mirror directory", filepath.Base(path), line, file)
		}
		sums[file] = lockfile.FormatHash(sum)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return sums, nil
}

func (s *mirrorSource) versions(context.Context) ([]string, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	platform := lockfile.Platform()
	var out []string
	for _, f := range s.files {
		if f.platform == platform && !slices.Contains(out, f.version) {
			out = append(out, f.version)
		}
	}
	sortVersions(out)
	return out, nil
}

// sortVersions sorts ascending, versions that do not parse first.
func sortVersions(vs []string) {
	slices.SortFunc(vs, func(a, b string) int {
		va, ea := version.NewVersion(a)
		vb, eb := version.NewVersion(b)
		switch {
		case ea != nil && eb != nil:
			return strings.Compare(a, b)
		case ea != nil:
			return -1
		case eb != nil:
			return 1
		}
		return va.Compare(vb)
	})
}

func (s *mirrorSource) fileFor(v, platform string) (string, bool) {
	for file, f := range s.files {
		if f.version == v && f.platform == platform {
			return file, true
		}
	}
	return "", false
}

func (s *mirrorSource) fetch(_ context.Context, v, dst string) error {
	if err := s.load(); err != nil {
		return err
	}
	platform := lockfile.Platform()
	file, ok := s.fileFor(v, platform)
	if !ok {
		return fmt.Errorf("plugin %s: mirror %s has no %s%s_%s_%s", s.name, s.dir, sdk.PluginPrefix, s.name, v, platform)
	}
	sum, err := copyFile(filepath.Join(s.dir, file), dst)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", s.name, err)
	}
	if got := lockfile.FormatHash(sum); got != s.sums[file] {
		os.Remove(dst)
		return fmt.Errorf("plugin %s: mirror file %s has %s, but %s lists %s: the mirror is damaged or was tampered with",
			s.name, filepath.Join(s.dir, file), got, SumsFile, s.sums[file])
	}
	return nil
}

func (s *mirrorSource) hashes(v string) map[string]string {
	out := map[string]string{}
	for file, f := range s.files {
		if f.version == v {
			out[f.platform] = s.sums[file]
		}
	}
	return out
}

// copyFile copies src to dst (mode 0755) and returns the sha256 of what it
// wrote.
func copyFile(src, dst string) ([]byte, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return nil, fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// goSource installs a Go module's (or a package's in a module) main
// package with `go install PATH@VERSION`, which fetches through the module
// proxy and checks the module against go.sum's database.
type goSource struct {
	in   *installer
	name string
	path string // as written: a module path or a package path inside one

	module string   // the module that holds path, once versions ran
	list   []string // its tagged versions
}

func (s *goSource) kind() string { return KindGo }

// versions asks the module proxy (`go list -m -versions`). path may name a
// package inside a module; its module is the longest prefix the proxy
// knows.
func (s *goSource) versions(ctx context.Context) ([]string, error) {
	if s.module != "" {
		return s.list, nil
	}
	dir, err := os.MkdirTemp("", "sweetspot-install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var firstErr error
	for mod := s.path; strings.Contains(mod, "/") || mod == s.path; mod = path.Dir(mod) {
		out, err := s.in.goCmd(ctx, dir, moduleEnv, "list", "-m", "-versions", "-json", mod)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			if ctx.Err() != nil {
				break
			}
			continue
		}
		var m struct {
			Path     string
			Versions []string
		}
		if err := json.Unmarshal(out, &m); err != nil {
			return nil, fmt.Errorf("plugin %s: go list printed %q: %w", s.name, out, err)
		}
		s.module, s.list = m.Path, m.Versions
		if len(s.list) == 0 {
			// No tagged release: the newest commit, as `go install @latest`
			// picks it, is the only version there is.
			latest, err := s.in.goCmd(ctx, dir, moduleEnv, "list", "-m", "-json", mod+"@latest")
			if err != nil {
				return nil, fmt.Errorf("plugin %s: %w", s.name, err)
			}
			var l struct{ Version string }
			if err := json.Unmarshal(latest, &l); err != nil || l.Version == "" {
				return nil, fmt.Errorf("plugin %s: go list printed %q", s.name, latest)
			}
			s.list = []string{l.Version}
		}
		return s.list, nil
	}
	return nil, fmt.Errorf("plugin %s: cannot find the Go module of %s: %w", s.name, s.path, firstErr)
}

func (s *goSource) fetch(ctx context.Context, v, dst string) error {
	bin, err := os.MkdirTemp(filepath.Dir(dst), ".gobin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	work, err := os.MkdirTemp("", "sweetspot-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	env := append([]string{"GOBIN=" + bin}, moduleEnv...)
	if _, err := s.in.goCmd(ctx, work, env, "install", "-trimpath", "-tags", sdk.BuildTags, s.path+"@"+v); err != nil {
		return fmt.Errorf("plugin %s: %w", s.name, err)
	}
	entries, err := os.ReadDir(bin)
	if err != nil {
		return err
	}
	if len(entries) != 1 {
		return fmt.Errorf("plugin %s: go install %s@%s left %d files, want the one executable (is it a main package?)", s.name, s.path, v, len(entries))
	}
	return os.Rename(filepath.Join(bin, entries[0].Name()), dst)
}

func (s *goSource) hashes(string) map[string]string { return nil }

// exeName is the executable name of a plugin on this platform.
func exeName(name string) string {
	if runtime.GOOS == "windows" {
		return sdk.PluginPrefix + name + ".exe"
	}
	return sdk.PluginPrefix + name
}
