// Package runner executes a validated pipeline: one plugin process per stage,
// started when the stage is ready to run and stopped when nothing later
// needs it, independent stages concurrently, declared loops round by
// round. Every stage's output ports are written to the run directory as
// Arrow IPC files as the stage finishes, so a failure later in the run
// loses nothing that was already computed. It is the local driver of
// pipeline/engine, which decides the schedule, the loops, each
// execution's inputs and where its outputs come from.
package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/engine"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Launcher starts plugin processes. *pluginhost.Host implements it.
type Launcher interface {
	Start(ctx context.Context, plugin string, opts ...pluginhost.StartOption) (*pluginhost.Client, error)
	// Fingerprint identifies the plugin's executable (its sha256), for the
	// cache.
	Fingerprint(plugin string) (string, error)
}

// Runner executes pipelines. The zero value is not usable: set Launcher.
type Runner struct {
	Launcher Launcher
	Logger   hclog.Logger
	// Parallel bounds the stages running at once (default 4).
	Parallel int
	// MaxPlugins bounds the plugin processes alive at once, those that
	// check configs and those kept between a loop's rounds included
	// (default DefaultMaxPlugins).
	MaxPlugins int
	// StageTimeout bounds one run of a stage whose block sets no
	// `timeout`: 0 means DefaultStageTimeout, a negative value none.
	StageTimeout time.Duration
	// Events receives progress, one event at a time (calls never overlap);
	// it must not block for long.
	Events func(Event)
	// Mem allocates the batches read from and written to run files.
	Mem memory.Allocator
	// Store, when set, serves stages from earlier runs' outputs when their
	// plugin, config and inputs are unchanged (content-addressed), and
	// remembers this run's outputs for later ones.
	Store *runstore.Store
	// NoCache runs every stage even when an earlier run has its outputs.
	NoCache bool
	// Resume continues an interrupted run in its own directory: executions
	// that finished are kept, and a stage with sdk.Resume gets back the
	// rows it journalled before the interruption.
	Resume bool
}

// DefaultStageTimeout bounds a stage's run when neither its block nor the
// runner says otherwise: long enough for any training this tool sizes,
// short enough that a stage stuck for good (on an input that never ends,
// such as a FIFO nobody writes) does not hold its run forever.
const DefaultStageTimeout = 24 * time.Hour

// stageTimeout is what bounds one run of st.
func (r *Runner) stageTimeout(st *config.Stage) time.Duration {
	switch {
	case st.Timeout > 0:
		return st.Timeout
	case r.StageTimeout == 0:
		return DefaultStageTimeout
	case r.StageTimeout < 0:
		return 0
	}
	return r.StageTimeout
}

// ConfigError is returned when plugins reject their configuration before
// any stage ran. Diagnostics carry source ranges.
type ConfigError struct {
	Diagnostics hcl.Diagnostics
}

func (e *ConfigError) Error() string { return e.Diagnostics.Error() }

// tracer is looked up lazily so the CLI can install its provider first.
func tracer() trace.Tracer { return otel.Tracer("github.com/sweetspot-ml/sweetspot/pipeline/runner") }

// execution is the state of one run.
type execution struct {
	r     *Runner
	p     *config.Pipeline
	g     *graph.Graph
	run   *runstore.Run
	log   hclog.Logger
	mem   memory.Allocator
	sem   chan struct{}
	stage map[string]*config.Stage

	// procs starts, keeps and stops the run's plugin processes.
	procs *processes

	// plan is the run's schedule, loops and input choice (pipeline/engine).
	plan *engine.Plan

	mu      sync.Mutex
	outputs engine.Outputs

	emitMu sync.Mutex

	// previous holds the finished executions of the run being resumed.
	previous engine.Finished
}

