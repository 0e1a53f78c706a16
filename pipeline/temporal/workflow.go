package temporal

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/sweetspot-ml/sweetspot/pipeline/engine"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// Snapshot is the run's state as the workflow knows it: the manifest's
// stage records and decision, and the events from index From on. The
// query QueryState returns it; a failed run's error carries it as details.
type Snapshot struct {
	Stages   []runstore.StageRecord `json:"stages"`
	Decision *runstore.Decision     `json:"decision,omitempty"`
	Events   []runner.Event         `json:"events,omitempty"`
	// Next is the index of the event after the last one returned.
	Next int `json:"next"`
	// Progress is the latest progress event of each stage that reported
	// one: trials report one each, too many to keep them all.
	Progress []runner.Event `json:"progress,omitempty"`
	// Partial holds, when a run ends canceled or failed, the trials that
	// finished of each stage execution that did not, by "stage#round":
	// a resumed run keeps them.
	Partial map[string]*PartialTrials `json:"partial,omitempty"`
}

// PartialTrials are the finished trials of a stage execution spread over
// trial activities: its content address, the sha256 of each trial's
// input, and each finished trial's response by index.
type PartialTrials struct {
	Key    string                `json:"key"`
	Inputs []string              `json:"inputs"`
	Done   map[int]StageResponse `json:"done"`
}

// RunWorkflow runs a plan: the stages once their producers are done
// (independent ones at once, at most Parallel), and each loop round by
// round until its decider stops it, each execution served from the run
// being resumed or the cache when its content address is there. What to
// run, with which inputs, and when a loop stops is the engine core's
// (pipeline/engine), as in the local runner; this is its driver.
//
// A long loop continues as new (see Carry) once this run's history is
// large, so a sweep of any number of rounds stays within Temporal's
// limits on a workflow's history.
func RunWorkflow(ctx workflow.Context, plan Plan) (*Snapshot, error) {
	plan.defaults()
	w := &run{plan: &plan, core: plan.core(), outputs: engine.Outputs{}, unitsDone: map[string]bool{}, loopRounds: map[string]int{}, partial: map[string]*PartialTrials{}}
	if err := workflow.SetQueryHandler(ctx, QueryState, func(from int) (*Snapshot, error) {
		return w.snapshot(from), nil
	}); err != nil {
		return nil, err
	}
	if c := plan.Carry; c != nil {
		w.restore(c)
	} else {
		for _, st := range plan.Stages {
			w.stages = append(w.stages, &runstore.StageRecord{Addr: st.Addr, Kind: st.Kind, Plugin: st.Plugin, PluginVersion: st.PluginVersion, Status: "pending"})
		}
	}
	err := w.schedule(ctx)
	if errors.Is(err, errContinueAsNew) {
		next := plan
		next.Carry = w.carry()
		workflow.GetLogger(ctx).Info("continuing as new", "generation", next.Carry.Generation, "activities", w.activities, "history_events", workflow.GetInfo(ctx).GetCurrentHistoryLength())
		return nil, workflow.NewContinueAsNewError(ctx, WorkflowName, next)
	}
	if err != nil {
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) || errors.Is(err, workflow.ErrCanceled) {
			// The client records what finished before the cancel: a
			// resumed run keeps it.
			return nil, temporal.NewCanceledError(w.final())
		}
		// The client records the state of a failed run too.
		return nil, temporal.NewNonRetryableApplicationError(message(err), "run_failed", nil, w.final())
	}
	return w.snapshot(0), nil
}

// message is the text of the first error a user should read: the stage's
// own message, not Temporal's wrapping of it.
func message(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return timeout.Error()
	}
	return err.Error()
}

type run struct {
	plan *Plan
	core *engine.Plan
	// activities counts the activities this run (since the last
	// continue-as-new) has scheduled.
	activities int
	// unitsDone are the units finished, in this run or before a
	// continue-as-new; loopRounds the rounds each loop has finished.
	unitsDone  map[string]bool
	loopRounds map[string]int
	// continuing is set when a loop asked to continue as new.
	continuing bool

	sem     workflow.Semaphore
	outputs engine.Outputs
	stages  []*runstore.StageRecord
	events  []runner.Event
	// progress holds the latest progress event per stage.
	progress []runner.Event
	// decision is the last decision of the pipeline's loop.
	decision *runstore.Decision
	// partial holds the finished trials of the executions under way.
	partial map[string]*PartialTrials
}

