package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// fakePlugin writes a shell-script plugin into dir that appends a line to
// marker each time it runs, and describes itself as name with one stage
// kind of its name.
func fakePlugin(t *testing.T, dir, name, marker string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	desc := fmt.Sprintf(`{"name":%q,"version":"1.0.0","protocol_version":%d,"stages":[{"kind":%q}]}`, name, sdk.ProtocolVersion, name)
	path := filepath.Join(dir, sdk.PluginPrefix+name)
	script := fmt.Sprintf("#!/bin/sh\necho ran \"$@\" >> %s\necho '%s'\n", marker, desc)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// ran is how many times the fake plugin with this marker ran.
func ran(marker string) int {
	b, _ := os.ReadFile(marker)
	return strings.Count(string(b), "ran")
}

// lockPlugins writes dir's lock file, locking each plugin to its file's
// sha256.
func lockPlugins(t *testing.T, dir string, plugins map[string]string) {
	t.Helper()
	f := &lockfile.File{Plugins: map[string]*lockfile.Plugin{}}
	for name, exe := range plugins {
		sum, err := lockfile.HashFile(exe)
		if err != nil {
			t.Fatal(err)
		}
		f.Plugins[name] = &lockfile.Plugin{Name: name, Source: "./" + name, Version: "1.0.0",
			Hashes: map[string]string{lockfile.Platform(): lockfile.FormatHash(sum)}}
	}
	if err := lockfile.Write(filepath.Join(dir, lockfile.FileName), f); err != nil {
		t.Fatal(err)
	}
}

// lockEnv keeps the checked copies of locked plugins in the test's own
// cache directory.
func lockEnv(t *testing.T) []string {
	return []string{"SWEETSPOT_PLUGIN_PATH=" + pluginDir, "SWEETSPOT_PLUGIN_CACHE=" + filepath.Join(t.TempDir(), "cache")}
}

// TestPluginsDescribeChecksTheLock: `plugins describe` checks the plugin
// against the lock file as a run does. A script swapped in for the locked
// plugin is refused, not run, while `plugins list` says MISMATCH; the
// locked one describes itself.
func TestPluginsDescribeChecksTheLock(t *testing.T) {
	dir := t.TempDir()
	env := lockEnv(t)
	plugins := filepath.Join(dir, ".sweetspot", "plugins")
	marker := filepath.Join(dir, "locked.runs")
	exe := fakePlugin(t, plugins, "locked", marker)
	lockPlugins(t, dir, map[string]string{"locked": exe})
	good, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}

	// The swap: another script where the locked one was.
	swapped := filepath.Join(dir, "swapped.runs")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho ran >> "+swapped+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := sweetspotWith(t, dir, env, "plugins", "list")
	if !strings.Contains(r.stdout, "MISMATCH") {
		t.Errorf("plugins list does not say MISMATCH:\n%s%s", r.stdout, r.stderr)
	}
	r = sweetspotWith(t, dir, env, "plugins", "describe", "locked")
	if r.code != exitFailed || !strings.Contains(oneLine(r.stderr), "checksum mismatch for "+filepath.Join(".sweetspot", "plugins", sdk.PluginPrefix+"locked")) || r.stdout != "" {
		t.Errorf("describe of the swapped plugin: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := ran(swapped); n != 0 {
		t.Fatalf("the swapped-in script ran %d times", n)
	}

	// Put back, the locked plugin is described.
	if err := os.WriteFile(exe, good, 0o755); err != nil {
		t.Fatal(err)
	}
	r = sweetspotWith(t, dir, env, "plugins", "describe", "locked")
	var d describe.PluginDescription
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &d) != nil || d.Name != "locked" {
		t.Fatalf("describe of the locked plugin: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "unverified") {
		t.Errorf("a locked plugin was described with a warning:\n%s", r.stderr)
	}
	if n := ran(marker); n != 1 {
		t.Errorf("the locked plugin ran %d times, want 1", n)
	}
}

// TestUnlockedPluginsDoNotRun: an executable in a plugin directory that
// the lock file does not list, and the pipeline does not name, runs for
// nothing: not run, validate, graph or plugins list. plugins describe
// refuses it unless --allow-unlocked, and then says on stderr that it runs
// it unverified.
func TestUnlockedPluginsDoNotRun(t *testing.T) {
	dir := t.TempDir()
	env := lockEnv(t)
	plugins := filepath.Join(dir, ".sweetspot", "plugins")
	spy := filepath.Join(dir, "spy.runs")
	fakePlugin(t, plugins, "spy", spy)
	lockedRuns := filepath.Join(dir, "locked.runs")
	lockPlugins(t, dir, map[string]string{"locked": fakePlugin(t, plugins, "locked", lockedRuns)})
	writeFile(t, dir, "pipeline.hcl", "stage \"requirements\" \"sla\" {\n  min_accuracy = 0.9\n}\n")

	for _, args := range [][]string{
		{"validate", "pipeline.hcl"},
		{"graph", "pipeline.hcl"},
		{"run", "pipeline.hcl"},
		{"plugins", "list"},
	} {
		r := sweetspotWith(t, dir, env, args...)
		if r.code != 0 {
			t.Errorf("%s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		if n := ran(spy); n != 0 {
			t.Fatalf("%s ran the unlocked plugin %d times", strings.Join(args, " "), n)
		}
		if args[0] == "plugins" {
			var row []string
			for _, line := range strings.Split(r.stdout, "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == "spy" {
					row = f
				}
			}
			if want := []string{"spy", "?", "-", "unlocked", "-", filepath.Join(".sweetspot", "plugins", sdk.PluginPrefix+"spy")}; strings.Join(row, " ") != strings.Join(want, " ") {
				t.Errorf("spy row = %q, want %q", row, want)
			}
			if !strings.Contains(oneLine(r.stderr), "Warning: not in the lock file, so not run to show their stage kinds: spy") {
				t.Errorf("plugins list: no warning about the unlocked plugin:\n%s", r.stderr)
			}
			if !strings.Contains(r.stdout, "locked") || ran(lockedRuns) == 0 {
				t.Errorf("the locked plugin was not described:\n%s", r.stdout)
			}
		}
	}

	r := sweetspotWith(t, dir, env, "plugins", "describe", "spy")
	if r.code != exitFailed || !strings.Contains(oneLine(r.stderr), "is not in the lock file") || !strings.Contains(r.stderr, "--allow-unlocked") {
		t.Errorf("describe of an unlocked plugin: exit %d\n%s", r.code, r.stderr)
	}
	if n := ran(spy); n != 0 {
		t.Fatalf("plugins describe ran the unlocked plugin %d times without --allow-unlocked", n)
	}
	r = sweetspotWith(t, dir, env, "plugins", "describe", "spy", "--allow-unlocked")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "spy"`) || !strings.Contains(oneLine(r.stderr), "Warning: running "+filepath.Join(".sweetspot", "plugins", sdk.PluginPrefix+"spy")+" describe unverified: it is not in the lock file") {
		t.Errorf("describe --allow-unlocked: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if n := ran(spy); n != 1 {
		t.Errorf("describe --allow-unlocked ran the plugin %d times, want 1", n)
	}

	// Without a lock file there is nothing to refuse against: it runs, and
	// says so.
	if err := os.Remove(filepath.Join(dir, lockfile.FileName)); err != nil {
		t.Fatal(err)
	}
	r = sweetspotWith(t, dir, env, "plugins", "describe", "spy")
	if r.code != 0 || !strings.Contains(oneLine(r.stderr), "describe unverified: there is no lock file") {
		t.Errorf("describe without a lock file: exit %d\n%s", r.code, r.stderr)
	}
	r = sweetspotWith(t, dir, env, "validate", "pipeline.hcl")
	if n := ran(spy); r.code != 0 || n != 2 {
		t.Errorf("validate without a lock file: exit %d, the plugin ran %d times in all (want 2)\n%s", r.code, n, r.stderr)
	}
}
