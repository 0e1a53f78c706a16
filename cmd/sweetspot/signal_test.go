package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// ctrlC sends SIGINT to the host's process group, as a terminal does on
// Ctrl-C: the plugins get it too.
func (h *hostProcess) ctrlC(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(-h.cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
}

// exitWithin waits for the host to end, failing if it takes longer than
// limit (a hung host would otherwise hang the test).
func (h *hostProcess) exitWithin(t *testing.T, limit time.Duration) int {
	t.Helper()
	done := make(chan int, 1)
	go func() { done <- h.wait(t) }()
	select {
	case code := <-done:
		return code
	case <-time.After(limit):
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("the host did not stop within %s of the signal\n%s", limit, h.stderr.String())
		return 0
	}
}

// trialOf reads the candidate id from an evaluation progress message
// ("trial ID: accuracy ...").
func trialOf(msg string) string {
	f := strings.Fields(msg)
	if len(f) < 2 || f[0] != "trial" {
		return ""
	}
	return strings.TrimSuffix(f[1], ":")
}

func TestInterruptStopsGracefullyKeepingFinishedTrials(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", killPipeline)
	h := startHost(t, dir, "p.hcl")

	// Interrupt in round 1 once three trials have reported.
	var id string
	reported := map[string]bool{}
	for e := range h.events {
		id = e.RunID
		if e.Type == "progress" && e.Stage == "evaluation.e" && e.Round == 1 && e.Progress != nil {
			if c := trialOf(e.Progress.Message); c != "" {
				reported[c] = true
			}
			if len(reported) == 3 {
				break
			}
		}
	}
	if len(reported) < 3 {
		t.Fatalf("the evaluation stage never reported three trials:\n%s", h.stderr.String())
	}
	h.ctrlC(t)
	if code := h.exitWithin(t, 30*time.Second); code != 130 {
		t.Fatalf("exit code %d after SIGINT, want 130\n%s", code, h.stderr.String())
	}
	if !strings.Contains(h.stderr.String(), "interrupted by SIGINT") || !strings.Contains(h.stderr.String(), "--resume "+id) {
		t.Errorf("stderr does not say the run was interrupted and how to resume it:\n%s", h.stderr.String())
	}

	m := loadRun(t, dir, id)
	if m.Status != runstore.StatusCanceled || m.FinishedAt == nil {
		t.Errorf("manifest status %s, finished %v; want canceled", m.Status, m.FinishedAt)
	}
	if !strings.HasPrefix(m.Error, "interrupted by SIGINT") || !strings.Contains(m.Error, "sweetspot run --resume "+id+" p.hcl") {
		t.Errorf("manifest error %q does not say the run was interrupted and how to resume it", m.Error)
	}
	for _, s := range m.Stages {
		if s.Addr == "evaluation.e" && s.Status != runstore.StatusCanceled {
			t.Errorf("evaluation.e: %s %s, want canceled", s.Status, s.Error)
		}
	}
	assertExited(t, pluginProcesses(t, dir), "the interrupted run")

	// Every trial that had reported is in the journal.
	runDir := filepath.Join(dir, runstore.DefaultRoot, id)
	journal := runstore.JournalPath(filepath.Join(runDir, runstore.OutputRel("evaluation.e", 1, "results")))
	_, batches, err := runstore.ReadJournal(journal, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	journalled := map[string]trialResult{}
	readTrials(t, "the journal", batches, journalled)
	release(batches)
	// readTrials keys a trial by its round column and candidate; every row
	// of this journal is of the one round interrupted.
	journalledIDs := map[string]bool{}
	for k := range journalled {
		if f := strings.Fields(k); len(f) >= 3 {
			journalledIDs[f[2]] = true
		}
	}
	for c := range reported {
		if !journalledIDs[c] {
			t.Errorf("trial %s reported before the interrupt but is not in the journal (journalled: %v)", c, journalled)
		}
	}

	// Resuming trains none of them again.
	r := sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	m = loadRun(t, dir, id)
	if m.Status != runstore.StatusSucceeded || m.Error != "" {
		t.Errorf("resumed run: %s %q", m.Status, m.Error)
	}
	got := map[string]trialResult{}
	for _, s := range m.Stages {
		if s.Addr != "evaluation.e" {
			continue
		}
		bs := readPortFiles(t, runDir, s.Outputs)
		readTrials(t, "the resumed run's output", bs, got)
		release(bs)
		e, ok := s.Execution(1)
		if want := fmt.Sprintf("resumed with %d journalled row(s)", len(journalled)); !ok || !strings.Contains(e.Note, want) {
			t.Errorf("round 1 of evaluation.e: note %q, want %q", e.Note, want)
		}
	}
	for c, j := range journalled {
		if got[c] != j {
			t.Errorf("trial %s: %+v after the resume, %+v in the journal: it was trained again", c, got[c], j)
		}
	}
	assertConsistent(t, runDir, m)
}

func TestSecondInterruptStopsAtOnceEvenWithAFrozenPlugin(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", killPipeline)
	h := startHost(t, dir, "p.hcl")

	var id string
	evaluator := 0
	for e := range h.events {
		id = e.RunID
		if e.Type == "stage_started" && e.Stage == "evaluation.e" {
			evaluator = e.Pid
		}
		if e.Type == "progress" && e.Stage == "evaluation.e" {
			break
		}
	}
	if evaluator == 0 {
		t.Fatalf("the evaluation stage never started:\n%s", h.stderr.String())
	}
	// A plugin that never answers again: stopped, as a process stuck in
	// the kernel would be. Asking it to stop would wait forever.
	if err := syscall.Kill(evaluator, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(evaluator, syscall.SIGKILL) })
	h.ctrlC(t)
	time.Sleep(300 * time.Millisecond)
	h.ctrlC(t)
	second := time.Now()
	if code := h.exitWithin(t, 30*time.Second); code != 130 {
		t.Fatalf("exit code %d after two SIGINTs, want 130\n%s", code, h.stderr.String())
	}
	// The host asks a plugin to stop for killGrace before it kills it; the
	// second Ctrl-C does not wait for that.
	if took := time.Since(second); took >= 2*time.Second {
		t.Errorf("the host took %s to stop after the second SIGINT", took)
	}
	m := loadRun(t, dir, id)
	if m.Status != runstore.StatusCanceled || !strings.Contains(m.Error, "stopped at once by a second SIGINT") || !strings.Contains(m.Error, "--resume "+id) {
		t.Errorf("manifest: status %s, error %q", m.Status, m.Error)
	}
	for _, s := range m.Stages {
		if s.Status == runstore.StatusRunning {
			t.Errorf("stage %s is still running in the manifest", s.Addr)
		}
	}
	assertExited(t, pluginProcesses(t, dir), "the host stopped at once")
	if pluginProcesses(t, dir)[evaluator] != "" {
		t.Errorf("the frozen plugin %d is still there", evaluator)
	}

	// What the first attempt journalled is resumed.
	r := sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	m = loadRun(t, dir, id)
	assertConsistent(t, filepath.Join(dir, runstore.DefaultRoot, id), m)
}

// SIGTERM stops a run of 2000 stages, whether it comes while the plugins
// check the configs or while stages run, and leaves no plugin process.
// The bound is about liveness: such a run used to start every plugin
// process up front and let a SIGTERM wait for all of them.
func TestSIGTERMStopsARunOfTwoThousandStages(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", manyStages(n))
	for _, when := range []struct {
		name     string
		finished int // stages finished before the signal
	}{{"while checking configs", 0}, {"while stages run", 6}} {
		t.Run(when.name, func(t *testing.T) {
			h := startHost(t, dir, "--no-cache", "p.hcl")
			var id string
			finished, reached := 0, false
			for e := range h.events {
				id = e.RunID
				if e.Type == "stage_finished" {
					finished++
				}
				if e.Type == "run_started" && when.finished == 0 || finished == when.finished && when.finished > 0 {
					reached = true
					break
				}
			}
			if !reached {
				t.Fatalf("the run never got there:\n%s", h.stderr.String())
			}
			if when.finished > 0 {
				// A stage holds its process only while it runs: look a
				// while, so the walk is known to see them.
				seen := false
				for deadline := time.Now().Add(10 * time.Second); !seen && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					seen = len(testkitProcesses(t, dir)) > 0
				}
				if !seen {
					t.Fatal("no plugin process found while stages run: the process walk sees nothing")
				}
			}
			if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if code := h.exitWithin(t, 30*time.Second); code != 143 {
				t.Fatalf("exit code %d after SIGTERM, want 143\n%s", code, h.stderr.String())
			}
			assertExited(t, testkitProcesses(t, dir), "the host stopped by SIGTERM")
			m := loadRun(t, dir, id)
			if m.Status != runstore.StatusCanceled || !strings.HasPrefix(m.Error, "interrupted by SIGTERM") {
				t.Errorf("manifest: status %s, error %q; want canceled, interrupted by SIGTERM", m.Status, m.Error)
			}
			// The stages the signal stopped were canceled, not failed.
			for _, s := range m.Stages {
				if s.Status == runstore.StatusFailed || s.Status == runstore.StatusRunning {
					t.Errorf("stage %s is %s after SIGTERM (%s), want canceled, succeeded or pending", s.Addr, s.Status, s.Error)
				}
			}
		})
	}
}