// Execute runs p, recording into run. It returns a *ConfigError when a
// plugin rejects its config (nothing ran), or the first stage error.
func (r *Runner) Execute(ctx context.Context, run *runstore.Run, p *config.Pipeline, g *graph.Graph) (err error) {
	ex := &execution{
		r: r, p: p, g: g, run: run,
		log:     r.Logger,
		mem:     r.Mem,
		stage:   map[string]*config.Stage{},
		procs:   newProcesses(r.Launcher, r.MaxPlugins),
		outputs: engine.Outputs{},
	}
	if ex.log == nil {
		ex.log = hclog.NewNullLogger()
	}
	if ex.mem == nil {
		ex.mem = memory.DefaultAllocator
	}
	par := r.Parallel
	if par <= 0 {
		par = 4
	}
	ex.sem = make(chan struct{}, par)
	for _, st := range p.Stages {
		ex.stage[st.Addr] = st
	}
	plan, err := engine.NewPlan(p, g)
	if err != nil {
		return err
	}
	ex.plan = plan

	// The run is this process's until it returns: a second --resume of it
	// fails here, before it removes or writes anything.
	if err := run.Lock(); err != nil {
		return err
	}
	defer run.Unlock()
	if r.Resume {
		ex.previous = engine.FinishedOf(run.Manifest())
		if err := run.RemoveLeftovers(); err != nil {
			ex.log.Warn("cannot clean what the interrupted attempt left", "run", run.ID(), "error", err)
		}
	}
	ctx, attempt, err := BeginAttempt(ctx, run, p, "", ex.emit)
	if err != nil {
		return err
	}
	defer func() { err = attempt.End(err) }()
	// No plugin process outlives the run (this runs before the run ends).
	defer ex.procs.close()

	failed, err := ex.checkConfigs(ctx)
	if err != nil {
		return err
	}
	return ex.schedule(ctx, failed)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (ex *execution) emit(e Event) {
	if ex.r.Events == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	if e.RunID == "" {
		e.RunID = ex.run.ID()
	}
	ex.emitMu.Lock()
	defer ex.emitMu.Unlock()
	ex.r.Events(e)
}

// checkConfigs has the plugins check every stage's config before any
// stage runs, so every config problem is reported at once: one process
// per plugin (and pass_env), which checks each of its stages in turn and
// is then kept for the first of them that runs. A plugin that cannot be
// started (or dies while it checks a config) fails only its own stages:
// failed holds those stages' errors.
func (ex *execution) checkConfigs(ctx context.Context) (failed map[string]error, err error) {
	// Each stage's cache key needs its plugin's executable hashed (the
	// built-in plugin's is this whole binary): hash while the processes
	// start rather than when the first stage is ready to run.
	groups := map[string][]*config.Stage{}
	var keys []string
	for _, st := range ex.p.Stages {
		k := checkKey(st.Plugin, st.PassEnv)
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
			go func() { _, _ = ex.r.Launcher.Fingerprint(st.Plugin) }()
		}
		groups[k] = append(groups[k], st)
	}
	_ = ex.run.Update(func(m *runstore.Manifest) {
		records := map[string]*runstore.StageRecord{}
		for _, s := range m.Stages {
			records[s.Addr] = s
		}
		for _, st := range ex.p.Stages {
			s := records[st.Addr]
			if s == nil {
				s = &runstore.StageRecord{Addr: st.Addr}
				m.Stages = append(m.Stages, s)
			}
			s.Kind, s.Plugin = st.Kind, st.Plugin
			if st.Description != nil {
				s.PluginVersion = st.Description.Version
			}
			s.Status = "pending"
		}
	})

	var mu sync.Mutex
	failed = map[string]error{}
	var diags hcl.Diagnostics
	var wg sync.WaitGroup
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var client *pluginhost.Client
			for _, st := range groups[k] {
				op := "check config"
				var ds sdk.Diagnostics
				var err error
				if client == nil {
					op = "start"
					client, _, err = ex.procs.acquire(ctx, st.Plugin, nil, pluginhost.PassEnv(st.PassEnv...))
				}
				if err == nil {
					op = "check config"
					ds, err = client.Configure(ctx, st.Kind, st.Config)
					if err != nil {
						// It may be dead: the next stage gets a new one.
						ex.procs.done(client, "")
						client = nil
					}
				}
				mu.Lock()
				if err != nil {
					failed[st.Addr] = &sdk.StageError{Stage: st.Addr, Op: op, Err: err}
				} else {
					diags = append(diags, PluginDiagnostics(st, ds)...)
				}
				mu.Unlock()
				if ctx.Err() != nil {
					break
				}
			}
			if client != nil {
				ex.procs.done(client, k)
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, context.Cause(ctx)
	}
	if diags.HasErrors() {
		for addr, err := range failed {
			ex.failStage(addr, err)
		}
		return nil, &ConfigError{Diagnostics: diags}
	}
	return failed, nil
}

