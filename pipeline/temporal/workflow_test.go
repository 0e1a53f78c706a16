package temporal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/activity"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/sweetspot-ml/sweetspot/pipeline/engine"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// fakes stands in for a worker's activities: it records what the workflow
// asked for, and where (task queue), and answers with made-up files.
type fakes struct {
	mu        sync.Mutex
	calls     []string // "activity stage round queue"
	gathered  [][]runstore.OutputFile
	decisions []string // status per round, in order
	trialRows int
	// trialDelay makes trial i take (n-i) * trialDelay, so trials finish
	// in reverse order.
	trialDelay time.Duration
	failTrial  int // -1: none
	inFlight   int
	maxFlight  int
	cache      map[string]cached
	// trialIndex lists the trials run, by index.
	trialIndex []int
}

func newFakes() *fakes { return &fakes{failTrial: -1, trialRows: 5} }

func (f *fakes) note(ctx context.Context, what, stage string, round int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s %d %s", what, stage, round, activity.GetInfo(ctx).TaskQueue))
}

func file(stage, port string, round int, name string) runstore.OutputFile {
	return runstore.OutputFile{Port: port, Round: round, Path: fmt.Sprintf("stages/%s/round-%03d/%s", stage, round, name), Rows: 1, SHA256: name}
}

func (f *fakes) RunStage(ctx context.Context, req StageRequest) (*StageResponse, error) {
	f.note(ctx, "stage", req.Stage.Addr, req.Round)
	resp := &StageResponse{Worker: "w-" + activity.GetInfo(ctx).TaskQueue, Attempt: 1, Pid: 42}
	for _, o := range req.Stage.Outputs {
		resp.Files = append(resp.Files, file(req.Stage.Addr, o.Name, req.Round, o.Name+".arrow"))
	}
	return resp, nil
}

func (f *fakes) SplitTrials(ctx context.Context, req SplitRequest) (*SplitResponse, error) {
	f.note(ctx, "split", req.Stage, req.Round)
	resp := &SplitResponse{Rows: int64(f.trialRows)}
	for i := range f.trialRows {
		resp.Trials = append(resp.Trials, file(req.Stage, "input", req.Round, fmt.Sprintf("trials/%05d/input.arrow", i)))
	}
	return resp, nil
}

func (f *fakes) RunTrial(ctx context.Context, req TrialRequest) (*StageResponse, error) {
	f.note(ctx, "trial", req.Stage.Stage.Addr, req.Stage.Round)
	f.mu.Lock()
	f.trialIndex = append(f.trialIndex, req.Index)
	f.inFlight++
	f.maxFlight = max(f.maxFlight, f.inFlight)
	failTrial := f.failTrial
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	time.Sleep(time.Duration(f.trialRows-req.Index) * f.trialDelay)
	if req.Index == failTrial {
		return nil, temporal.NewNonRetryableApplicationError("trial exploded", "stage_internal", nil)
	}
	var primary []runstore.OutputFile
	for _, in := range req.Stage.Inputs {
		if in.Port == sdk.PrimaryInput {
			primary = in.Files
		}
	}
	if len(primary) != 1 || primary[0].SHA256 != fmt.Sprintf("trials/%05d/input.arrow", req.Index) {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("trial %d got primary input %v", req.Index, primary), "bad", nil)
	}
	return &StageResponse{
		Worker: fmt.Sprintf("w%d", req.Index%2), Attempt: 1,
		Files: []runstore.OutputFile{file(req.Stage.Stage.Addr, "results", req.Stage.Round, fmt.Sprintf("trials/%05d/results.arrow", req.Index))},
	}, nil
}

func (f *fakes) GatherTrials(ctx context.Context, req GatherRequest) ([]runstore.OutputFile, error) {
	f.note(ctx, "gather", req.Stage, req.Round)
	var names []runstore.OutputFile
	for _, t := range req.Trials {
		names = append(names, t...)
	}
	f.mu.Lock()
	f.gathered = append(f.gathered, names)
	f.mu.Unlock()
	return []runstore.OutputFile{file(req.Stage, "results", req.Round, "results.arrow")}, nil
}

