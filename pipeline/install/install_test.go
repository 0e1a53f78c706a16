package install

import (
	"archive/zip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// fakeMain is a minimal plugin executable: it describes itself and does
// nothing else. It has no dependencies, so it builds offline in a second.
const fakeMain = `package main

import (
	"fmt"
	"os"
)

var (
	version  = "1.0.0"
	protocol = "1"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "describe" {
		fmt.Printf("{\"name\":\"fake\",\"version\":%q,\"protocol_version\":%s,\"stages\":[{\"kind\":\"fake_kind\"}]}\n", version, protocol)
		return
	}
	fmt.Fprintln(os.Stderr, "only describe")
	os.Exit(1)
}
`

// fakeSource writes the fake plugin's module into a new directory.
func fakeSource(t *testing.T, module string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module "+module+"\n\ngo 1.26\n")
	writeFile(t, filepath.Join(dir, "main.go"), fakeMain)
	return dir
}

// buildFake builds the fake plugin reporting version v and protocol p.
func buildFake(t *testing.T, src, out, v string, p int) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "-ldflags", fmt.Sprintf("-X main.version=%s -X main.protocol=%d", v, p), ".")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fake plugin: %v\n%s", err, b)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func required(name, source, constraint string) map[string]config.RequiredPlugin {
	return map[string]config.RequiredPlugin{name: {Name: name, Source: source, Version: constraint}}
}

// project is a pipeline directory with its plugin directory.
type project struct {
	dir, lock, plugins string
}

func newProject(t *testing.T) project {
	dir := t.TempDir()
	return project{dir: dir, lock: filepath.Join(dir, lockfile.FileName), plugins: filepath.Join(dir, ".sweetspot", "plugins")}
}

func (p project) options(req map[string]config.RequiredPlugin) Options {
	return Options{Required: req, BaseDir: p.dir, LockFile: p.lock, Dir: p.plugins}
}

