package temporal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/trace"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/sweetspot-ml/sweetspot/pipeline/blobstore"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/engine"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// Runner is the Temporal engine: it checks every stage's config with the
// plugins on this machine (as the local runner does before anything
// runs), starts the run's workflow, follows it, and records the manifest
// as the local runner does, plus where each stage and trial ran.
type Runner struct {
	Client client.Client
	// Launcher starts the plugins that check the configs here.
	Launcher runner.Launcher
	Logger   hclog.Logger
	// Events receives progress, one event at a time.
	Events func(runner.Event)
	// Plan holds the limits of the run (task queue, parallelism,
	// heartbeats, retries); RunID and Run are filled in.
	Plan PlanOptions
	// Storage, when set, is the bucket the run's workers exchange files
	// through (their --storage); the stages' outputs are downloaded from
	// it into the run directory once the run ends, so everything that
	// reads runs finds them there.
	Storage *blobstore.Store
	// PollInterval is how often the workflow's state is read (default
	// 250ms).
	PollInterval time.Duration
	// NoCache runs every stage even when an earlier run has its outputs
	// (the run store's cache, which workers reach at --out).
	NoCache bool
	// Resume continues an interrupted run: while its workflow still runs
	// (its client was killed), this client follows it again; once it has
	// ended, a new workflow of the same id keeps every execution that
	// finished and runs the rest.
	Resume bool

	progressSeen map[string]time.Time
}

var _ runner.Engine = (*Runner)(nil)

// Execute runs p as a workflow whose id is the run id.
func (r *Runner) Execute(ctx context.Context, run *runstore.Run, p *config.Pipeline, g *graph.Graph) (err error) {
	log := r.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// The run is this process's until it returns, as a local run's is: a
	// second client of the same run fails here, before it starts anything.
	if err := run.Lock(); err != nil {
		return err
	}
	defer run.Unlock()
	var previous engine.Finished
	var partial map[string]*PartialTrials
	var attach client.WorkflowRun
	if r.Resume {
		if attach, partial, err = r.lastWorkflow(ctx, log, run); err != nil {
			return err
		}
		previous = engine.FinishedOf(run.Manifest())
	}
	ctx, attempt, err := runner.BeginAttempt(ctx, run, p, "temporal", r.emit)
	if err != nil {
		return err
	}
	defer func() { err = attempt.End(err) }()
	span := trace.SpanFromContext(ctx)

	if attach != nil {
		log.Info("following the run's workflow, which still runs", "workflow", run.ID())
		return r.finish(ctx, log, run, attach)
	}
	diags, err := runner.Check(ctx, r.Launcher, p)
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		return &runner.ConfigError{Diagnostics: diags}
	}
	opts := r.Plan
	opts.RunID = run.ID()
	opts.Run = refOf(span.SpanContext())
	opts.UseCache, opts.Previous, opts.PreviousTrials = !r.NoCache, previous, partial
	opts.CacheBase = func(st *config.Stage) (engine.CacheBase, error) { return runner.CacheBase(r.Launcher, st) }
	plan, err := BuildPlan(p, g, opts)
	if err != nil {
		return err
	}
	r.warnIdleQueues(ctx, log, plan)

	// One run, one workflow at a time: a new run's id is never started
	// twice; a resumed run's starts again only once its last workflow
	// has ended.
	reuse := enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
	if r.Resume {
		reuse = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE
	}
	wr, err := r.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       run.ID(),
		TaskQueue:                                plan.TaskQueue,
		WorkflowIDReusePolicy:                    reuse,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, WorkflowName, plan)
	if err != nil {
		return fmt.Errorf("start workflow %s: %w", run.ID(), err)
	}
	return r.finish(ctx, log, run, wr)
}

// lastWorkflow looks at the resumed run's last workflow. One that still
// runs (its client was killed), or that ended well while no client
// followed it, is returned to be followed to its end. Of one that was
// canceled or failed, the state it ended with is recorded, so that a new
// workflow keeps every execution it finished, and the trials it finished
// of those it did not are returned.
func (r *Runner) lastWorkflow(ctx context.Context, log hclog.Logger, run *runstore.Run) (client.WorkflowRun, map[string]*PartialTrials, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	desc, err := r.Client.DescribeWorkflowExecution(dctx, run.ID(), "")
	if err != nil {
		var notFound *serviceerror.NotFound
		if errors.As(err, &notFound) {
			return nil, nil, nil
		}
		return nil, nil, fmt.Errorf("find the workflow of run %s: %w", run.ID(), err)
	}
	wr := r.Client.GetWorkflow(ctx, run.ID(), "")
	status := desc.GetWorkflowExecutionInfo().GetStatus()
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING || status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		return wr, nil, nil
	}
	var snap *Snapshot
	var app *temporal.ApplicationError
	var canceled *temporal.CanceledError
	switch err := wr.Get(dctx, nil); {
	case errors.As(err, &app) && app.HasDetails():
		snap = &Snapshot{}
		if app.Details(snap) != nil {
			snap = nil
		}
	case errors.As(err, &canceled) && canceled.HasDetails():
		snap = &Snapshot{}
		if canceled.Details(snap) != nil {
			snap = nil
		}
	}
	log.Info("the run's last workflow ended; a new one keeps what it finished", "workflow", run.ID(), "status", status.String())
	if snap == nil {
		return nil, nil, nil
	}
	r.progressSeen = map[string]time.Time{}
	r.apply(run, snap, snap.Next)
	return nil, snap.Partial, nil
}

