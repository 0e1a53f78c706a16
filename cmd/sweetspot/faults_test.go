package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// faultPipeline surrounds one misbehaving stage, always named "bad", with
// a stage that depends on it and two that do not.
const faultPipeline = `
stage "emit" "independent" {
  plugin = "faulty"
  rows   = 5
}
stage "passthrough" "after_independent" {
  plugin = "faulty"
  input  = stage.emit.independent.table
}
%s
stage "passthrough" "dependent" {
  plugin = "faulty"
  input  = stage.%s.bad.%s
}
`

// Every way a plugin can misbehave ends in one clear error for its stage:
// the run exits 1 and says what happened; the stage that depends on it is
// skipped, naming it; the independent stages finish; the run directory is
// whole (the manifest loads, every committed file has its recorded sha256,
// no temporary file is left); and no plugin process, or child of one,
// survives.
func TestMisbehavingPlugins(t *testing.T) {
	plugins := faultyPlugins(t)
	for _, c := range []struct {
		name       string
		kind, port string
		block      string
		// want matches the stage's error in the manifest and on stderr;
		// "" means the stage succeeds, and so does the run.
		want string
		// rows is what the dependent stage gets when the stage succeeds.
		rows int64
	}{
		{
			name: "crash", kind: "crash", port: "table",
			block: `stage "crash" "bad" { plugin = "faulty" }`,
			want:  `^stage crash\.bad \(plugin faulty\): the plugin process exited \(exit status 3\) before the stage finished:\ntestkit: crashing on purpose$`,
		},
		{
			name: "hang ignoring cancellation", kind: "hang", port: "table",
			block: "stage \"hang\" \"bad\" {\n  plugin  = \"faulty\"\n  timeout = \"1s\"\n}",
			want:  `^stage hang\.bad exceeded its timeout of 1s \(plugin faulty was stopped\)$`,
		},
		{
			name: "exit during the handshake", kind: "emit", port: "table",
			block: "stage \"emit\" \"bad\" {\n  plugin = \"faulty-exits\"\n  rows   = 3\n}",
			want:  `^stage emit\.bad: start: plugin faulty-exits exited \(exit status 2\) during the go-plugin handshake, before it served; plugin output: testkit: giving up before the handshake$`,
		},
		{
			name: "garbage instead of the handshake", kind: "emit", port: "table",
			block: "stage \"emit\" \"bad\" {\n  plugin = \"faulty-garbage\"\n  rows   = 3\n}",
			want:  `^stage emit\.bad: start: plugin faulty-garbage printed "Welcome to testkit! Loading models\.\.\." on stdout where the go-plugin handshake line belongs: it is not a sweetspot plugin, or it writes to stdout before serving \(a plugin logs to stderr\); the process was killed$`,
		},
		{
			name: "garbage on stdout while running", kind: "stdout", port: "table",
			block: "stage \"stdout\" \"bad\" {\n  plugin  = \"faulty\"\n  timeout = \"30s\"\n}",
			want:  `^stage stdout\.bad: the plugin faulty wrote 34 byte\(s\) to stdout, which belongs to the plugin protocol \(a plugin logs to stderr\): "DEBUG rows=42 \\x00\\x01 not for the host"; the plugin process \(pid \d+\) was stopped$`,
		},
		{
			name: "schema it did not declare", kind: "badschema", port: "out",
			block: `stage "badschema" "bad" { plugin = "faulty" }`,
			want:  `^stage badschema\.bad \(plugin faulty\): output port "out": schema mismatch: batch does not match the declared schema: column x is float64, declared int64$`,
		},
		{
			name: "batch far over the message limit", kind: "bigbatch", port: "table",
			block: "stage \"bigbatch\" \"bad\" {\n  plugin    = \"faulty\"\n  rows      = 48\n  row_bytes = 1048576\n}",
			rows:  48,
		},
		{
			name: "one row over the message limit", kind: "bigbatch", port: "table",
			block: "stage \"bigbatch\" \"bad\" {\n  plugin    = \"faulty\"\n  rows      = 1\n  row_bytes = 41943040\n}",
			want:  `^stage bigbatch\.bad \(plugin faulty\): port "table": one row is too large to send: split down to a single row, its Arrow message is 40\.0 MiB, over the 32 MiB gRPC message limit \(keep large values in files and pass their paths\)$`,
		},
		{
			name: "message over the limit from a plugin without the SDK", kind: "emit", port: "table",
			block: "stage \"emit\" \"bad\" {\n  plugin = \"faulty-rogue\"\n  rows   = 3\n}",
			want:  `^stage emit\.bad \(plugin faulty-rogue\): the plugin sent one message of 40\.0 MiB, over the 32 MiB gRPC message limit, so the host could not receive it \(the sweetspot SDK splits batches by rows to stay under the limit; this plugin sends without it\); the plugin process \(pid \d+\) was killed$`,
		},
		{
			name: "hang with a child that ignores signals", kind: "hang", port: "table",
			block: "stage \"hang\" \"bad\" {\n  plugin  = \"faulty\"\n  child   = true\n  timeout = \"1s\"\n}",
			want:  `^stage hang\.bad exceeded its timeout of 1s \(plugin faulty was stopped\)$`,
		},
		{
			name: "memory leak", kind: "leak", port: "table",
			block: "stage \"leak\" \"bad\" {\n  plugin       = \"faulty\"\n  memory_limit = \"96MiB\"\n  timeout      = \"30s\"\n}",
			want:  `^stage leak\.bad used (9[7-9]|1\d\d) MiB, over its memory_limit of 96 MiB; the plugin process faulty \(pid \d+\) and its children were killed$`,
		},
		{
			name: "memory leak in a child process", kind: "leak", port: "table",
			block: "stage \"leak\" \"bad\" {\n  plugin       = \"faulty\"\n  child        = true\n  memory_limit = \"96MiB\"\n  timeout      = \"30s\"\n}",
			want:  `^stage leak\.bad used (9[7-9]|1\d\d) MiB, over its memory_limit of 96 MiB; the plugin process faulty \(pid \d+\) and its children were killed$`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "p.hcl", fmt.Sprintf(faultPipeline, c.block, c.kind, c.port))
			r := sweetspotWith(t, dir, []string{"SWEETSPOT_PLUGIN_PATH=" + plugins, "HOME=" + dir}, "run", "p.hcl")
			m := onlyRun(t, dir)
			assertNoPluginLeft(t, m, plugins)
			assertRunDirWhole(t, dir, m)

			status := map[string]*runstore.StageRecord{}
			for _, s := range m.Stages {
				status[s.Addr] = s
			}
			for _, addr := range []string{"emit.independent", "passthrough.after_independent"} {
				if s := status[addr]; s == nil || s.Status != runstore.StatusSucceeded {
					t.Errorf("independent stage %s did not finish: %+v", addr, s)
				} else if e, ok := s.Execution(0); !ok || e.PeakRSS <= 0 {
					t.Errorf("stage %s: no peak RSS recorded: %+v", addr, e)
				}
			}
			bad, dep := status[c.kind+".bad"], status["passthrough.dependent"]
			if bad == nil || dep == nil {
				t.Fatalf("manifest lacks the stages: %+v", m.Stages)
			}

			if c.want == "" {
				if r.code != 0 || m.Status != runstore.StatusSucceeded || dep.Status != runstore.StatusSucceeded {
					t.Fatalf("exit %d, run %s, dependent %s; want all to succeed\n%s", r.code, m.Status, dep.Status, r.stderr)
				}
				if got := dep.Outputs[0].Rows; got != c.rows {
					t.Errorf("the dependent stage got %d rows, want %d", got, c.rows)
				}
				return
			}
			if r.code != exitFailed || m.Status != runstore.StatusFailed {
				t.Fatalf("exit %d, run %s; want 1 and failed\n%s", r.code, m.Status, r.stderr)
			}
			re := regexp.MustCompile(c.want)
			if bad.Status != runstore.StatusFailed || !re.MatchString(bad.Error) {
				t.Errorf("stage %s is %s with error\n%s\nwant failed with an error matching\n%s", bad.Addr, bad.Status, bad.Error, c.want)
			}
			if !strings.Contains(r.stderr, bad.Error) {
				t.Errorf("stderr does not report the stage's error %q:\n%s", bad.Error, r.stderr)
			}
			wantSkip := "not run: it depends on stage " + bad.Addr + ", which failed"
			// Plugins start when their stage is ready: a stage that can
			// never run starts no process.
			if dep.Status != runstore.StatusSkipped || dep.Error != wantSkip || dep.Pid != 0 {
				t.Errorf("dependent stage is %s (%q, pid %d), want skipped with %q and no process started", dep.Status, dep.Error, dep.Pid, wantSkip)
			}
			if !strings.Contains(r.stderr, "passthrough.dependent skipped: "+wantSkip) {
				t.Errorf("stderr does not say the dependent stage was skipped:\n%s", r.stderr)
			}
		})
	}
}