func readLock(t *testing.T, path string) *lockfile.File {
	t.Helper()
	f, err := lockfile.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func mtime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// flipByte changes one byte in the middle of a file, keeping its size.
func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestInstallLocalDirectory installs the repository's third-party example
// plugin from its source directory (its own module, built offline), locks
// it, re-runs init as a no-op, and has the host refuse the executable once
// one byte of it changed, then init repair it.
func TestInstallLocalDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the example plugin")
	}
	example, err := filepath.Abs("../../examples/plugins/standardize")
	if err != nil {
		t.Fatal(err)
	}
	p := newProject(t)
	rel, err := filepath.Rel(p.dir, example)
	if err != nil {
		t.Fatal(err)
	}
	req := required("standardize", rel, ">= 0.1, < 1")
	ctx := context.Background()

	res, err := Init(ctx, p.options(req))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(p.plugins, sdk.PluginPrefix+"standardize")
	sum, err := lockfile.HashFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := []Installed{{Name: "standardize", Source: rel, Kind: KindLocal, Version: "0.1.0", Path: bin, Sum: sum, Stages: []string{"standardize"}, Action: ActionInstalled}}
	if diff := cmp.Diff(want, res.Plugins); diff != "" {
		t.Errorf("installed (-want +got):\n%s", diff)
	}
	if !res.LockWritten {
		t.Error("the lock file was not written")
	}
	lock := readLock(t, p.lock)
	entry := lock.Plugins["standardize"]
	if entry == nil || entry.Source != rel || entry.Version != "0.1.0" || entry.Constraints != ">= 0.1, < 1" ||
		entry.Hashes[lockfile.Platform()] != lockfile.FormatHash(sum) || len(entry.Hashes) != 1 {
		t.Fatalf("lock entry = %+v", entry)
	}
	// Built with sdk.BuildTags: the example reaches package net through the
	// SDK, which without them links the C library through the dynamic
	// loader (when cgo is available, as on Linux with a C compiler).
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Errorf("the installed plugin is linked dynamically (it has a program interpreter); want a static executable")
			}
		}
		f.Close()
	}
	leftovers, _ := filepath.Glob(filepath.Join(p.plugins, ".*"))
	if len(leftovers) != 0 {
		t.Errorf("staging files left behind: %v", leftovers)
	}

	// Init again: nothing is rebuilt, nothing is rewritten.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, f := range []string{p.lock, bin} {
		if err := os.Chtimes(f, past, past); err != nil {
			t.Fatal(err)
		}
	}
	res, err = Init(ctx, p.options(req))
	if err != nil {
		t.Fatal(err)
	}
	if res.LockWritten || len(res.Plugins) != 1 || res.Plugins[0].Action != ActionUnchanged {
		t.Errorf("second init: %+v", res)
	}
	if !mtime(t, p.lock).Equal(past) || !mtime(t, bin).Equal(past) {
		t.Error("the second init touched the lock file or the executable")
	}

	// The host trusts the locked executable...
	host := func() *pluginhost.Host {
		h, err := pluginhost.New(pluginhost.WithSearchPaths(p.plugins), pluginhost.WithLockFile(p.lock))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(h.Close)
		return h
	}
	if _, err := host().Resolve("standardize", "standardize"); err != nil {
		t.Fatal(err)
	}
	// ...and refuses it once a byte changed, before running it.
	flipByte(t, bin)
	h := host()
	_, err = h.Resolve("standardize", "standardize")
	var ce *pluginhost.ChecksumError
	if !errors.As(err, &ce) || ce.Path != bin || ce.Plugin != "standardize" {
		t.Fatalf("Resolve after the flip: %v, want a checksum error for %s", err, bin)
	}
	if _, err := h.Start(ctx, "standardize"); !errors.As(err, &ce) {
		t.Fatalf("Start after the flip: %v, want a checksum error", err)
	}

	// Init puts the locked build back: the build is reproducible.
	res, err = Init(ctx, p.options(req))
	if err != nil {
		t.Fatal(err)
	}
	if res.Plugins[0].Action != ActionReinstalled || res.LockWritten {
		t.Errorf("init after tampering: %+v", res)
	}
	if got, _ := lockfile.HashFile(bin); !slices.Equal(got, sum) {
		t.Errorf("reinstalled executable has %x, want the locked %x", got, sum)
	}
	if _, err := host().Resolve("standardize", "standardize"); err != nil {
		t.Errorf("Resolve after the repair: %v", err)
	}
}

// mirror lays out a file mirror of the fake plugin: one executable per
// version for this platform, plus a made-up entry for another platform.
func mirror(t *testing.T, dir, name string, versions ...string) {
	t.Helper()
	src := fakeSource(t, "example.com/fake")
	var sums strings.Builder
	for _, v := range versions {
		file := fmt.Sprintf("%s%s_%s_%s", sdk.PluginPrefix, name, v, lockfile.Platform())
		buildFake(t, src, filepath.Join(dir, file), v, sdk.ProtocolVersion)
		sum, err := lockfile.HashFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sums, "%x  %s\n", sum, file)
		other := fmt.Sprintf("%s%s_%s_plan9_arm", sdk.PluginPrefix, name, v)
		fmt.Fprintf(&sums, "%064x  %s\n", len(v), other)
	}
	// A file of another plugin in the same mirror is ignored.
	fmt.Fprintf(&sums, "%064x  %sdecoy_9.9.9_%s\n", 7, sdk.PluginPrefix, lockfile.Platform())
	writeFile(t, filepath.Join(dir, SumsFile), sums.String())
}