// final is the state a run that did not finish ends with: its snapshot
// and the trials that finished of the executions that did not.
func (w *run) final() *Snapshot {
	s := w.snapshot(0)
	if len(w.partial) > 0 {
		s.Partial = w.partial
	}
	return s
}

// errContinueAsNew stops a loop between two rounds when the run is to
// continue as new.
var errContinueAsNew = errors.New("continue as new")

// Carry is what a run hands over when it continues as new: everything the
// workflow knows (the stage records, files, events and decision) and how
// far it got (the units done, the rounds each loop finished).
type Carry struct {
	Generation int                    `json:"generation"`
	UnitsDone  []string               `json:"units_done"`
	LoopRounds map[string]int         `json:"loop_rounds"`
	Outputs    engine.Outputs         `json:"outputs"`
	Stages     []runstore.StageRecord `json:"stages"`
	Events     []runner.Event         `json:"events,omitempty"`
	Progress   []runner.Event         `json:"progress,omitempty"`
	Decision   *runstore.Decision     `json:"decision,omitempty"`
}

func (w *run) carry() *Carry {
	c := &Carry{LoopRounds: w.loopRounds, Outputs: w.outputs, Events: w.events, Progress: w.progress, Decision: w.decision}
	if w.plan.Carry != nil {
		c.Generation = w.plan.Carry.Generation + 1
	} else {
		c.Generation = 1
	}
	// In plan order, so the carried state does not depend on map order.
	for _, u := range w.plan.Units {
		if w.unitsDone[u.ID] {
			c.UnitsDone = append(c.UnitsDone, u.ID)
		}
	}
	for _, r := range w.stages {
		c.Stages = append(c.Stages, *r)
	}
	return c
}

func (w *run) restore(c *Carry) {
	for _, id := range c.UnitsDone {
		w.unitsDone[id] = true
	}
	for id, n := range c.LoopRounds {
		w.loopRounds[id] = n
	}
	for k, files := range c.Outputs {
		w.outputs[k] = files
	}
	for i := range c.Stages {
		r := c.Stages[i]
		w.stages = append(w.stages, &r)
	}
	w.events = c.Events
	w.progress = c.Progress
	w.decision = c.Decision
}

// shouldContinue says whether this run's history is large enough to
// continue as new: Temporal suggests it, or the history or the
// activities scheduled pass the plan's limits.
func (w *run) shouldContinue(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() ||
		info.GetCurrentHistoryLength() >= w.plan.ContinueAfterEvents ||
		w.activities >= w.plan.ContinueAfterActivities
}

// execute schedules an activity, counted towards continue-as-new.
func (w *run) execute(ctx workflow.Context, activity string, arg any) workflow.Future {
	w.activities++
	return workflow.ExecuteActivity(ctx, activity, arg)
}

func (w *run) snapshot(from int) *Snapshot {
	s := &Snapshot{Next: len(w.events)}
	for _, r := range w.stages {
		s.Stages = append(s.Stages, *r)
	}
	if w.decision != nil {
		d := *w.decision
		s.Decision = &d
	}
	if from >= 0 && from < len(w.events) {
		s.Events = append(s.Events, w.events[from:]...)
	}
	s.Progress = append(s.Progress, w.progress...)
	return s
}

// report keeps e as its stage's latest progress.
func (w *run) report(ctx workflow.Context, e runner.Event) {
	e.Time = workflow.Now(ctx)
	e.RunID = w.plan.RunID
	for i := range w.progress {
		if w.progress[i].Stage == e.Stage {
			w.progress[i] = e
			return
		}
	}
	w.progress = append(w.progress, e)
}

func (w *run) emit(ctx workflow.Context, e runner.Event) {
	e.Time = workflow.Now(ctx)
	e.RunID = w.plan.RunID
	w.events = append(w.events, e)
}