// faultyPlugins is a plugin directory with the test plugin kit as
// "faulty", and copies of it that fail at start (see internal/testkit).
func faultyPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(pluginDir, "sweetspot-plugin-testkit"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"faulty", "faulty-exits", "faulty-garbage", "faulty-rogue"} {
		if err := os.WriteFile(filepath.Join(dir, "sweetspot-plugin-"+name), src, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// assertNoPluginLeft checks that no process recorded in the manifest, and
// no process at all running an executable from the plugin directory
// (children included), is still there once the host has exited.
func assertNoPluginLeft(t *testing.T, m runstore.Manifest, plugins string) {
	t.Helper()
	assertGone(t, m)
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesRunningFrom(plugins)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("plugin processes outlived the run: %v", left)
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesRunningFrom lists the live processes whose executable is in dir.
func processesRunningFrom(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil || filepath.Dir(exe) != dir {
			continue
		}
		if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && zombie(stat) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// zombie reports whether a /proc/PID/stat line is a process that has
// exited and waits for its parent to reap it.
func zombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// assertRunDirWhole checks what a run directory promises after any
// failure: the manifest loads, every file it lists is there with its
// recorded sha256, and no temporary file is left behind.
func assertRunDirWhole(t *testing.T, dir string, m runstore.Manifest) {
	t.Helper()
	store := runstore.Open(filepath.Join(dir, runstore.DefaultRoot))
	run, err := store.Load(m.RunID)
	if err != nil {
		t.Fatalf("manifest does not load: %v", err)
	}
	files := 0
	for _, s := range run.Manifest().Stages {
		var listed []runstore.OutputFile
		listed = append(listed, s.Outputs...)
		for _, e := range s.Executions {
			listed = append(listed, e.Files...)
		}
		for _, f := range listed {
			files++
			sum, err := runstore.FileSHA256(run.Path(f.Path))
			if err != nil || sum != f.SHA256 {
				t.Errorf("%s (stage %s): sha256 %s, %v; the manifest says %s", f.Path, s.Addr, sum, err, f.SHA256)
			}
		}
	}
	if files == 0 {
		t.Error("no committed file to check: the independent stages wrote nothing")
	}
	err = filepath.WalkDir(run.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}