func TestInstallFromMirror(t *testing.T) {
	p := newProject(t)
	mirrorDir := filepath.Join(p.dir, "mirror")
	mirror(t, mirrorDir, "fake", "1.0.0", "1.2.0", "2.0.0")
	ctx := context.Background()
	req := required("fake", "./mirror", ">= 1.1, < 2")

	res, err := Init(ctx, p.options(req))
	if err != nil {
		t.Fatal(err)
	}
	got := res.Plugins[0]
	if got.Version != "1.2.0" || got.Kind != KindMirror || got.Action != ActionInstalled || !slices.Equal(got.Stages, []string{"fake_kind"}) {
		t.Errorf("installed %+v", got)
	}
	entry := readLock(t, p.lock).Plugins["fake"]
	wantHashes := map[string]string{
		lockfile.Platform(): lockfile.FormatHash(got.Sum),
		"plan9_arm":         fmt.Sprintf("sha256:%064x", len("1.2.0")),
	}
	if diff := cmp.Diff(wantHashes, entry.Hashes); diff != "" {
		t.Errorf("hashes: the lock records every platform of the mirror (-want +got):\n%s", diff)
	}

	// A newer release in the mirror does not move the pin...
	mirror(t, mirrorDir, "fake", "1.0.0", "1.2.0", "1.5.0", "2.0.0")
	res, err = Init(ctx, p.options(req))
	if err != nil || res.Plugins[0].Version != "1.2.0" || res.Plugins[0].Action != ActionUnchanged || res.LockWritten {
		t.Errorf("init with a newer release available: %+v, %v", res, err)
	}
	// ...until an upgrade.
	o := p.options(req)
	o.Upgrade = true
	res, err = Init(ctx, o)
	if err != nil || res.Plugins[0].Version != "1.5.0" || res.Plugins[0].Action != ActionUpgraded || res.Plugins[0].Previous != "1.2.0" || !res.LockWritten {
		t.Errorf("upgrade: %+v, %v", res, err)
	}

	// A constraint the pinned version no longer meets asks for an upgrade.
	req = required("fake", "./mirror", "< 1.2")
	if _, err := Init(ctx, p.options(req)); err == nil || !strings.Contains(err.Error(), "locked version 1.5.0 does not satisfy") || !strings.Contains(err.Error(), "sweetspot init --upgrade") {
		t.Errorf("stale constraint: %v", err)
	}
	if v := readLock(t, p.lock).Plugins["fake"].Version; v != "1.5.0" {
		t.Errorf("a failed init changed the pin to %s", v)
	}
	o = p.options(req)
	o.Upgrade = true
	if res, err := Init(ctx, o); err != nil || res.Plugins[0].Version != "1.0.0" {
		t.Errorf("upgrade to the new constraint: %+v, %v", res, err)
	}
}

func TestMirrorRejectsADamagedFile(t *testing.T) {
	p := newProject(t)
	mirrorDir := filepath.Join(p.dir, "mirror")
	mirror(t, mirrorDir, "fake", "1.0.0")
	flipByte(t, filepath.Join(mirrorDir, fmt.Sprintf("%sfake_1.0.0_%s", sdk.PluginPrefix, lockfile.Platform())))
	_, err := Init(context.Background(), p.options(required("fake", "./mirror", "")))
	if err == nil || !strings.Contains(err.Error(), "SHA256SUMS lists") {
		t.Fatalf("err = %v, want a mirror checksum error", err)
	}
	if _, err := os.Stat(filepath.Join(p.plugins, sdk.PluginPrefix+"fake")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the damaged executable was installed (%v)", err)
	}
	if _, err := os.Stat(p.lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a lock file was written for nothing (%v)", err)
	}
}

// TestInstallRefusesAnotherProtocol: a plugin built for another protocol
// version is not installed, and the message names both versions.
func TestInstallRefusesAnotherProtocol(t *testing.T) {
	p := newProject(t)
	dir := filepath.Join(p.dir, "mirror")
	src := fakeSource(t, "example.com/fake")
	file := fmt.Sprintf("%sfuture_3.0.0_%s", sdk.PluginPrefix, lockfile.Platform())
	buildFake(t, src, filepath.Join(dir, file), "3.0.0", sdk.ProtocolVersion+1)
	sum, _ := lockfile.HashFile(filepath.Join(dir, file))
	writeFile(t, filepath.Join(dir, SumsFile), fmt.Sprintf("%x  %s\n", sum, file))
	_, err := Init(context.Background(), p.options(required("future", "./mirror", "")))
	var pe *pluginhost.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a protocol error", err)
	}
	want := fmt.Sprintf("speaks stage protocol version %d, but this sweetspot speaks version %d: the plugin is newer: upgrade sweetspot", sdk.ProtocolVersion+1, sdk.ProtocolVersion)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("message %q lacks %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(p.plugins, sdk.PluginPrefix+"future")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the plugin was installed (%v)", err)
	}
}