func (f *fakes) ReadDecision(ctx context.Context, req DecisionRequest) (*runstore.Decision, error) {
	f.note(ctx, "decision", req.Stage, req.File.Round)
	f.mu.Lock()
	defer f.mu.Unlock()
	round := req.File.Round
	status := "converged"
	if round-1 < len(f.decisions) {
		status = f.decisions[round-1]
	}
	return &runstore.Decision{Stage: req.Stage, Status: status, Chosen: fmt.Sprintf("c%d", round)}, nil
}

func (f *fakes) RecordSpan(ctx context.Context, rec SpanRecord) error { return nil }

// Reuse answers from the fakes' cache, as the run store's would: the
// files remembered under the key, in another run.
func (f *fakes) Reuse(ctx context.Context, req ReuseRequest) (*ReuseResponse, error) {
	f.note(ctx, "reuse", req.Stage, 0)
	if req.Keep != nil {
		return &ReuseResponse{Hit: true, Files: req.Keep, From: req.RunID}, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.cache[req.Key]
	if !ok || e.run == req.RunID {
		return &ReuseResponse{}, nil
	}
	return &ReuseResponse{Hit: true, Files: e.files, From: e.run}, nil
}

func (f *fakes) Remember(ctx context.Context, req RememberRequest) error {
	f.note(ctx, "remember", req.Stage, 0)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cache == nil {
		f.cache = map[string]cached{}
	}
	f.cache[req.Key] = cached{run: req.RunID, files: req.Files}
	return nil
}

type cached struct {
	run   string
	files []runstore.OutputFile
}

var quietLogger = tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))

// env returns a test workflow environment with the fakes registered.
func (f *fakes) env(t *testing.T) *testsuite.TestWorkflowEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(RunWorkflow, workflowRegisterOptions())
	env.RegisterActivityWithOptions(f.RunStage, activity.RegisterOptions{Name: activityRunStage})
	env.RegisterActivityWithOptions(f.SplitTrials, activity.RegisterOptions{Name: activitySplitTrials})
	env.RegisterActivityWithOptions(f.RunTrial, activity.RegisterOptions{Name: activityRunTrial})
	env.RegisterActivityWithOptions(f.GatherTrials, activity.RegisterOptions{Name: activityGatherTrials})
	env.RegisterActivityWithOptions(f.ReadDecision, activity.RegisterOptions{Name: activityReadDecision})
	env.RegisterActivityWithOptions(f.RecordSpan, activity.RegisterOptions{Name: activityRecordSpan})
	env.RegisterActivityWithOptions(f.Reuse, activity.RegisterOptions{Name: activityReuse})
	env.RegisterActivityWithOptions(f.Remember, activity.RegisterOptions{Name: activityRemember})
	env.SetTestTimeout(time.Minute)
	return env
}

