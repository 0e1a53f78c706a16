package temporal

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/temporal"

	"github.com/sweetspot-ml/sweetspot/pipeline/engine"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// runOnce runs plan to its end with f's activities and returns its state.
func runOnce(t *testing.T, f *fakes, plan Plan) Snapshot {
	t.Helper()
	env := f.env(t)
	env.ExecuteWorkflow(WorkflowName, plan)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	if err := env.GetWorkflowResult(&snap); err != nil {
		t.Fatal(err)
	}
	return snap
}

// sources lists each execution's source, "stage round source".
func sources(snap Snapshot) []string {
	var out []string
	for _, s := range snap.Stages {
		for _, e := range s.Executions {
			out = append(out, fmt.Sprintf("%s %d %s", s.Addr, e.Round, e.Source))
		}
	}
	sort.Strings(out)
	return out
}

// ran lists the activities that ran a stage's plugin (stage or trial).
func ran(f *fakes) int {
	n := 0
	for _, c := range f.calls {
		var what string
		fmt.Sscanf(c, "%s", &what)
		if what == "stage" || what == "trial" {
			n++
		}
	}
	return n
}

// A run repeated with nothing changed runs no stage: every execution of
// the second run comes from the first's outputs, found by the same
// content address, and its outputs are the first run's.
func TestRepeatedRunIsServedFromTheCache(t *testing.T) {
	f := newFakes()
	f.decisions = []string{"continue", "converged", "continue", "converged"}
	first := loopPlan(3, "")
	first.UseCache = true
	a := runOnce(t, f, first)
	if n := ran(f); n == 0 {
		t.Fatal("the first run ran nothing")
	}
	for _, s := range sources(a) {
		if want := "ran"; s[len(s)-len(want):] != want {
			t.Errorf("first run: %s", s)
		}
	}

	f.calls = nil
	second := loopPlan(3, "")
	second.RunID, second.UseCache = "run-2", true
	b := runOnce(t, f, second)
	if n := ran(f); n != 0 {
		t.Errorf("the repeated run ran %d stage or trial activities, want 0: %v", n, f.calls)
	}
	var want []string
	for _, s := range sources(a) {
		want = append(want, s[:len(s)-len("ran")]+"cache")
	}
	if diff := cmp.Diff(want, sources(b)); diff != "" {
		t.Errorf("sources of the repeated run (-want +got):\n%s", diff)
	}
	for i := range a.Stages {
		for j, e := range a.Stages[i].Executions {
			got := b.Stages[i].Executions[j]
			if got.Key != e.Key || got.From != "run-1" || !cmp.Equal(got.Files, e.Files) {
				t.Errorf("%s round %d: key %s from %q files %v, want key %s from run-1 files %v", a.Stages[i].Addr, e.Round, got.Key, got.From, got.Files, e.Key, e.Files)
			}
		}
	}
	if a.Decision == nil || b.Decision == nil || a.Decision.Status != b.Decision.Status || a.Decision.Rounds != b.Decision.Rounds {
		t.Errorf("decisions %+v and %+v differ", a.Decision, b.Decision)
	}
}

// Without the cache every stage runs again.
func TestRunWithoutTheCacheRunsEverything(t *testing.T) {
	f := newFakes()
	plan := loopPlan(1, "")
	plan.UseCache = true
	runOnce(t, f, plan)
	before := ran(f)
	f.calls = nil
	plan.RunID, plan.UseCache = "run-2", false
	b := runOnce(t, f, plan)
	if n := ran(f); n != before {
		t.Errorf("ran %d activities, want %d as the first time", n, before)
	}
	for _, s := range sources(b) {
		if s[len(s)-3:] != "ran" {
			t.Errorf("%s", s)
		}
	}
}