// goProxy lays out a module proxy on disk (GOPROXY=file://...) serving
// the fake plugin's module at the given versions.
func goProxy(t *testing.T, module string, versions ...string) string {
	t.Helper()
	root := t.TempDir()
	at := filepath.Join(root, filepath.FromSlash(module), "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	gomod := "module " + module + "\n\ngo 1.26\n"
	for _, v := range versions {
		writeFile(t, filepath.Join(at, v+".info"), fmt.Sprintf(`{"Version":%q,"Time":"2025-01-01T00:00:00Z"}`, v))
		writeFile(t, filepath.Join(at, v+".mod"), gomod)
		f, err := os.Create(filepath.Join(at, v+".zip"))
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		for name, content := range map[string]string{"go.mod": gomod, "main.go": fakeMain} {
			w, err := zw.Create(module + "@" + v + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(content)); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	writeFile(t, filepath.Join(at, "list"), strings.Join(versions, "\n")+"\n")
	return root
}

// TestInstallGoModule resolves a version through a module proxy and builds
// it with `go install`. The proxy is a directory, so that the test runs
// without a network; the code path is the one a real proxy takes.
func TestInstallGoModule(t *testing.T) {
	const module = "example.com/acme/sweetspot-plugin-fake"
	proxy := goProxy(t, module, "v1.0.0", "v1.2.0", "v1.3.0-rc.1", "v2.0.0+incompatible")
	p := newProject(t)
	o := p.options(required("fake", module, "~> 1.0"))
	o.Env = []string{
		"GOPROXY=file://" + filepath.ToSlash(proxy),
		"GOSUMDB=off", // the made-up module is in no checksum database
		"GOMODCACHE=" + t.TempDir(),
		"GOFLAGS=-modcacherw", // so that the test can delete the cache
		"GOTOOLCHAIN=local",
	}
	res, err := Init(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Plugins[0]
	if got.Version != "v1.2.0" || got.Kind != KindGo || !slices.Equal(got.Stages, []string{"fake_kind"}) {
		t.Errorf("installed %+v", got)
	}
	entry := readLock(t, p.lock).Plugins["fake"]
	if entry.Version != "v1.2.0" || entry.Source != module || entry.Hashes[lockfile.Platform()] != lockfile.FormatHash(got.Sum) {
		t.Errorf("lock entry %+v", entry)
	}

	// A path the proxy does not know is reported with go's own reason.
	o.Required = required("nope", "example.com/acme/sweetspot-plugin-nope", "")
	if _, err := Init(context.Background(), o); err == nil || !strings.Contains(err.Error(), "cannot find the Go module of example.com/acme/sweetspot-plugin-nope") {
		t.Errorf("unknown module: %v", err)
	}
	// So is a constraint no version meets, with what there is.
	o.Required = required("fake2", module, ">= 3")
	if _, err := Init(context.Background(), o); err == nil || !strings.Contains(err.Error(), "available: v1.0.0, v1.2.0") {
		t.Errorf("unsatisfiable constraint: %v", err)
	}
}

func TestRemovedPluginsLeaveTheLock(t *testing.T) {
	p := newProject(t)
	mirror(t, filepath.Join(p.dir, "mirror"), "fake", "1.0.0")
	mirror(t, filepath.Join(p.dir, "mirror2"), "other", "1.0.0")
	req := required("fake", "./mirror", "")
	req["other"] = config.RequiredPlugin{Name: "other", Source: "./mirror2"}
	if _, err := Init(context.Background(), p.options(req)); err != nil {
		t.Fatal(err)
	}
	res, err := Init(context.Background(), p.options(required("fake", "./mirror", "")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Removed, []string{"other"}) || !res.LockWritten {
		t.Errorf("result %+v", res)
	}
	if _, ok := readLock(t, p.lock).Plugins["other"]; ok {
		t.Error("the dropped plugin is still locked")
	}
}

func TestSourceErrors(t *testing.T) {
	p := newProject(t)
	writeFile(t, filepath.Join(p.dir, "empty", "README"), "nothing to build")
	writeFile(t, filepath.Join(p.dir, "file.txt"), "x")
	tests := []struct{ name, source, want string }{
		{"missing", "./nowhere", "no such file or directory"},
		{"file", "./file.txt", "is not a directory"},
		{"nothing", "./empty", "holds neither Go files to build nor a SHA256SUMS file"},
		{"not a module", "acme/plugin", `first element "acme" is not a domain name`},
		{"builtin", "./empty", "belongs to sweetspot's built-in stages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "x"
			if tt.name == "builtin" {
				name = "builtin"
			}
			_, err := Init(context.Background(), p.options(required(name, tt.source, "")))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLocalVersionOutsideConstraint(t *testing.T) {
	p := newProject(t)
	src := fakeSource(t, "example.com/fake")
	_, err := Init(context.Background(), Options{Required: required("fake", src, ">= 2"), BaseDir: p.dir, LockFile: p.lock, Dir: p.plugins})
	if err == nil || !strings.Contains(err.Error(), `builds version 1.0.0, which does not satisfy the constraint ">= 2"`) {
		t.Errorf("err = %v", err)
	}
}

func TestCheckLock(t *testing.T) {
	p := newProject(t)
	mirror(t, filepath.Join(p.dir, "mirror"), "fake", "1.0.0")
	rng := hcl.Range{Filename: "p.hcl", Start: hcl.Pos{Line: 3, Column: 5, Byte: 20}, End: hcl.Pos{Line: 3, Column: 30, Byte: 45}}
	reqs := func(source, constraint string) config.Requirements {
		return config.Requirements{Plugins: map[string]config.RequiredPlugin{"fake": {Name: "fake", Source: source, Version: constraint, Range: rng}}}
	}
	summary := func(d hcl.Diagnostics) string {
		var s []string
		for _, x := range d {
			s = append(s, x.Detail)
			if x.Subject == nil || *x.Subject != rng {
				t.Errorf("diagnostic at %v, want the entry's range", x.Subject)
			}
		}
		return strings.Join(s, "|")
	}
	if d := CheckLock(config.Requirements{}, p.lock); d != nil {
		t.Errorf("no requirements: %v", d)
	}
	if s := summary(CheckLock(reqs("./mirror", ""), p.lock)); !strings.Contains(s, "does not lock it. Run `sweetspot init`") {
		t.Errorf("before init: %s", s)
	}
	if _, err := Init(context.Background(), p.options(reqs("./mirror", "").Plugins)); err != nil {
		t.Fatal(err)
	}
	if d := CheckLock(reqs("./mirror", ">= 1"), p.lock); d.HasErrors() {
		t.Errorf("after init: %v", d)
	}
	if s := summary(CheckLock(reqs("./other", ""), p.lock)); !strings.Contains(s, `pins it to the source "./mirror"`) {
		t.Errorf("another source: %s", s)
	}
	if s := summary(CheckLock(reqs("./mirror", ">= 2"), p.lock)); !strings.Contains(s, "locked version 1.0.0 does not satisfy") {
		t.Errorf("stale version: %s", s)
	}
}

func TestGlobalDir(t *testing.T) {
	d, err := GlobalDir()
	home, _ := os.UserHomeDir()
	if err != nil || d != filepath.Join(home, ".sweetspot", "plugins") {
		t.Errorf("GlobalDir = %q, %v", d, err)
	}
	if runtime.GOOS != "windows" && exeName("x") != "sweetspot-plugin-x" {
		t.Errorf("exeName = %q", exeName("x"))
	}
}
