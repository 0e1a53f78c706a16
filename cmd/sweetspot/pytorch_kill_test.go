//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// torchExample is examples/pytorch, whose trainer the test runs as
// shipped; it needs Debian's python3-torch and dataset-fashion-mnist,
// which `make python-torch` installs (`make test` depends on it).
func torchExample(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("/usr/bin/python3", "-c", "import torch").CombinedOutput(); err != nil {
		testenv.Missing(t, "/usr/bin/python3 cannot import torch (`make python-torch` installs Debian's python3-torch): %v: %s", err, out)
	}
	if _, err := os.Stat("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"); err != nil {
		testenv.Missing(t, "Fashion-MNIST is not installed (`make python-torch` installs Debian's dataset-fashion-mnist): %v", err)
	}
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", "pytorch"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// trainers lists the live processes running the example's train.py whose
// working directory is under dir (a trial's), by pid with their start
// time.
func trainers(t *testing.T, dir string) map[int]string {
	t.Helper()
	return processes(t, dir, func(cwd, dir string, args []string) bool {
		return strings.HasPrefix(cwd, dir+string(filepath.Separator)) && strings.Contains(strings.Join(args, " "), "train.py")
	})
}

// The host is killed with SIGKILL while the PyTorch example trains (one
// trial finished, another's Python process running), then resumed: the
// trainers of the killed run die with it, the finished trials are not
// trained again (each keeps the trace id and train seconds it was
// journalled with), and when the resumed run ends no Python process of
// it is left.
func TestPyTorchRunKilledMidTrialResumes(t *testing.T) {
	example := torchExample(t)
	dir := t.TempDir()
	// A smaller subsample than the example's, so each trial takes seconds.
	args := []string{"-var", "train_rows=600", "-var", "target_accuracy=0.7", example}

	h := startHost(t, dir, args...)
	var runID string
	var live map[int]string
	finished := false
	deadline := time.After(4 * time.Minute)
wait:
	for {
		select {
		case e, ok := <-h.events:
			if !ok {
				t.Fatalf("the run ended before a trial finished while another trained\n%s", h.stderr.String())
			}
			if e.RunID != "" {
				runID = e.RunID
			}
			if e.Type == "progress" && e.Stage == "exec.train" && e.Progress != nil && e.Progress.Done >= 1 {
				finished = true
			}
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no trial finished while another trained within 4 minutes\n%s", h.stderr.String())
		}
		// Kill once a finished trial is journalled (the host journals
		// its row as it arrives, and syncs it) and a trainer is running.
		if finished && runID != "" {
			if live = trainers(t, dir); len(live) > 0 && len(durableTrialsOf(t, filepath.Join(dir, runstore.DefaultRoot, runID), "exec.train")) > 0 {
				break wait
			}
		}
	}
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for e := range h.events {
		if e.RunID != "" {
			runID = e.RunID
		}
	}
	h.wait(t)
	if runID == "" {
		t.Fatal("the killed run announced no run id")
	}
	runDir := filepath.Join(dir, runstore.DefaultRoot, runID)
	durable := durableTrialsOf(t, runDir, "exec.train")
	if len(durable) == 0 {
		t.Fatal("no trial was journalled before the kill")
	}
	t.Logf("killed with %d trials journalled and %d trainers running", len(durable), len(live))
	// The trainers die with the plugin that started them, which dies with
	// its host.
	trainersGone(t, live, "its killed host")

	h = startHost(t, dir, append([]string{"--resume", runID}, args...)...)
	// Whether the small subsample reaches the target is no matter here:
	// the run must end, with a decision, whatever it is.
	if code := h.wait(t); code != exitOK && code != exitNoAnswer && code != exitInfeasible {
		t.Fatalf("resume: exit %d\n%s", code, h.stderr.String())
	}
	m := loadRun(t, dir, runID)
	if m.Status != runstore.StatusSucceeded || m.Decision == nil || m.Decision.Status == "" {
		t.Fatalf("the resumed run: status %s, decision %+v", m.Status, m.Decision)
	}
	got := map[string]trialResult{}
	for _, s := range m.Stages {
		if s.Addr == "exec.train" {
			bs := readPortFiles(t, runDir, s.Outputs)
			readTrials(t, "final output", bs, got)
			release(bs)
		}
	}
	for c, r := range durable {
		if got[c] != r {
			t.Errorf("trial %s is %+v in the end, but %+v was journalled before the kill: a finished trial was trained again", c, got[c], r)
		}
	}
	if len(got) <= len(durable) {
		t.Errorf("%d trials in the end, %d before the kill: the resumed run trained nothing", len(got), len(durable))
	}
	if left := trainers(t, dir); len(left) > 0 {
		trainersGone(t, left, "the resumed run")
	}
	assertExited(t, pluginProcesses(t, dir), "the resumed run")
}

// trainersGone waits a few seconds for trainer processes to end.
func trainersGone(t *testing.T, procs map[int]string, what string) {
	t.Helper()
	waitProcsGone(t, "trainer", procs, what, 10*time.Second)
}