func (w *run) record(addr string) *runstore.StageRecord {
	for _, r := range w.stages {
		if r.Addr == addr {
			return r
		}
	}
	r := &runstore.StageRecord{Addr: addr}
	w.stages = append(w.stages, r)
	return r
}

// schedule runs every unit once the units it depends on are done, in
// the order the core's schedule gives: a unit that fails takes down only
// what depends on it (recorded as skipped, naming the failed stage),
// every independent unit runs to the end, and the run then fails.
func (w *run) schedule(ctx workflow.Context) error {
	w.sem = workflow.NewSemaphore(ctx, int64(w.plan.Parallel))
	var done []string
	for _, u := range w.plan.Units {
		if w.unitsDone[u.ID] {
			done = append(done, u.ID)
		}
	}
	sched := engine.NewSchedule(w.plan.Units, done)
	type result struct {
		unit    engine.Unit
		culprit string
		err     error
	}
	// Results are passed on even while the run is canceled.
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	results := workflow.NewBufferedChannel(dctx, len(w.plan.Units))
	running := 0
	var errs []error
	for {
		if ctx.Err() == nil {
			for _, u := range sched.Ready() {
				running++
				workflow.Go(ctx, func(ctx workflow.Context) {
					var culprit string
					var err error
					if u.Decider != "" {
						culprit, err = w.runLoop(ctx, u)
					} else {
						culprit, err = u.Stages[0], w.runStage(ctx, w.plan.stage(u.Stages[0]), 0, w.plan.Run)
					}
					results.Send(dctx, result{unit: u, culprit: culprit, err: err})
				})
			}
		}
		if running == 0 {
			break
		}
		var r result
		results.Receive(dctx, &r)
		running--
		switch {
		case r.err == nil:
			sched.Succeeded(r.unit.ID)
			w.unitsDone[r.unit.ID] = true
		case errors.Is(r.err, errContinueAsNew):
			// The units already running finish; those after the loop
			// wait for the next run.
			sched.Paused(r.unit.ID)
			w.continuing = true
		default:
			errs = append(errs, r.err)
			skips := sched.Failed(r.unit.ID, r.culprit)
			if ctx.Err() == nil {
				w.skipRest(ctx, r.unit, r.culprit, r.culprit)
				for _, s := range skips {
					w.skipRest(ctx, s.Unit, "", s.Culprit)
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(errs) > 0 {
		return runFailed(errs)
	}
	if w.continuing {
		return errContinueAsNew
	}
	return nil
}

// runFailed is the error of a run whose units failed: every failure's
// own message, the first one's error kept for its type.
func runFailed(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = message(e)
	}
	return &failures{first: errs[0], msg: strings.Join(msgs, "\n")}
}

type failures struct {
	first error
	msg   string
}

func (f *failures) Error() string { return f.msg }
func (f *failures) Unwrap() error { return f.first }

// skipRest records the stages of u that will not run because culprit
// failed: every stage of a unit that waited on it, or the stages of a
// loop body that had not yet run when its own stage at failed.
func (w *run) skipRest(ctx workflow.Context, u engine.Unit, at, culprit string) {
	for _, addr := range u.Stages {
		if addr == at {
			continue
		}
		rec := w.record(addr)
		if at != "" && rec.Status != "pending" && rec.Status != "" {
			// A loop stage that ran in earlier rounds keeps its record.
			continue
		}
		reason := fmt.Sprintf("not run: it depends on stage %s, which failed", culprit)
		rec.Status, rec.Error = runstore.StatusSkipped, reason
		w.emit(ctx, runner.Event{Type: runner.EventStageSkipped, Stage: addr, Plugin: rec.Plugin, Reason: reason})
	}
}

// runLoop runs a loop body round after round until its decider stops it.
// On failure it also returns the stage that failed.
func (w *run) runLoop(ctx workflow.Context, u engine.Unit) (string, error) {
	loop, err := w.core.Loop(u)
	if err != nil {
		return u.Decider, err
	}
	for i, round := range loop.Rounds(w.loopRounds[u.ID]) {
		// Between rounds, never before this run's first: each run
		// makes progress.
		if i > 0 && w.shouldContinue(ctx) {
			return "", errContinueAsNew
		}
		roundSpan := w.plan.Run.child("round", loop.Decider, strconv.Itoa(round))
		start := workflow.Now(ctx)
		w.emit(ctx, runner.Event{Type: runner.EventRoundStarted, Stage: loop.Decider, Round: round})
		var err error
		at := loop.Decider
		for _, addr := range u.Stages {
			if err = w.runStage(ctx, w.plan.stage(addr), round, roundSpan); err != nil {
				at = addr
				break
			}
		}
		var d *runstore.Decision
		if err == nil {
			d, err = w.readDecision(ctx, loop, round)
		}
		span := SpanRecord{Span: roundSpan, Parent: w.plan.Run, Name: fmt.Sprintf("round %d", round), Start: start, RunID: w.plan.RunID,
			Attrs: []Attr{intAttr("round", int64(round)), strAttr("loop", loop.Decider)}}
		if err != nil {
			span.Error = message(err)
			w.recordSpan(ctx, span)
			return at, err
		}
		again := loop.Decide(d, round)
		span.Attrs = append(span.Attrs, strAttr("decision", d.Status))
		w.recordSpan(ctx, span)
		w.decision = d
		w.loopRounds[u.ID] = round
		w.emit(ctx, runner.Event{Type: runner.EventDecision, Stage: loop.Decider, Round: round, Status: d.Status, Reason: d.Reason, Chosen: d.Chosen})
		if !again {
			break
		}
	}
	return "", nil
}

func (w *run) readDecision(ctx workflow.Context, loop *engine.Loop, round int) (*runstore.Decision, error) {
	f, ok := loop.DecisionFile(w.outputs, round)
	if !ok {
		return nil, &sdk.StageError{Stage: loop.Decider, Op: "read decision", Err: fmt.Errorf("no output on decision port %q", loop.DecisionPort)}
	}
	var d runstore.Decision
	actx := w.options(ctx, w.plan.TaskQueue, fmt.Sprintf("%s#%d/decision", loop.Decider, round), 10*time.Minute)
	err := w.execute(actx, activityReadDecision, DecisionRequest{RunID: w.plan.RunID, Stage: loop.Decider, Port: loop.DecisionPort, File: f}).Get(ctx, &d)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// recordSpan has a worker record a span whose id was chosen ahead. It runs
// even when the run is being canceled, and its failure costs only the span.
func (w *run) recordSpan(ctx workflow.Context, rec SpanRecord) {
	if !rec.Span.Valid() {
		return
	}
	rec.End = workflow.Now(ctx)
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	actx := w.options(dctx, w.plan.TaskQueue, "", time.Minute)
	actx = workflow.WithRetryPolicy(actx, temporal.RetryPolicy{MaximumAttempts: 3, InitialInterval: w.plan.RetryInterval})
	if err := w.execute(actx, activityRecordSpan, rec).Get(dctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("cannot record span", "span", rec.Name, "error", err)
	}
}

// options are the activity options of a stage's work: its task queue, a
// heartbeat timeout (a worker that dies is noticed within it and the
// activity given to another worker) and retries with backoff.
func (w *run) options(ctx workflow.Context, queue, id string, startToClose time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           queue,
		ActivityID:          id,
		StartToCloseTimeout: startToClose,
		HeartbeatTimeout:    w.plan.HeartbeatTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    w.plan.RetryInterval,
			BackoffCoefficient: 2,
			MaximumInterval:    max(time.Minute, w.plan.RetryInterval),
			MaximumAttempts:    w.plan.MaxAttempts,
		},
	})
}

// stageOptions are the options of st's activities.
func (w *run) stageOptions(ctx workflow.Context, st *StagePlan, id string) workflow.Context {
	queue := st.TaskQueue
	if queue == "" {
		queue = w.plan.TaskQueue
	}
	// Without a stage timeout, an execution may take as long as it needs:
	// heartbeats, not a deadline, tell a dead worker from a slow stage.
	startToClose := 7 * 24 * time.Hour
	if st.Timeout > 0 {
		// The plugin is stopped at the stage timeout; the margin covers
		// starting it.
		startToClose = st.Timeout + time.Minute
	}
	return w.options(ctx, queue, id, startToClose)
}

// runStage runs st once in round and records its outputs: kept from the
// run being resumed, taken from the cache, or run, as the core decides.
func (w *run) runStage(ctx workflow.Context, st *StagePlan, round int, parent SpanRef) error {
	if err := w.sem.Acquire(ctx, 1); err != nil {
		return err
	}
	defer w.sem.Release(1)
	started := workflow.Now(ctx)
	rec := w.record(st.Addr)
	rec.Status = runstore.StatusRunning
	if rec.StartedAt == nil {
		t := started.UTC()
		rec.StartedAt = &t
	}
	inputs := w.core.Inputs(st.Addr, round, w.outputs)
	cin, key := st.Cache.Address(round, inputs)

	exec, served, err := w.reuse(ctx, st, round, key)
	var pid int
	switch {
	case err != nil:
	case served:
		w.emit(ctx, runner.Event{Type: runner.EventStageStarted, Stage: st.Addr, Plugin: st.Plugin, Round: round, Source: exec.Source + " " + exec.From})
	default:
		w.emit(ctx, runner.Event{Type: runner.EventStageStarted, Stage: st.Addr, Plugin: st.Plugin, Round: round})
		if st.FanOut {
			exec, err = w.fanOut(ctx, st, round, key, inputs, parent)
		} else {
			exec, pid, err = w.single(ctx, st, round, inputs, parent)
		}
		exec.Source = string(engine.Run)
	}
	took := workflow.Now(ctx).Sub(started)
	if err != nil {
		rec.Status = runstore.StatusFailed
		var canceled *temporal.CanceledError
		if errors.As(err, &canceled) || errors.Is(err, workflow.ErrCanceled) {
			rec.Status = runstore.StatusCanceled
		}
		rec.Error = message(err)
		w.emit(ctx, runner.Event{Type: runner.EventStageFailed, Stage: st.Addr, Plugin: st.Plugin, Round: round, Status: rec.Status, Error: rec.Error, Elapsed: took})
		return err
	}
	exec.Round, exec.Status, exec.Key, exec.Inputs = round, runstore.StatusSucceeded, key, cin
	if !served {
		exec.Took = took
	}
	w.outputs.Add(st.Addr, exec.Files)
	finished := workflow.Now(ctx).UTC()
	rec.Status, rec.Error, rec.FinishedAt = runstore.StatusSucceeded, "", &finished
	rec.Rounds = max(rec.Rounds, round)
	rec.Outputs = append(rec.Outputs, exec.Files...)
	rec.Executions = append(rec.Executions, exec)
	rec.Worker = exec.Worker
	rows := map[string]int64{}
	for _, f := range exec.Files {
		rows[f.Port] += f.Rows
	}
	rec.Pid = pid
	source := "worker " + exec.Worker
	if served {
		source = exec.Source + " " + exec.From
	} else if w.plan.UseCache {
		w.remember(ctx, st, round, key, exec.Files)
	}
	w.emit(ctx, runner.Event{Type: runner.EventStageFinished, Stage: st.Addr, Plugin: st.Plugin, Pid: rec.Pid, Round: round, Rows: rows, Elapsed: took, Source: source})
	return nil
}

// reuse serves an execution without running its stage when the core
// says its outputs may be at hand: an activity checks the resumed run's
// files, or looks the address up in the cache and links the files into
// the run. served is false when the stage must run.
func (w *run) reuse(ctx workflow.Context, st *StagePlan, round int, key string) (exec runstore.Execution, served bool, err error) {
	src, prev := engine.Serve(w.plan.Previous, st.Addr, round, key, w.plan.UseCache)
	if src == engine.Run {
		return runstore.Execution{}, false, nil
	}
	req := ReuseRequest{RunID: w.plan.RunID, Stage: st.Addr, Key: key}
	if src == engine.Resumed {
		req.Keep = prev.Files
	}
	var resp ReuseResponse
	actx := w.options(ctx, w.plan.TaskQueue, fmt.Sprintf("%s#%d/reuse", st.Addr, round), 10*time.Minute)
	if err := w.execute(actx, activityReuse, req).Get(ctx, &resp); err != nil {
		return runstore.Execution{}, false, err
	}
	if !resp.Hit {
		return runstore.Execution{}, false, nil
	}
	if src == engine.Resumed {
		exec = prev
		exec.Source, exec.From = string(engine.Resumed), w.plan.RunID
		return exec, true, nil
	}
	return runstore.Execution{Files: resp.Files, Source: string(engine.Cache), From: resp.From}, true, nil
}

// remember has a worker add a finished execution to the cache; its
// failure costs later runs time, not this run its result.
func (w *run) remember(ctx workflow.Context, st *StagePlan, round int, key string, files []runstore.OutputFile) {
	actx := w.options(ctx, w.plan.TaskQueue, fmt.Sprintf("%s#%d/remember", st.Addr, round), time.Minute)
	req := RememberRequest{RunID: w.plan.RunID, Stage: st.Addr, Key: key, Files: files}
	if err := w.execute(actx, activityRemember, req).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("cannot remember outputs for the cache", "stage", st.Addr, "error", err)
	}
}

