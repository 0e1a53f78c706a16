package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// manyStages is a pipeline of n testkit stages: an emit, a chain of
// passthroughs from it, and as many passthroughs that all read the emit
// (so they are all ready at once).
func manyStages(n int) string {
	var b strings.Builder
	b.WriteString("stage \"emit\" \"s0\" {\n  plugin = \"testkit\"\n  rows   = 10\n}\n")
	prev := "stage.emit.s0"
	chain := n / 2
	for i := 1; i < n; i++ {
		from := "stage.emit.s0"
		if i < chain {
			from = prev
		}
		fmt.Fprintf(&b, "\nstage \"passthrough\" \"s%d\" {\n  plugin = \"testkit\"\n  input  = %s\n}\n", i, from)
		prev = fmt.Sprintf("stage.passthrough.s%d", i)
	}
	return b.String()
}

// testkitProcesses lists the live testkit plugin processes working in dir
// (plugins inherit the host's working directory), with their start times,
// found by walking /proc: they outlive the host re-parented, where no
// walk down from the host finds them.
func testkitProcesses(t *testing.T, dir string) map[int]string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("no /proc to look for processes in: %v", err)
	}
	exe := filepath.Join(pluginDir, "sweetspot-plugin-testkit")
	out := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != real {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || strings.Split(string(cmdline), "\x00")[0] != exe {
			continue
		}
		if st, ok := procStart(pid); ok {
			out[pid] = st
		}
	}
	return out
}

// 400 stages, half of them ready at once, run to the end: no plugin's
// start waits behind hundreds of others (200 used to time out in their
// handshakes), every stage writes its rows, the manifest records them all
// and no plugin outlives the run. Each stage starts a process, about 0.1
// CPU-second apiece, so CI runs 400; BenchmarkManyStages (make bench) runs
// 2000 and holds the speed goal.
func TestManyStagesSucceed(t *testing.T) {
	const n = 400
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", manyStages(n))
	r := sweetspot(t, dir, "run", "-q", "--no-cache", "p.hcl")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	m := onlyRun(t, dir)
	assertManyStagesRan(t, m, n)
	if left := testkitProcesses(t, dir); len(left) > 0 {
		t.Errorf("plugin processes %v outlived the run", left)
	}
}

// assertManyStagesRan checks that every stage of manyStages(n) succeeded
// with the emit's 10 rows, each in a process of its own.
func assertManyStagesRan(t testing.TB, m runstore.Manifest, n int) {
	t.Helper()
	if len(m.Stages) != n {
		t.Fatalf("the manifest has %d stages, want %d", len(m.Stages), n)
	}
	pids := map[int]bool{}
	for _, s := range m.Stages {
		var rows int64
		for _, f := range s.Outputs {
			rows += f.Rows
		}
		if s.Status != "succeeded" || rows != 10 {
			t.Errorf("stage %s: %s with %d rows (%s), want succeeded with 10", s.Addr, s.Status, rows, s.Error)
		}
		pids[s.Pid] = true
	}
	if len(pids) != n || pids[0] {
		t.Errorf("%d stages ran in %d distinct processes (pid 0 among them: %v), want one each", n, len(pids), pids[0])
	}
}

// BenchmarkManyStages runs manyStages(200) and manyStages(2000) with the
// binary (no cache: every stage starts its own plugin process) and reports
// stages per second for each and the 2000-stage run's wall time. Goal:
// 2000 stages within 60 s on 2 cores.
func BenchmarkManyStages(b *testing.B) {
	sizes := []int{200, 2000}
	walls := make([]time.Duration, len(sizes))
	for b.Loop() {
		for i, n := range sizes {
			dir := b.TempDir()
			writeFile(b, dir, "p.hcl", manyStages(n))
			m, wall := runOnce(b, dir, nil, "p.hcl")
			assertManyStagesRan(b, m, n)
			walls[i] += wall
		}
	}
	for i, n := range sizes {
		per := walls[i].Seconds() / float64(b.N)
		b.ReportMetric(float64(n)/per, fmt.Sprintf("%d-stages/s", n))
		b.ReportMetric(per, fmt.Sprintf("%d-wall-s", n))
	}
}
