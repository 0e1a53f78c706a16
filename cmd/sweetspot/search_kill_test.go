//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// searchKillPipeline searches six learning rates for one size with a
// shell trainer that takes about a second a trial, two at once, and
// leaves a mark in $OUT each time it starts.
const searchKillPipeline = `
dataset "d" {
  generator = "blobs"
  rows      = 100
}
stage "requirements" "r" {
  dataset      = dataset.d
  min_accuracy = 0.5
}
stage "model_choice" "m" {
  input            = stage.requirements.r
  depth            = [1]
  width            = { min = 8, max = 8 }
  steps            = 1
  include_baseline = false
}
stage "exec" "train" {
  input       = stage.model_choice.m
  command     = ["/bin/sh", "trainer.sh"]
  env         = { OUT = "%s" }
  parallelism = 2
  search "grid" {
    metric = "val_accuracy"
    param "learning_rate" { values = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05] }
  }
}
`

// The trainer's validation score peaks at lr 0.01; its mark names the
// setting and its pid.
const searchKillTrainer = `touch "$OUT/$SWEETSPOT_LEARNING_RATE-$$"
sleep 1
echo "{\"val_accuracy\": $(awk -v lr="$SWEETSPOT_LEARNING_RATE" 'BEGIN { l = log(lr / 0.01); print 0.9 - 0.01 * l * l }'), \"accuracy\": 0.8, \"params\": 100}"
`

// The host is killed with SIGKILL in the middle of a size's search (two
// or more of its six settings finished, the others not; no row of the
// size reached the results port yet), then resumed: the settings whose
// trial had finished are not trained again (their trainer started once,
// their rows keep the trace ids they were journalled with), the others
// are, and the size's rows are whole, its chosen setting the best on
// validation.
func TestSearchKilledMidSearchResumes(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	writeFile(t, dir, "trainer.sh", searchKillTrainer)
	writeFile(t, dir, "p.hcl", strings.Replace(searchKillPipeline, "%s", out, 1))

	h := startHost(t, dir, "p.hcl")
	var runID string
	var journals []string
	deadline := time.After(2 * time.Minute)
wait:
	for {
		select {
		case e, ok := <-h.events:
			if !ok {
				t.Fatalf("the run ended before two trials of the search finished\n%s", h.stderr.String())
			}
			if e.RunID != "" {
				runID = e.RunID
			}
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatalf("two trials did not finish within 2 minutes\n%s", h.stderr.String())
		}
		if runID != "" {
			journals, _ = filepath.Glob(filepath.Join(dir, runstore.DefaultRoot, runID, "work", "exec.train", "trials", "r0", "*", "s*", ".sweetspot-result.arrow"))
			if len(journals) >= 2 {
				break wait
			}
		}
	}
	if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.wait(t)
	runDir := filepath.Join(dir, runstore.DefaultRoot, runID)
	// What had finished when the host died: the journals read now, and
	// no row of the size in the host's journal (the kill was mid-search).
	journals, _ = filepath.Glob(filepath.Join(runDir, "work", "exec.train", "trials", "r0", "*", "s*", ".sweetspot-result.arrow"))
	finished := map[float64]string{} // learning rate: trace id
	for _, j := range journals {
		for _, r := range readResultsFile(t, j) {
			finished[r.LearningRate] = r.TraceID
		}
	}
	if len(finished) < 2 || len(finished) == 6 {
		t.Fatalf("%d settings finished at the kill, want some but not all", len(finished))
	}
	if rows := durableTrialsOf(t, runDir, "exec.train"); len(rows) > 0 {
		t.Fatalf("the size's rows were journalled before the kill (%v): the kill came after its search", rows)
	}
	trainersGone(t, shellTrainers(t, dir), "its killed host")
	t.Logf("killed with %d of 6 settings finished", len(finished))

	h = startHost(t, dir, "--resume", runID, "p.hcl")
	if code := h.wait(t); code != exitOK {
		t.Fatalf("resume: exit %d\n%s", code, h.stderr.String())
	}
	starts := map[string]int{}
	marks, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range marks {
		lr, _, _ := strings.Cut(m.Name(), "-")
		starts[lr]++
	}
	m := loadRun(t, dir, runID)
	var rows []tables.Result
	for _, s := range m.Stages {
		if s.Addr != "exec.train" {
			continue
		}
		var results []runstore.OutputFile
		for _, f := range s.Outputs {
			if f.Port == "results" {
				results = append(results, f)
			}
		}
		bs := readPortFiles(t, runDir, results)
		for _, b := range bs {
			rs, err := tables.ReadResults(b)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, rs...)
		}
		release(bs)
	}
	if len(rows) != 6 {
		t.Fatalf("%d rows in the end, want one per setting, 6", len(rows))
	}
	for _, r := range rows {
		lr := r.Setting[strings.Index(r.Setting, ":")+1 : len(r.Setting)-1]
		trace, was := finished[r.LearningRate]
		switch {
		case r.Status != tables.StatusOK:
			t.Errorf("lr %s: %s %s", lr, r.Status, r.Error)
		case was && (starts[lr] != 1 || r.TraceID != trace):
			t.Errorf("lr %s finished before the kill (trace %s) but its trainer started %d times, its row's trace is %s: it was trained again", lr, trace, starts[lr], r.TraceID)
		case !was && starts[lr] < 1:
			t.Errorf("lr %s had not finished, and was never trained", lr)
		}
		if r.SettingChosen != (r.LearningRate == 0.01) {
			t.Errorf("lr %s: chosen %t; the best on validation is lr 0.01", lr, r.SettingChosen)
		}
	}
	if left := shellTrainers(t, dir); len(left) > 0 {
		trainersGone(t, left, "the resumed run")
	}
}

// shellTrainers lists the live trainer.sh processes of trials under dir.
func shellTrainers(t *testing.T, dir string) map[int]string {
	t.Helper()
	return processes(t, dir, func(cwd, dir string, args []string) bool {
		return strings.HasPrefix(cwd, dir+string(filepath.Separator)) && strings.Contains(strings.Join(args, " "), "trainer.sh")
	})
}

// readResultsFile reads a results table from an Arrow IPC file.
func readResultsFile(t *testing.T, path string) []tables.Result {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer r.Close()
	var out []tables.Result
	for i := range r.NumRecords() {
		b, err := r.RecordBatch(i)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rs, err := tables.ReadResults(b)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, rs...)
	}
	return out
}