// PluginDiagnostics maps a plugin's attribute paths onto source ranges.
func PluginDiagnostics(st *config.Stage, ds sdk.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range ds {
		sev := hcl.DiagError
		if d.Severity == sdk.SeverityWarning {
			sev = hcl.DiagWarning
		}
		subject := st.DeclRange
		for n := len(d.Path); n > 0; n-- {
			if rng, ok := st.AttrRanges[strings.Join(d.Path[:n], ".")]; ok {
				subject = rng
				break
			}
		}
		ctx := st.DeclRange
		out = append(out, &hcl.Diagnostic{
			Severity: sev,
			Summary:  d.Summary,
			Detail:   fmt.Sprintf("%s (stage %s, plugin %s)", strings.TrimSpace(d.Detail), st.Addr, st.Plugin),
			Subject:  &subject,
			Context:  &ctx,
		})
	}
	return out
}

// schedule runs every unit once its dependencies are done, in the order
// the plan's schedule gives. A unit that fails takes down only what
// depends on it: those units are skipped (recorded with the failed
// stage's name) while every independent unit runs to the end, and the run
// returns every failure. Cancelling ctx (Ctrl-C) stops everything at
// once.
func (ex *execution) schedule(ctx context.Context, failed map[string]error) error {
	sched := engine.NewSchedule(ex.plan.Units, nil)
	type result struct {
		unit engine.Unit
		// culprit is the failed stage that kept the unit from finishing.
		culprit string
		err     error
	}
	var errs []error
	skip := func(skips []engine.Skip) {
		for _, s := range skips {
			ex.skipRest(s.Unit, "", s.Culprit)
		}
	}
	// A plugin that could not even start fails its stage at once.
	for _, u := range ex.plan.Units {
		for _, addr := range u.Stages {
			if err := failed[addr]; err != nil {
				errs = append(errs, err)
				ex.failStage(addr, err)
				ex.skipRest(u, addr, addr)
				skip(sched.Failed(u.ID, addr))
				break
			}
		}
	}
	results := make(chan result)
	running := 0
	for {
		if ctx.Err() == nil {
			for _, u := range sched.Ready() {
				running++
				go func() {
					var addr string
					var err error
					if u.Decider != "" {
						addr, err = ex.runLoop(ctx, u)
					} else {
						addr, err = u.Stages[0], ex.runStage(ctx, ex.stage[u.Stages[0]], 0, false)
					}
					results <- result{unit: u, culprit: addr, err: err}
				}()
			}
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err == nil {
			sched.Succeeded(r.unit.ID)
			continue
		}
		// Stages stopped by the cancellation have nothing more to say.
		if ctx.Err() == nil || !errors.Is(r.err, context.Canceled) {
			errs = append(errs, r.err)
		}
		skips := sched.Failed(r.unit.ID, r.culprit)
		if ctx.Err() == nil {
			ex.skipRest(r.unit, r.culprit, r.culprit)
			skip(skips)
		}
	}
	if ctx.Err() != nil {
		errs = append([]error{context.Cause(ctx)}, errs...)
	}
	return errors.Join(errs...)
}

// failStage records a stage that failed before it could run.
func (ex *execution) failStage(addr string, err error) {
	_ = ex.run.UpdateStage(addr, func(s *runstore.StageRecord) {
		s.Status = runstore.StatusFailed
		s.Error = err.Error()
	})
	ex.emit(Event{Type: EventStageFailed, Stage: addr, Plugin: ex.stage[addr].Plugin, Status: runstore.StatusFailed, Error: err.Error()})
}

// skipRest records the stages of u that will not run because culprit
// failed: every stage of a unit that waited on it, or the stages of a
// loop body that had not yet run when its own stage at failed.
func (ex *execution) skipRest(u engine.Unit, at, culprit string) {
	for _, addr := range u.Stages {
		if addr == at {
			continue
		}
		s, _ := ex.run.Stage(addr)
		ran := s.Status != "pending" && s.Status != ""
		if at != "" && ran {
			// A loop stage that ran in earlier rounds keeps its record.
			continue
		}
		reason := fmt.Sprintf("not run: it depends on stage %s, which failed", culprit)
		_ = ex.run.UpdateStage(addr, func(s *runstore.StageRecord) {
			s.Status = runstore.StatusSkipped
			s.Error = reason
		})
		ex.emit(Event{Type: EventStageSkipped, Stage: addr, Plugin: ex.stage[addr].Plugin, Reason: reason})
	}
}

// runLoop runs the loop body round after round until the decider stops it.
// On failure it also returns the stage that failed.
func (ex *execution) runLoop(ctx context.Context, u engine.Unit) (string, error) {
	// The processes kept between rounds go with the loop.
	defer func() {
		for _, addr := range u.Stages {
			ex.procs.drop(stageKey(addr))
		}
	}()
	loop, err := ex.plan.Loop(u)
	if err != nil {
		return u.Decider, err
	}
	for _, round := range loop.Rounds(0) {
		rctx, rspan := tracer().Start(ctx, fmt.Sprintf("round %d", round), trace.WithAttributes(
			attribute.Int("round", round), attribute.String("loop", loop.Decider)))
		ex.emit(Event{Type: EventRoundStarted, Stage: loop.Decider, Round: round})
		var err error
		var at string
		for _, addr := range u.Stages {
			if err = ex.runStage(rctx, ex.stage[addr], round, loop.MayRunAgain(round)); err != nil {
				at = addr
				break
			}
		}
		if err != nil {
			rspan.RecordError(err)
			rspan.SetStatus(codes.Error, err.Error())
			rspan.End()
			return at, err
		}
		d, err := ex.readDecision(loop, round)
		if err != nil {
			rspan.End()
			return loop.Decider, &sdk.StageError{Stage: loop.Decider, Op: "read decision", Err: err}
		}
		again := loop.Decide(d, round)
		rspan.SetAttributes(attribute.String("decision", d.Status))
		rspan.End()
		_ = ex.run.Update(func(m *runstore.Manifest) { m.Decision = d })
		ex.emit(Event{Type: EventDecision, Stage: loop.Decider, Round: round, Status: d.Status, Reason: d.Reason, Chosen: d.Chosen})
		if !again {
			break
		}
	}
	return "", nil
}

// runStage runs st once and commits its outputs to the run directory. Its
// plugin process is started (or the one kept for it taken) only when the
// stage is ready and its outputs are not already at hand; with again set
// (a loop stage that may run another round) the process is kept for that
// round, else stopped.
func (ex *execution) runStage(ctx context.Context, st *config.Stage, round int, again bool) (err error) {
	select {
	case ex.sem <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-ex.sem }()

	version := ""
	if st.Description != nil {
		version = st.Description.Version
	}
	ctx, span := tracer().Start(ctx, "stage "+st.Addr, trace.WithAttributes(
		attribute.String("stage", st.Addr),
		attribute.String("kind", st.Kind),
		attribute.String("plugin", st.Plugin),
		attribute.String("plugin_version", version),
		attribute.Int("round", round),
		attribute.Bool("cache_hit", false),
	))
	defer span.End()
	started := time.Now()
	startedUTC := started.UTC()
	// began records the stage as running, with the process it runs in, or
	// (pid 0) where its outputs come from instead ("cache RUN", "resumed
	// RUN"). A resume does not depend on it: it is written, and synced
	// with the stage's end.
	began := func(pid int, source string) {
		_ = ex.run.NoteStage(st.Addr, func(s *runstore.StageRecord) {
			s.Status = runstore.StatusRunning
			if s.StartedAt == nil {
				s.StartedAt = &startedUTC
			}
			if pid != 0 {
				s.Pid = pid
			}
		})
		ex.emit(Event{Type: EventStageStarted, Stage: st.Addr, Plugin: st.Plugin, Pid: pid, Round: round, Source: source})
	}

	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			// A stage stopped because the run was (Ctrl-C, SIGTERM) was
			// canceled, whatever error its plugin's end surfaced as.
			status := runstore.StatusFailed
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				status = runstore.StatusCanceled
			}
			_ = ex.run.UpdateStage(st.Addr, func(s *runstore.StageRecord) { s.Status = status; s.Error = err.Error() })
			ex.emit(Event{Type: EventStageFailed, Stage: st.Addr, Plugin: st.Plugin, Round: round, Status: status, Error: err.Error(), Elapsed: time.Since(started)})
		}
	}()

	// What goes in: the files of finished stages, per input port.
	ex.mu.Lock()
	inputs := ex.plan.Inputs(st.Addr, round, ex.outputs)
	ex.mu.Unlock()
	var rowsIn, bytesIn int64
	for _, in := range inputs {
		for _, f := range in.Files {
			rowsIn += f.Rows
			bytesIn += f.Bytes
		}
	}
	span.SetAttributes(attribute.Int64("rows_in", rowsIn), attribute.Int64("bytes_in", bytesIn))

	base, cerr := ex.cacheBase(st)
	if cerr != nil {
		return &sdk.StageError{Stage: st.Addr, Op: "fingerprint", Err: cerr}
	}
	cin, key := base.Address(round, inputs)
	if done, rerr := ex.reuse(ctx, st, round, key, cin, started, began); done || rerr != nil {
		return rerr
	}

	client, _, perr := ex.procs.acquire(ctx, st.Plugin, []string{stageKey(st.Addr), checkKey(st.Plugin, st.PassEnv)}, pluginhost.PassEnv(st.PassEnv...))
	if perr != nil {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return &sdk.StageError{Stage: st.Addr, Op: "start", Err: perr}
	}
	span.SetAttributes(attribute.Int("pid", client.Pid()))
	began(client.Pid(), "")

	task := &StageTask{
		RunID:   ex.run.ID(),
		RunDir:  ex.run.Dir,
		Stage:   st.Addr,
		Kind:    st.Kind,
		Plugin:  st.Plugin,
		Round:   round,
		Config:  st.Config,
		Outputs: st.Spec.Outputs,
		Resume:  st.Spec.Resume,
		Journal: st.Spec.Resume != nil,
		// A resumed run hands the stage back what it journalled.
		FromJournal: ex.r.Resume,
		Timeout:     ex.r.stageTimeout(st),
		PassEnv:     st.PassEnv,
		MemoryLimit: st.MemoryLimit,
	}
	task.Inputs = inputs
	outcome, rerr := RunTask(ctx, client, task, ex.mem, ex.log, func(p sdk.Progress) {
		ex.emit(Event{Type: EventProgress, Stage: st.Addr, Round: round, Progress: &p})
	})
	// A process whose run failed may be dead or killed: never kept.
	keep := ""
	if again && rerr == nil {
		keep = stageKey(st.Addr)
	}
	ex.procs.done(client, keep)
	if rerr != nil {
		return rerr
	}
	note := outcome.Note

	files := outcome.Files
	rowsOut := map[string]int64{}
	var bytesOut int64
	for _, f := range files {
		rowsOut[f.Port] = f.Rows
		bytesOut += f.Bytes
	}
	var totalOut int64
	for _, n := range rowsOut {
		totalOut += n
	}
	span.SetAttributes(attribute.Int64("rows_out", totalOut), attribute.Int64("bytes_out", bytesOut))
	exec := runstore.Execution{Round: round, Status: runstore.StatusSucceeded, Key: key, Inputs: cin, Source: "ran", Note: note, Files: files, Took: time.Since(started), PeakRSS: outcome.PeakRSS}
	if err := ex.record(st, exec, true); err != nil {
		return err
	}
	for _, rs := range st.Spec.Resume.Ports() {
		// Only now that the manifest lists the port's file may its journal
		// go: a crash before this resumes from the journal, not from zero.
		if err := runstore.RemoveJournal(ex.run.Path(runstore.OutputRel(st.Addr, round, rs.Output))); err != nil {
			ex.log.Warn("cannot remove a journal", "stage", st.Addr, "round", round, "error", err)
		}
	}
	if ex.r.Store != nil {
		if err := ex.r.Store.Remember(key, ex.run.ID(), st.Addr, files); err != nil {
			// A cache that cannot be written costs later runs time, not
			// this run its result.
			ex.log.Warn("cannot remember outputs for the cache", "stage", st.Addr, "error", err)
		}
	}
	ex.emit(Event{Type: EventStageFinished, Stage: st.Addr, Plugin: st.Plugin, Pid: outcome.Pid, Round: round, Rows: rowsOut, Elapsed: time.Since(started)})
	return nil
}