// single runs the stage as one activity.
func (w *run) single(ctx workflow.Context, st *StagePlan, round int, inputs []runner.PortFiles, parent SpanRef) (runstore.Execution, int, error) {
	var resp StageResponse
	actx := w.stageOptions(ctx, st, fmt.Sprintf("%s#%d", st.Addr, round))
	req := StageRequest{RunID: w.plan.RunID, Stage: *st, Round: round, Inputs: inputs, Parent: parent}
	// The worker needs no content address: it runs what it is given.
	req.Stage.Cache = engine.CacheBase{}
	if err := w.execute(actx, activityRunStage, req).Get(ctx, &resp); err != nil {
		return runstore.Execution{}, 0, err
	}
	return runstore.Execution{Files: resp.Files, Worker: resp.Worker, Attempt: resp.Attempt, Note: resp.Note, PeakRSS: resp.PeakRSS}, resp.Pid, nil
}

// fanOut runs the stage as one activity per trial: split the primary input
// into one file per trial, run the trials (at most MaxPendingTrials at
// once, on whichever workers poll the stage's queue), then concatenate
// their outputs in trial order, so the result does not depend on which
// trial finished first.
func (w *run) fanOut(ctx workflow.Context, st *StagePlan, round int, key string, inputs []runner.PortFiles, parent SpanRef) (runstore.Execution, error) {
	stageSpan := parent.child("stage", st.Addr, strconv.Itoa(round))
	span := SpanRecord{Span: stageSpan, Parent: parent, Name: "stage " + st.Addr, Start: workflow.Now(ctx), RunID: w.plan.RunID,
		Attrs: []Attr{strAttr("stage", st.Addr), strAttr("kind", st.Kind), strAttr("plugin", st.Plugin), strAttr("plugin_version", st.PluginVersion), intAttr("round", int64(round))}}
	exec, err := w.trials(ctx, st, round, key, inputs, stageSpan)
	if err != nil {
		span.Error = message(err)
	} else {
		var rows int64
		for _, f := range exec.Files {
			rows += f.Rows
		}
		span.Attrs = append(span.Attrs, intAttr("trials", int64(len(exec.Trials))), intAttr("rows_out", rows), strAttr("workers", exec.Worker))
	}
	w.recordSpan(ctx, span)
	return exec, err
}

