package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
)

// replayTable is the measured table the exit code pipelines replay.
const replayTable = "../../examples/replay/results.csv"

// exitCodesDir copies testdata/exitcodes and the replay table into a new
// directory and returns it.
func exitCodesDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for src, dst := range map[string]string{
		"testdata/exitcodes/pipeline.hcl": "pipeline.hcl",
		replayTable:                       "results.csv",
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, dst, string(b))
	}
	return dir
}

// tableRow is one depth-1 MLP of the replay table: its params and
// accuracy, by model name as model_choice names it.
type tableRow struct {
	params   int64
	accuracy float64
}

func readReplayTable(t *testing.T) map[string]tableRow {
	t.Helper()
	f, err := os.Open(replayTable)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	out := map[string]tableRow{}
	for _, r := range recs[1:] {
		if r[col["family"]] != "mlp" || r[col["depth"]] != "1" {
			continue
		}
		p, err1 := strconv.ParseInt(r[col["params"]], 10, 64)
		a, err2 := strconv.ParseFloat(r[col["accuracy"]], 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("table row %v: %v %v", r, err1, err2)
		}
		out["mlp-d1-w"+r[col["width"]]] = tableRow{p, a}
	}
	return out
}

// lastJSONLine decodes the last line of --json output, the result line,
// and checks that every line before it is an event.
func lastJSONLine(t *testing.T, stdout string) resultLine {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		var e runner.Event
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Type == "" {
			t.Fatalf("line %q is not an event (%v)", l, err)
		}
	}
	var r resultLine
	dec := json.NewDecoder(bytes.NewReader([]byte(lines[len(lines)-1])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil || r.Type != "result" {
		t.Fatalf("last line %q is not a result line (%v)", lines[len(lines)-1], err)
	}
	return r
}

// Each outcome of a search has its exit code, and the --json stream ends
// with the decision: converged (0), budget spent with a model that meets
// the requirements (0), budget spent before any did (4), infeasible (3).
// What the decision says is checked against the replayed table.
func TestExitCodes(t *testing.T) {
	table := readReplayTable(t)
	best := 0.0
	for _, r := range table {
		best = max(best, r.accuracy)
	}
	if best >= 0.999 {
		t.Fatalf("the replay table has a depth-1 model of accuracy %g: the infeasible cases need none at 0.999", best)
	}
	dir := exitCodesDir(t)
	for _, tc := range []struct {
		name            string
		target          float64
		maxTrials       int
		code            int
		outcome, status string
		chosen          bool
	}{
		{"converged", 0.94, 30, exitOK, outcomeConverged, "converged", true},
		{"budget spent with an answer", 0.94, 8, exitOK, outcomeBestSoFar, "budget_exhausted", true},
		{"budget spent without an answer", 0.999, 3, exitNoAnswer, outcomeNoAnswer, "budget_exhausted", false},
		{"infeasible", 0.999, 30, exitInfeasible, outcomeInfeasible, "infeasible", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sweetspot(t, dir, "run", "--json", "pipeline.hcl",
				"-var", fmt.Sprintf("target_accuracy=%g", tc.target), "-var", fmt.Sprintf("max_trials=%d", tc.maxTrials))
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", r.code, tc.code, r.stderr)
			}
			res := lastJSONLine(t, r.stdout)
			d := res.Decision
			if res.ExitCode != tc.code || res.Outcome != tc.outcome || res.Status != "succeeded" || res.Error != "" || d == nil {
				t.Fatalf("result line %+v, want exit %d, outcome %s, run succeeded with a decision", res, tc.code, tc.outcome)
			}
			if d.Stage != "resize.fit" || d.Status != tc.status || d.Reason == "" || d.Rounds < 1 {
				t.Errorf("decision %+v, want resize.fit %s with a reason", d, tc.status)
			}
			if !tc.chosen {
				if d.Chosen != "" || d.ChosenParams != nil {
					t.Errorf("decision chose %q (%v params), want none", d.Chosen, d.ChosenParams)
				}
				return
			}
			row, ok := table[d.ChosenName]
			switch {
			case !ok:
				t.Errorf("chosen %q is not a depth-1 model of the table", d.ChosenName)
			case row.accuracy < tc.target:
				t.Errorf("chosen %s has accuracy %g in the table, below the target %g", d.ChosenName, row.accuracy, tc.target)
			case d.ChosenParams == nil || *d.ChosenParams != row.params:
				t.Errorf("chosen %s has %v params, the table %d", d.ChosenName, d.ChosenParams, row.params)
			}
		})
	}
	// Without --json the codes are the same and the summary says why.
	r := sweetspot(t, dir, "run", "pipeline.hcl", "-var", "target_accuracy=0.999", "-var", "max_trials=30")
	if r.code != exitInfeasible || !strings.Contains(r.stdout, "decision: infeasible") {
		t.Errorf("infeasible without --json: exit %d\n%s", r.code, r.stdout)
	}
}