// record makes an execution's outputs visible to later stages and writes
// it to the manifest. appendOutputs is false for executions the manifest
// already lists (a resumed run's finished ones).
func (ex *execution) record(st *config.Stage, e runstore.Execution, appendOutputs bool) error {
	ex.mu.Lock()
	ex.outputs.Add(st.Addr, e.Files)
	ex.mu.Unlock()
	finished := time.Now().UTC()
	if err := ex.run.UpdateStage(st.Addr, func(s *runstore.StageRecord) {
		s.Status = runstore.StatusSucceeded
		s.Error = ""
		s.FinishedAt = &finished
		if e.Round > s.Rounds {
			s.Rounds = e.Round
		}
		if appendOutputs {
			// A stage run again on resume (its inputs changed) writes the
			// same paths: its record replaces the old one.
		files:
			for _, f := range e.Files {
				for i := range s.Outputs {
					if s.Outputs[i].Path == f.Path {
						s.Outputs[i] = f
						continue files
					}
				}
				s.Outputs = append(s.Outputs, f)
			}
		}
		if old, ok := s.Execution(e.Round); ok {
			*old = e
		} else {
			s.Executions = append(s.Executions, e)
		}
	}); err != nil {
		return &sdk.StageError{Stage: st.Addr, Op: "record outputs", Err: err}
	}
	return nil
}