func (w *run) trials(ctx workflow.Context, st *StagePlan, round int, key string, inputs []runner.PortFiles, stageSpan SpanRef) (runstore.Execution, error) {
	var primary []runstore.OutputFile
	for _, in := range inputs {
		if in.Port == sdk.PrimaryInput {
			primary = in.Files
		}
	}
	id := fmt.Sprintf("%s#%d", st.Addr, round)
	var split SplitResponse
	sreq := SplitRequest{RunID: w.plan.RunID, Stage: st.Addr, Round: round, Files: primary, MaxActivities: w.plan.MaxTrialActivities}
	if err := w.execute(w.stageOptions(ctx, st, id+"/split"), activitySplitTrials, sreq).Get(ctx, &split); err != nil {
		return runstore.Execution{}, err
	}
	n := len(split.Trials)
	results := make([]*StageResponse, n)
	part := &PartialTrials{Key: key, Done: map[int]StageResponse{}}
	for _, f := range split.Trials {
		part.Inputs = append(part.Inputs, f.SHA256)
	}
	w.partial[id] = part
	// The trials the interrupted run finished, of the same execution on
	// the same trial inputs, are kept, not run again.
	kept := 0
	if prev := w.plan.PreviousTrials[id]; prev != nil {
		finished := func(i int) bool { _, ok := prev.Done[i]; return ok }
		for _, i := range engine.KeptTrials(prev.Key, prev.Inputs, finished, key, part.Inputs) {
			r := prev.Done[i]
			results[i] = &r
			part.Done[i] = r
			kept++
		}
	}
	// Every trial's request is in the history: it goes without the
	// declared output schemas, which only an empty port needs, and the
	// gather has.
	trialStage := *st
	trialStage.Cache = engine.CacheBase{}
	trialStage.Outputs = nil
	for _, o := range st.Outputs {
		trialStage.Outputs = append(trialStage.Outputs, describe.PortDescription{Name: o.Name})
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	pending := workflow.NewSemaphore(tctx, int64(w.plan.MaxPendingTrials))
	wg := workflow.NewWaitGroup(ctx)
	var firstErr error
	done := kept
	for i := 0; i < n && firstErr == nil; i++ {
		if results[i] != nil {
			continue
		}
		if err := pending.Acquire(tctx, 1); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			break
		}
		if firstErr != nil {
			pending.Release(1)
			break
		}
		req := TrialRequest{Index: i, Stage: StageRequest{RunID: w.plan.RunID, Stage: trialStage, Round: round, Parent: stageSpan}}
		for _, in := range inputs {
			if in.Port == sdk.PrimaryInput {
				in = runner.PortFiles{Port: in.Port, Files: []runstore.OutputFile{split.Trials[i]}}
			}
			req.Stage.Inputs = append(req.Stage.Inputs, in)
		}
		wg.Add(1)
		workflow.Go(tctx, func(gctx workflow.Context) {
			defer wg.Done()
			defer pending.Release(1)
			var resp StageResponse
			actx := w.stageOptions(gctx, st, fmt.Sprintf("%s/trial-%d", id, i))
			if err := w.execute(actx, activityRunTrial, req).Get(gctx, &resp); err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			results[i] = &resp
			part.Done[i] = resp
			done++
			w.report(ctx, runner.Event{Type: runner.EventProgress, Stage: st.Addr, Round: round, Progress: &sdk.Progress{
				Done: int64(done), Total: int64(n),
				Message: fmt.Sprintf("trial %d done on %s (attempt %d)", i, resp.Worker, resp.Attempt),
			}})
		})
	}
	wg.Wait(ctx)
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return runstore.Execution{}, firstErr
	}

	exec := runstore.Execution{}
	greq := GatherRequest{RunID: w.plan.RunID, Stage: st.Addr, Round: round, Outputs: st.Outputs}
	for i, r := range results {
		greq.Trials = append(greq.Trials, r.Files)
		exec.Trials = append(exec.Trials, runstore.TrialRecord{Index: i, Worker: r.Worker, Attempt: r.Attempt, Pid: r.Pid, Took: r.Took})
		exec.Attempt = max(exec.Attempt, r.Attempt)
	}
	if err := w.execute(w.stageOptions(ctx, st, id+"/gather"), activityGatherTrials, greq).Get(ctx, &exec.Files); err != nil {
		return runstore.Execution{}, err
	}
	exec.Worker = strings.Join(workersOf(exec.Trials), ", ")
	exec.Note = fmt.Sprintf("%d trial activities for %d rows", n, split.Rows)
	if kept > 0 {
		exec.Note += fmt.Sprintf(", %d kept from the interrupted run", kept)
	}
	delete(w.partial, id)
	return exec, nil
}