// A pipeline without a deciding stage succeeds with exit 0, and its
// result line says it has no decision.
func TestExitCodeWithoutADecision(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
dataset "d" {
  generator = "blobs"
  rows      = 100
}

stage "requirements" "r" {
  dataset      = dataset.d
  min_accuracy = 0.5
}
`)
	r := sweetspot(t, dir, "run", "--json", "p.hcl")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if res := lastJSONLine(t, r.stdout); res.Outcome != outcomeNoDecision || res.ExitCode != 0 || res.Decision != nil || res.Status != "succeeded" {
		t.Errorf("result line %+v", res)
	}
}

// A run that fails exits 1, and its result line says so with the error.
func TestExitCodeOfAFailedRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "crash" "boom" {
  plugin = "testkit"
}
`)
	r := sweetspot(t, dir, "run", "--json", "p.hcl")
	if r.code != exitFailed {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitFailed, r.stderr)
	}
	res := lastJSONLine(t, r.stdout)
	if res.Outcome != outcomeFailed || res.ExitCode != exitFailed || res.Status != "failed" || !strings.Contains(res.Error, "crash.boom") || res.Decision != nil {
		t.Errorf("result line %+v", res)
	}
}

// --parallel takes 1 to 1024 stages at once; anything else is a usage
// error that says so, before anything runs.
func TestParallelOutOfRange(t *testing.T) {
	dir := exitCodesDir(t)
	for _, n := range []string{"0", "-1", "1025"} {
		r := sweetspot(t, dir, "run", "--parallel", n, "pipeline.hcl", "-var", "target_accuracy=0.9", "-var", "max_trials=3")
		if r.code != exitInvalid || !strings.Contains(r.stderr, "--parallel "+n+": the number of stages that may run at once must be from 1 to 1024") {
			t.Errorf("--parallel %s: exit %d, stderr %q", n, r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, ".sweetspot", "runs")); err == nil {
			t.Errorf("--parallel %s: a run directory was made", n)
		}
	}
}

// A stage the run canceled is printed as CANCELED, one that failed as
// FAILED: the manifest, which the runner writes first, says which.
func TestCanceledStageIsNotPrintedAsFailed(t *testing.T) {
	var out bytes.Buffer
	p := newEventPrinter(&runOptions{}, &out, &out)
	p.stageStatus = func(addr string) string {
		return map[string]string{"exec.train": "canceled", "resize.fit": "failed"}[addr]
	}
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	p.write(&out, runner.Event{Time: at, Type: runner.EventStageFailed, Stage: "exec.train", Error: "context canceled", Elapsed: time.Second})
	p.write(&out, runner.Event{Time: at, Type: runner.EventStageFailed, Stage: "resize.fit", Error: "boom", Elapsed: time.Second})
	want := "10:00:00 exec.train CANCELED after 1s: context canceled\n10:00:00 resize.fit FAILED after 1s: boom\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// Ctrl-C cancels the running stages: the log says CANCELED, not FAILED.
func TestInterruptedStagesArePrintedCanceled(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "block" "a" {
  plugin = "testkit"
}
`)
	cmd := exec.Command(binary, "run", "p.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir, "NO_COLOR=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "block.a started") {
			break
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("exit %d, want 130", code)
	}
	if !strings.Contains(log.String(), "block.a CANCELED after") || strings.Contains(log.String(), "FAILED") {
		t.Errorf("log:\n%s", log.String())
	}
}