// loopPlan is the shape of the quickstart: a source, then evaluation and
// resize looping, then a report stage after the loop.
func loopPlan(maxRounds int, evalQueue string) Plan {
	out := func(names ...string) []describe.PortDescription {
		var ps []describe.PortDescription
		for _, n := range names {
			ps = append(ps, describe.PortDescription{Name: n})
		}
		return ps
	}
	p := Plan{
		RunID: "run-1", Run: SpanRef{TraceID: "0123456789abcdef0123456789abcdef", SpanID: "0123456789abcdef"},
		Stages: []StagePlan{
			{Stage: engine.Stage{Addr: "model_choice.m"}, Kind: "model_choice", Outputs: out("candidates"),
				Cache: engine.CacheBase{Plugin: "sweetspot", Kind: "model_choice"}},
			{Stage: engine.Stage{Addr: "evaluation.e",
				Inputs: []engine.Input{{Port: sdk.PrimaryInput, Producer: "model_choice.m", ProducerPort: "candidates", Rounds: engine.RoundsAll}}},
				Kind: "evaluation", Outputs: out("results"), FanOut: true, TaskQueue: evalQueue,
				Resume: &sdk.Resume{Output: "results", Input: "resume"},
				Cache:  engine.CacheBase{Plugin: "sweetspot", Kind: "evaluation"}},
			{Stage: engine.Stage{Addr: "resize.r", Loop: &sdk.Loop{DecisionPort: "decision", ProposalsPort: "proposals"},
				LoopTo: "evaluation.e", MaxRounds: maxRounds,
				Inputs: []engine.Input{{Port: sdk.PrimaryInput, Producer: "evaluation.e", ProducerPort: "results", Rounds: engine.RoundsSoFar}}},
				Kind: "resize", Outputs: out("decision", "proposals"),
				Cache: engine.CacheBase{Plugin: "sweetspot", Kind: "resize"}},
			{Stage: engine.Stage{Addr: "report.x",
				Inputs: []engine.Input{{Port: sdk.PrimaryInput, Producer: "evaluation.e", ProducerPort: "results", Rounds: engine.RoundsAll}}},
				Kind: "report", Outputs: out("summary"),
				Cache: engine.CacheBase{Plugin: "sweetspot", Kind: "report"}},
		},
		Units: []engine.Unit{
			{ID: "model_choice.m", Stages: []string{"model_choice.m"}},
			{ID: "loop resize.r", Stages: []string{"evaluation.e", "resize.r"}, Decider: "resize.r", Deps: []string{"model_choice.m"}},
			{ID: "report.x", Stages: []string{"report.x"}, Deps: []string{"loop resize.r"}},
		},
	}
	return p
}

func TestLoopRunsRoundsUntilTheDecisionStops(t *testing.T) {
	f := newFakes()
	f.decisions = []string{"continue", "continue", "converged"}
	env := f.env(t)
	env.ExecuteWorkflow(WorkflowName, loopPlan(6, ""))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	if err := env.GetWorkflowResult(&snap); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&runstore.Decision{Stage: "resize.r", Status: "converged", Chosen: "c3", Rounds: 3}, snap.Decision); diff != "" {
		t.Errorf("decision (-want +got):\n%s", diff)
	}
	rounds := map[string][]int{}
	for _, s := range snap.Stages {
		for _, e := range s.Executions {
			rounds[s.Addr] = append(rounds[s.Addr], e.Round)
		}
	}
	want := map[string][]int{"model_choice.m": {0}, "evaluation.e": {1, 2, 3}, "resize.r": {1, 2, 3}, "report.x": {0}}
	if diff := cmp.Diff(want, rounds); diff != "" {
		t.Errorf("executions per stage (-want +got):\n%s", diff)
	}
	// The report after the loop reads every round; round 2's evaluation
	// reads the proposals of round 1 (see the inputs test below).
	for _, s := range snap.Stages {
		if s.Addr == "report.x" && s.Status != runstore.StatusSucceeded {
			t.Errorf("report.x: %s", s.Status)
		}
	}
}

func TestLoopStopsAtMaxRoundsAndSaysSo(t *testing.T) {
	f := newFakes()
	f.decisions = []string{"continue", "continue", "continue"}
	env := f.env(t)
	env.ExecuteWorkflow(WorkflowName, loopPlan(2, ""))
	var snap Snapshot
	if err := env.GetWorkflowResult(&snap); err != nil {
		t.Fatal(err)
	}
	if snap.Decision == nil || snap.Decision.Status != "max_rounds" || snap.Decision.Rounds != 2 {
		t.Errorf("decision %+v, want max_rounds after 2", snap.Decision)
	}
}