// A resumed run keeps every execution the interrupted one finished with
// the same content address, and runs the rest: here the interrupted run
// finished all but the report after the loop.
func TestResumedRunKeepsWhatFinished(t *testing.T) {
	f := newFakes()
	f.decisions = []string{"continue", "converged"}
	a := runOnce(t, f, loopPlan(3, ""))
	prev := engine.Finished{}
	for _, s := range a.Stages {
		if s.Addr == "report.x" {
			continue
		}
		for _, e := range s.Executions {
			if prev[s.Addr] == nil {
				prev[s.Addr] = map[int]runstore.Execution{}
			}
			prev[s.Addr][e.Round] = e
		}
	}
	f.calls = nil
	resumed := loopPlan(3, "")
	resumed.Previous = prev
	b := runOnce(t, f, resumed)
	var ranCalls []string
	for _, c := range f.calls {
		var what, stage string
		fmt.Sscanf(c, "%s %s", &what, &stage)
		if what == "stage" || what == "trial" {
			ranCalls = append(ranCalls, what+" "+stage)
		}
	}
	if diff := cmp.Diff([]string{"stage report.x"}, ranCalls); diff != "" {
		t.Errorf("stages run on resume (-want +got):\n%s", diff)
	}
	want := []string{"evaluation.e 1 resumed", "evaluation.e 2 resumed", "model_choice.m 0 resumed", "report.x 0 ran", "resize.r 1 resumed", "resize.r 2 resumed"}
	if diff := cmp.Diff(want, sources(b)); diff != "" {
		t.Errorf("sources (-want +got):\n%s", diff)
	}
	if b.Decision == nil || b.Decision.Status != "converged" || b.Decision.Rounds != 2 {
		t.Errorf("decision %+v", b.Decision)
	}
}

// A run whose trial failed ends with the trials that finished of that
// stage; the run resumed from it runs only the others, and its gathered
// output has every trial in order.
func TestResumedRunKeepsTheTrialsThatFinished(t *testing.T) {
	f := newFakes()
	// Trial i takes (6-i) steps: 5 and 4 finish before 3 fails, which
	// stops 0 to 2.
	f.failTrial = 3
	f.trialRows = 6
	f.trialDelay = 30 * time.Millisecond
	env := f.env(t)
	env.ExecuteWorkflow(WorkflowName, loopPlan(1, ""))
	var app *temporal.ApplicationError
	if err := env.GetWorkflowError(); !errors.As(err, &app) {
		t.Fatalf("error %v, want the trial's", err)
	}
	var failed Snapshot
	if err := app.Details(&failed); err != nil {
		t.Fatal(err)
	}
	part := failed.Partial["evaluation.e#1"]
	if part == nil || part.Key == "" || len(part.Inputs) != 6 {
		t.Fatalf("partial trials %+v", failed.Partial)
	}
	var kept []int
	for i := range 6 {
		if _, ok := part.Done[i]; ok {
			kept = append(kept, i)
		}
	}
	if diff := cmp.Diff([]int{4, 5}, kept); diff != "" {
		t.Errorf("trials kept (-want +got):\n%s", diff)
	}

	// The trials the failure stopped may still be ending in the test
	// environment's goroutines: the second run starts once they have.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		idle := f.inFlight == 0
		if idle {
			f.failTrial, f.calls, f.gathered, f.trialIndex = -1, nil, nil, nil
		}
		f.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first run's trials are still running after 10 s")
		}
	}
	plan := loopPlan(1, "")
	plan.PreviousTrials = failed.Partial
	snap := runOnce(t, f, plan)
	sort.Ints(f.trialIndex)
	if diff := cmp.Diff([]int{0, 1, 2, 3}, f.trialIndex); diff != "" {
		t.Errorf("trials run again (-want +got):\n%s", diff)
	}
	if len(f.gathered) != 1 || len(f.gathered[0]) != 6 {
		t.Fatalf("gathered %v", f.gathered)
	}
	for i, g := range f.gathered[0] {
		if want := fmt.Sprintf("trials/%05d/results.arrow", i); g.SHA256 != want {
			t.Errorf("gathered %d: %s, want %s", i, g.SHA256, want)
		}
	}
	if len(snap.Partial) != 0 {
		t.Errorf("a finished run reports partial trials %v", snap.Partial)
	}

	// Another execution (a changed address) keeps nothing.
	f.calls = nil
	plan = loopPlan(1, "")
	plan.PreviousTrials = map[string]*PartialTrials{"evaluation.e#1": {Key: "another", Inputs: part.Inputs, Done: part.Done}}
	runOnce(t, f, plan)
	n := 0
	for _, c := range f.calls {
		if strings.HasPrefix(c, "trial ") {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d trials ran for another execution, want all 6", n)
	}
}
