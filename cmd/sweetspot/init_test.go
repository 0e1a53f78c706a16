package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// oneLine joins wrapped diagnostic text back into single spaces.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// TestInitLocksThePluginAndRunRefusesAChangedOne is the check, as a
// user runs it: a pipeline requiring the example plugin from its source
// directory; `sweetspot init` installs and locks it; the run works; one
// byte of the executable changes; the next run refuses the plugin before
// starting it.
func TestInitLocksThePluginAndRunRefusesAChangedOne(t *testing.T) {
	dir := t.TempDir()
	src, err := filepath.Abs("../../examples/plugins/standardize")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../examples/standardize/pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "pipeline.hcl", fmt.Sprintf(`sweetspot {
  required_plugins {
    standardize = { source = %q, version = ">= 0.1, < 1" }
  }
}

%s`, src, example))

	r := sweetspot(t, dir, "init")
	if r.code != 0 {
		t.Fatalf("init: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	bin := filepath.Join(dir, ".sweetspot", "plugins", sdk.PluginPrefix+"standardize")
	lockPath := filepath.Join(dir, lockfile.FileName)
	lock, err := lockfile.Read(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	entry := lock.Plugins["standardize"]
	sum, err := lockfile.HashFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	want := lockfile.FormatHash(sum)
	if entry == nil || entry.Version != "0.1.0" || entry.Source != src || entry.Hashes[lockfile.Platform()] != want {
		t.Fatalf("lock entry %+v, want version 0.1.0 from %s with %s", entry, src, want)
	}
	for _, s := range []string{"standardize 0.1.0", "installed", "stages: standardize", "Wrote the lock file"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("init output lacks %q:\n%s", s, r.stdout)
		}
	}

	// A second init changes nothing.
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(lockPath, past, past); err != nil {
		t.Fatal(err)
	}
	r = sweetspot(t, dir, "init")
	if r.code != 0 || !strings.Contains(r.stdout, "unchanged") || !strings.Contains(r.stdout, "is up to date") {
		t.Errorf("second init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if fi, err := os.Stat(lockPath); err != nil || !fi.ModTime().Equal(past) {
		t.Error("the second init rewrote the lock file")
	}

	r = sweetspot(t, dir, "plugins", "list")
	if r.code != 0 {
		t.Fatalf("plugins list: exit %d\n%s", r.code, r.stderr)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(r.stdout, "\n")[1:] {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	if got := strings.Join(rows["standardize"], " "); got != strings.Join([]string{"standardize", "0.1.0", src, "ok", "standardize", filepath.Join(".sweetspot", "plugins", sdk.PluginPrefix+"standardize")}, " ") {
		t.Errorf("standardize row: %q\n%s", got, r.stdout)
	}
	if f := rows["builtin"]; len(f) < 4 || f[3] != "builtin" {
		t.Errorf("builtin row: %q", f)
	}
	if f := rows["testkit"]; len(f) < 4 || f[3] != "unlocked" {
		t.Errorf("testkit row (found on SWEETSPOT_PLUGIN_PATH, not locked): %q", f)
	}

	r = sweetspot(t, dir, "run", ".")
	if r.code != 0 {
		t.Fatalf("run: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	m := onlyRun(t, dir)
	for _, s := range m.Stages {
		if s.Addr == "standardize.scale" && s.Status != runstore.StatusSucceeded {
			t.Errorf("standardize.scale: %s %s", s.Status, s.Error)
		}
	}

	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	changed, _ := lockfile.HashFile(bin)

	r = sweetspot(t, dir, "run", ".")
	if r.code == 0 {
		t.Fatalf("the run with a changed plugin succeeded:\n%s", r.stdout)
	}
	msg := oneLine(r.stderr)
	for _, s := range []string{
		"plugin standardize: checksum mismatch for " + filepath.Join(".sweetspot", "plugins", sdk.PluginPrefix+"standardize"),
		"expects " + want, "the file has " + lockfile.FormatHash(changed),
		"so it was not started", "`sweetspot init --upgrade`", lockfile.FileName,
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	// The refusal came before the run was created, let alone a stage.
	onlyRun(t, dir)

	r = sweetspot(t, dir, "plugins", "list")
	if !strings.Contains(r.stdout, "MISMATCH") || !strings.Contains(oneLine(r.stderr), "checksum mismatch") {
		t.Errorf("plugins list after the change:\n%s\n%s", r.stdout, r.stderr)
	}

	// init puts the locked executable back (the build is reproducible).
	r = sweetspot(t, dir, "init")
	if r.code != 0 || !strings.Contains(r.stdout, "reinstalled") {
		t.Fatalf("init after the change: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if again, _ := lockfile.HashFile(bin); lockfile.FormatHash(again) != want {
		t.Errorf("reinstalled executable has %x, want %s", again, want)
	}

	// Without the installed executable the host finds the other build on
	// SWEETSPOT_PLUGIN_PATH, and does not trust it either.
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	r = sweetspot(t, dir, "plugins", "list")
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "standardize" {
			if f[3] != "MISMATCH" || f[len(f)-1] != filepath.Join(pluginDir, sdk.PluginPrefix+"standardize") {
				t.Errorf("standardize row without the installed executable: %q", line)
			}
		}
	}
}

// TestAnotherProtocolVersionIsRefused: a plugin built for another protocol
// version is refused, with both versions named and what to upgrade.
func TestAnotherProtocolVersionIsRefused(t *testing.T) {
	dir := t.TempDir()
	plugins := filepath.Join(dir, ".sweetspot", "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	desc := fmt.Sprintf(`{"name":"future","version":"9.0.0","protocol_version":%d,"stages":[{"kind":"future"}]}`, sdk.ProtocolVersion+1)
	writeFile(t, plugins, sdk.PluginPrefix+"future", "#!/bin/sh\necho '"+desc+"'\n")
	if err := os.Chmod(filepath.Join(plugins, sdk.PluginPrefix+"future"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "pipeline.hcl", "stage \"future\" \"f\" {\n}\n")
	r := sweetspot(t, dir, "validate", "pipeline.hcl")
	if r.code != exitInvalid {
		t.Fatalf("validate: exit %d\n%s", r.code, r.stderr)
	}
	msg := oneLine(r.stderr)
	for _, s := range []string{
		"Plugin refused",
		fmt.Sprintf("speaks stage protocol version %d, but this sweetspot speaks version %d", sdk.ProtocolVersion+1, sdk.ProtocolVersion),
		"upgrade sweetspot",
	} {
		if !strings.Contains(msg, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

func TestInitWithoutRequiredPlugins(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pipeline.hcl", "stage \"requirements\" \"sla\" {\n  min_accuracy = 0.9\n}\n")
	r := sweetspot(t, dir, "init", "pipeline.hcl")
	if r.code != 0 || !strings.Contains(r.stdout, "requires no plugins") {
		t.Errorf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, lockfile.FileName)); err == nil {
		t.Error("init wrote a lock file for a pipeline that requires nothing")
	}
	writeFile(t, dir, "pipeline.hcl", "sweetspot {\n  required_plugins {\n    x = { version = \">= 1\" }\n  }\n}\n")
	r = sweetspot(t, dir, "init", "pipeline.hcl")
	if r.code != exitInvalid || !strings.Contains(r.stderr, "Missing plugin source") || !strings.Contains(r.stderr, "pipeline.hcl:3") {
		t.Errorf("invalid settings: exit %d\n%s", r.code, r.stderr)
	}
}

func TestPluginsListShowsLockedButMissing(t *testing.T) {
	dir := t.TempDir()
	lock := &lockfile.File{Plugins: map[string]*lockfile.Plugin{"ghost": {Name: "ghost", Source: "./ghost", Version: "2.1.0",
		Hashes: map[string]string{lockfile.Platform(): "sha256:" + strings.Repeat("0", 64)}}}}
	if err := lockfile.Write(filepath.Join(dir, lockfile.FileName), lock); err != nil {
		t.Fatal(err)
	}
	r := sweetspot(t, dir, "plugins", "list")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var row string
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "ghost ") {
			row = strings.Join(strings.Fields(line), " ")
		}
	}
	if want := "ghost 2.1.0 ./ghost missing - (not installed: run sweetspot init)"; row != want {
		t.Errorf("ghost row = %q, want %q\n%s", row, want, r.stdout)
	}
}