// cacheBase gathers what every execution's content address holds of st.
func (ex *execution) cacheBase(st *config.Stage) (engine.CacheBase, error) {
	return CacheBase(ex.r.Launcher, st)
}

// CacheBase gathers what every execution's content address holds of st
// besides its round and inputs: its plugin's executable hash, its config
// and the sha256 of the files its config names (engine.CacheBase).
func CacheBase(l Launcher, st *config.Stage) (engine.CacheBase, error) {
	fp, err := l.Fingerprint(st.Plugin)
	if err != nil {
		return engine.CacheBase{}, err
	}
	cfg, err := ctyjson.Marshal(st.Config, st.Config.Type())
	if err != nil {
		return engine.CacheBase{}, fmt.Errorf("encode config: %w", err)
	}
	b := engine.CacheBase{Plugin: st.Plugin, PluginSHA256: fp, Kind: st.Kind, Config: cfg}
	if st.Description != nil {
		b.PluginVersion = st.Description.Version
	}
	if b.Files, err = configFiles(st); err != nil {
		return engine.CacheBase{}, fmt.Errorf("hash the files the config names: %w", err)
	}
	return b, nil
}

// reuse serves an execution without running the plugin: from the run
// being resumed when it finished there, else from the cache. done is true
// when the stage's outputs are in place.
func (ex *execution) reuse(ctx context.Context, st *config.Stage, round int, key string, cin runstore.CacheInputs, started time.Time, began func(pid int, source string)) (done bool, err error) {
	e := runstore.Execution{Round: round, Status: runstore.StatusSucceeded, Key: key, Inputs: cin}
	appendOutputs := true
	switch src, prev := engine.Serve(ex.previous, st.Addr, round, key, ex.r.Store != nil && !ex.r.NoCache); src {
	case engine.Resumed:
		// Kept only as committed: a file changed since is refused, not
		// handed to the stages after it.
		for _, f := range prev.Files {
			if err := ex.run.VerifyOutput(st.Addr, f); err != nil {
				return true, &sdk.StageError{Stage: st.Addr, Op: "keep finished outputs", Err: fmt.Errorf("%w; start a new run (stages whose files are intact are served from the cache)", err)}
			}
		}
		e = prev
		e.Source, e.From = string(engine.Resumed), ex.run.ID()
		appendOutputs = false
	case engine.Cache:
		hit, ok, err := ex.r.Store.Recall(key, ex.run, st.Addr)
		if err != nil {
			ex.log.Warn("cache lookup failed; running the stage", "stage", st.Addr, "error", err)
		}
		if !ok {
			return false, nil
		}
		e.Files, e.Source, e.From = hit.Files, string(engine.Cache), hit.Run
	default:
		return false, nil
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Bool("cache_hit", true), attribute.String("served_from", e.Source+" "+e.From))
	began(0, e.Source+" "+e.From)
	if err := ex.record(st, e, appendOutputs); err != nil {
		return true, err
	}
	rows := map[string]int64{}
	for _, f := range e.Files {
		rows[f.Port] += f.Rows
	}
	ex.emit(Event{Type: EventStageFinished, Stage: st.Addr, Plugin: st.Plugin, Round: round, Rows: rows, Elapsed: time.Since(started), Source: e.Source + " " + e.From})
	return true, nil
}