// finish follows the workflow to its end and brings its outputs home.
func (r *Runner) finish(ctx context.Context, log hclog.Logger, run *runstore.Run, wr client.WorkflowRun) error {
	err := r.follow(ctx, log, run, wr)
	if ferr := r.fetchOutputs(context.WithoutCancel(ctx), run); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// fetchOutputs downloads the outputs the manifest records from the
// bucket into the run directory, checking each one's sha256. Trial files
// stay in the bucket: the gathered outputs hold their rows.
func (r *Runner) fetchOutputs(ctx context.Context, run *runstore.Run) error {
	if r.Storage == nil {
		return nil
	}
	var errs []error
	for _, st := range run.Manifest().Stages {
		for _, f := range st.Outputs {
			if f.URI == "" {
				continue // left by a worker on the shared directory
			}
			key, ok := r.Storage.ObjectKey(f.URI)
			if !ok {
				errs = append(errs, fmt.Errorf("stage %s: output %s is not in storage %s", st.Addr, f.URI, r.Storage.URL()))
				continue
			}
			if _, err := r.Storage.Get(ctx, key, run.Path(f.Path), f.SHA256, f.Bytes); err != nil {
				errs = append(errs, fmt.Errorf("stage %s: %w", st.Addr, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) emit(e runner.Event) {
	if r.Events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.Events(e)
}

// follow polls the workflow's state into the manifest and the events until
// it ends. A canceled ctx cancels the workflow, whose activities then stop
// their plugins.
func (r *Runner) follow(ctx context.Context, log hclog.Logger, run *runstore.Run, wr client.WorkflowRun) error {
	type outcome struct {
		snap *Snapshot
		err  error
	}
	r.progressSeen = map[string]time.Time{}
	ended := make(chan outcome, 1)
	go func() {
		var s Snapshot
		// The result is waited for without ctx: after a cancel the
		// workflow still ends, and its end is what the manifest records.
		err := wr.Get(context.WithoutCancel(ctx), &s)
		ended <- outcome{&s, err}
	}()
	every := r.PollInterval
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	next := 0
	done := ctx.Done()
	for {
		select {
		case <-tick.C:
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			// No run id: after a continue-as-new the latest run holds
			// the state.
			v, err := r.Client.QueryWorkflow(qctx, wr.GetID(), "", QueryState, next)
			cancel()
			if err != nil {
				// No worker free to answer yet: the next poll will.
				log.Debug("query workflow state", "error", err)
				continue
			}
			var s Snapshot
			if err := v.Get(&s); err != nil {
				log.Debug("decode workflow state", "error", err)
				continue
			}
			next = r.apply(run, &s, next)
		case <-done:
			done = nil
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if err := r.Client.CancelWorkflow(cctx, wr.GetID(), ""); err != nil {
				log.Warn("cancel workflow", "workflow", wr.GetID(), "error", err)
			}
			cancel()
		case o := <-ended:
			if o.err == nil {
				r.apply(run, o.snap, next)
				return nil
			}
			var app *temporal.ApplicationError
			if errors.As(o.err, &app) {
				var s Snapshot
				if app.HasDetails() && app.Details(&s) == nil {
					r.apply(run, &s, next)
				}
				return errors.New(app.Message())
			}
			var canceled *temporal.CanceledError
			if errors.As(o.err, &canceled) || ctx.Err() != nil {
				var s Snapshot
				if canceled != nil && canceled.HasDetails() && canceled.Details(&s) == nil {
					r.apply(run, &s, next)
				}
				if cause := context.Cause(ctx); cause != nil {
					return cause
				}
				return context.Canceled
			}
			return fmt.Errorf("workflow %s: %w", wr.GetID(), o.err)
		}
	}
}

// apply records a snapshot in the manifest, emits its new events and
// returns the index of the next event to ask for.
func (r *Runner) apply(run *runstore.Run, s *Snapshot, next int) int {
	_ = run.Update(func(m *runstore.Manifest) {
		m.Stages = m.Stages[:0]
		for i := range s.Stages {
			st := s.Stages[i]
			m.Stages = append(m.Stages, &st)
		}
		if s.Decision != nil {
			m.Decision = s.Decision
		}
	})
	// A final snapshot holds every event; those already seen are skipped.
	events := s.Events
	if skip := next - (s.Next - len(s.Events)); skip > 0 {
		events = events[min(skip, len(events)):]
	}
	for _, e := range events {
		r.emit(e)
	}
	for _, e := range s.Progress {
		if last, ok := r.progressSeen[e.Stage]; !ok || e.Time.After(last) {
			r.progressSeen[e.Stage] = e.Time
			r.emit(e)
		}
	}
	return max(next, s.Next)
}

// warnIdleQueues says when no worker polls a queue the run needs: the run
// would wait for one without a word.
func (r *Runner) warnIdleQueues(ctx context.Context, log hclog.Logger, plan *Plan) {
	queues := []string{plan.TaskQueue}
	for _, st := range plan.Stages {
		if st.TaskQueue != "" {
			queues = append(queues, st.TaskQueue)
		}
	}
	seen := map[string]bool{}
	for _, q := range queues {
		if seen[q] {
			continue
		}
		seen[q] = true
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := r.Client.DescribeTaskQueue(qctx, q, enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		cancel()
		if err == nil && len(resp.GetPollers()) == 0 {
			log.Warn("no worker polls this task queue yet; its work waits for one (start one with `sweetspot worker --task-queue "+q+"`)", "task_queue", q)
		}
	}
}