// Trials finish in reverse order, on two "workers"; the gathered outputs
// are still in trial order, and every trial is recorded with its worker.
func TestFanOutGathersInTrialOrder(t *testing.T) {
	f := newFakes()
	f.trialRows = 7
	f.trialDelay = 20 * time.Millisecond
	env := f.env(t)
	env.ExecuteWorkflow(WorkflowName, loopPlan(1, ""))
	var snap Snapshot
	if err := env.GetWorkflowResult(&snap); err != nil {
		t.Fatal(err)
	}
	if len(f.gathered) != 1 {
		t.Fatalf("gathered %d times", len(f.gathered))
	}
	var got, want []string
	for i, g := range f.gathered[0] {
		got = append(got, g.SHA256)
		want = append(want, fmt.Sprintf("trials/%05d/results.arrow", i))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("gather order (-want +got):\n%s", diff)
	}
	var trials []runstore.TrialRecord
	for _, s := range snap.Stages {
		if s.Addr == "evaluation.e" {
			trials = s.Executions[0].Trials
			if s.Worker != "w0, w1" {
				t.Errorf("stage worker %q, want both", s.Worker)
			}
		}
	}
	if len(trials) != 7 {
		t.Fatalf("%d trial records", len(trials))
	}
	for i, tr := range trials {
		if tr.Index != i || tr.Worker != fmt.Sprintf("w%d", i%2) {
			t.Errorf("trial record %d: %+v", i, tr)
		}
	}
}

func TestFanOutBoundsTrialsInFlight(t *testing.T) {
	f := newFakes()
	f.trialRows = 12
	f.trialDelay = 5 * time.Millisecond
	env := f.env(t)
	plan := loopPlan(1, "")
	plan.MaxPendingTrials = 3
	env.ExecuteWorkflow(WorkflowName, plan)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	if f.maxFlight > 3 || f.maxFlight < 2 {
		t.Errorf("at most %d trials ran at once, want 2..3", f.maxFlight)
	}
}

// A stage with task_queue = "gpu" sends all its work (split, trials,
// gather) there; everything else, and the loop's decision, stays on the
// run's queue.
func TestTaskQueueRoutesAStagesActivities(t *testing.T) {
	f := newFakes()
	f.trialRows = 2
	env := f.env(t)
	env.ExecuteWorkflow(WorkflowName, loopPlan(1, "gpu"))
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	queues := map[string]string{}
	for _, c := range f.calls {
		var what, stage, queue string
		var round int
		if _, err := fmt.Sscanf(c, "%s %s %d %s", &what, &stage, &round, &queue); err != nil {
			t.Fatalf("%q: %v", c, err)
		}
		key := what + " " + stage
		if q, ok := queues[key]; ok && q != queue {
			t.Errorf("%s ran on %s and %s", key, q, queue)
		}
		queues[key] = queue
	}
	want := map[string]string{
		"stage model_choice.m": "cpu",
		"split evaluation.e":   "gpu",
		"trial evaluation.e":   "gpu",
		"gather evaluation.e":  "gpu",
		"stage resize.r":       "cpu",
		"decision resize.r":    "cpu",
		"stage report.x":       "cpu",
	}
	if diff := cmp.Diff(want, queues); diff != "" {
		t.Errorf("task queues (-want +got):\n%s", diff)
	}
}

// A trial that fails for good fails the stage and the run; the error says
// what the stage said, and carries the run's state for the manifest.
func TestFailedTrialFailsTheRunWithItsState(t *testing.T) {
	f := newFakes()
	f.failTrial = 3
	env := f.env(t)
	env.ExecuteWorkflow(WorkflowName, loopPlan(3, ""))
	err := env.GetWorkflowError()
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || app.Message() != "trial exploded" {
		t.Fatalf("error %v, want the trial's", err)
	}
	var snap Snapshot
	if err := app.Details(&snap); err != nil {
		t.Fatalf("details: %v", err)
	}
	status := map[string]string{}
	for _, s := range snap.Stages {
		status[s.Addr] = s.Status
	}
	// As in a local run: what depends on the failed stage is skipped,
	// naming it.
	want := map[string]string{"model_choice.m": "succeeded", "evaluation.e": "failed", "resize.r": "skipped", "report.x": "skipped"}
	if diff := cmp.Diff(want, status); diff != "" {
		t.Errorf("stage status (-want +got):\n%s", diff)
	}
}