// readDecision reads the last row of a loop's decision of round.
func (ex *execution) readDecision(loop *engine.Loop, round int) (*runstore.Decision, error) {
	ex.mu.Lock()
	f, ok := loop.DecisionFile(ex.outputs, round)
	ex.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("no output on decision port %q", loop.DecisionPort)
	}
	return ReadDecision(loop.Decider, loop.DecisionPort, ex.run.Path(f.Path), ex.mem)
}

func stringCell(b arrow.RecordBatch, column string, row int) string {
	idx := b.Schema().FieldIndices(column)
	if len(idx) == 0 {
		return ""
	}
	col, ok := b.Column(idx[0]).(*array.String)
	if !ok || col.IsNull(row) {
		return ""
	}
	return col.Value(row)
}

// Check has each stage's plugin check its config, as a run does before
// any stage starts, and stops every plugin process it started. It returns
// the plugins' diagnostics with source ranges; err reports plugins that
// could not be started at all.
func Check(ctx context.Context, launcher Launcher, p *config.Pipeline) (hcl.Diagnostics, error) {
	type checked struct {
		diags hcl.Diagnostics
		err   error
	}
	// One process per plugin is enough to check every stage it serves.
	byPlugin := map[string][]*config.Stage{}
	var plugins []string
	for _, st := range p.Stages {
		if _, ok := byPlugin[st.Plugin]; !ok {
			plugins = append(plugins, st.Plugin)
		}
		byPlugin[st.Plugin] = append(byPlugin[st.Plugin], st)
	}
	results := make([]checked, len(plugins))
	var wg sync.WaitGroup
	for i, name := range plugins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client, err := launcher.Start(ctx, name)
			if err != nil {
				results[i].err = fmt.Errorf("start plugin %s: %w", name, err)
				return
			}
			defer client.Kill()
			for _, st := range byPlugin[name] {
				ds, err := client.Configure(ctx, st.Kind, st.Config)
				if err != nil {
					results[i].err = &sdk.StageError{Stage: st.Addr, Op: "check config with plugin " + name, Err: err}
					return
				}
				results[i].diags = append(results[i].diags, PluginDiagnostics(st, ds)...)
			}
		}()
	}
	wg.Wait()
	var diags hcl.Diagnostics
	var errs []error
	for _, r := range results {
		diags = append(diags, r.diags...)
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return diags, errors.Join(errs...)
}
