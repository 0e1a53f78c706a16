// Package runner executes a validated pipeline: one plugin process per stage,
// independent stages concurrently, declared loops round by round. Every
// stage's output ports are written to the run directory as Arrow IPC files
// as the stage finishes, so a failure later in the run loses nothing that
// was already computed.
package runner

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Launcher starts plugin processes. *pluginhost.Host implements it.
type Launcher interface {
	Start(ctx context.Context, plugin string) (*pluginhost.Client, error)
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

	clients map[string]*pluginhost.Client

	mu      sync.Mutex
	outputs map[string]map[string][]runstore.OutputFile // stage -> port -> files by round

	emitMu sync.Mutex

	// previous holds the finished executions of the run being resumed,
	// by stage and round.
	previous map[string]map[int]runstore.Execution
}

// Execute runs p, recording into run. It returns a *ConfigError when a
// plugin rejects its config (nothing ran), or the first stage error.
func (r *Runner) Execute(ctx context.Context, run *runstore.Run, p *config.Pipeline, g *graph.Graph) (err error) {
	ex := &execution{
		r: r, p: p, g: g, run: run,
		log:     r.Logger,
		mem:     r.Mem,
		stage:   map[string]*config.Stage{},
		clients: map[string]*pluginhost.Client{},
		outputs: map[string]map[string][]runstore.OutputFile{},
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

	name := "pipeline"
	if len(p.Paths) > 0 {
		name = p.Paths[0]
	}
	ctx, span := tracer().Start(ctx, "run "+name, trace.WithAttributes(
		attribute.StringSlice("file", p.Paths),
		attribute.String("run_id", run.ID()),
		attribute.String("vars_hash", p.Hash),
	))
	traceID := span.SpanContext().TraceID().String()
	start := time.Now()
	if r.Resume {
		ex.previous = finishedExecutions(run.Manifest())
	}
	_ = run.Update(func(m *runstore.Manifest) {
		m.TraceID = traceID
		m.TraceIDs = append(m.TraceIDs, traceID)
		m.Attempts++
		m.Status = runstore.StatusRunning
		m.Error = ""
		m.FinishedAt = nil
	})
	ex.emit(Event{Type: EventRunStarted, RunID: run.ID()})

	defer func() {
		status := runstore.StatusSucceeded
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			status = runstore.StatusCanceled
		default:
			status = runstore.StatusFailed
		}
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.SetAttributes(attribute.String("status", status))
		span.End()
		now := time.Now().UTC()
		if uerr := run.Update(func(m *runstore.Manifest) {
			m.Status = status
			m.FinishedAt = &now
			if err != nil {
				m.Error = err.Error()
			}
		}); uerr != nil && err == nil {
			err = uerr
		}
		ex.emit(Event{Type: EventRunFinished, RunID: run.ID(), Status: status, Elapsed: time.Since(start), Error: errString(err)})
	}()

	if err := ex.startAndConfigure(ctx); err != nil {
		return err
	}
	return ex.schedule(ctx)
}

// finishedExecutions indexes the executions of a run that succeeded.
func finishedExecutions(m runstore.Manifest) map[string]map[int]runstore.Execution {
	out := map[string]map[int]runstore.Execution{}
	for _, s := range m.Stages {
		for _, e := range s.Executions {
			if e.Status != runstore.StatusSucceeded {
				continue
			}
			if out[s.Addr] == nil {
				out[s.Addr] = map[int]runstore.Execution{}
			}
			out[s.Addr][e.Round] = e
		}
	}
	return out
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

// startAndConfigure launches one plugin process per stage and has each
// check its config, so every config problem is reported before any stage
// runs.
func (ex *execution) startAndConfigure(ctx context.Context) error {
	type started struct {
		st     *config.Stage
		client *pluginhost.Client
		diags  sdk.Diagnostics
		err    error
	}
	results := make([]started, len(ex.p.Stages))
	var wg sync.WaitGroup
	for i, st := range ex.p.Stages {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := started{st: st}
			res.client, res.err = ex.r.Launcher.Start(ctx, st.Plugin)
			if res.err == nil {
				res.diags, res.err = res.client.Configure(ctx, st.Kind, st.Config)
			}
			results[i] = res
		}()
	}
	wg.Wait()

	var errs []error
	var diags hcl.Diagnostics
	for _, res := range results {
		if res.client != nil {
			ex.clients[res.st.Addr] = res.client
		}
		if res.err != nil {
			errs = append(errs, &sdk.StageError{Stage: res.st.Addr, Op: "start plugin " + res.st.Plugin, Err: res.err})
			continue
		}
		diags = append(diags, pluginDiagnostics(res.st, res.diags)...)
		_ = ex.run.UpdateStage(res.st.Addr, func(s *runstore.StageRecord) {
			s.Kind = res.st.Kind
			s.Plugin = res.st.Plugin
			if res.st.Description != nil {
				s.PluginVersion = res.st.Description.Version
			}
			s.Pid = res.client.Pid()
			s.Status = "pending"
		})
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if diags.HasErrors() {
		return &ConfigError{Diagnostics: diags}
	}
	return nil
}

// pluginDiagnostics maps a plugin's attribute paths onto source ranges.
func pluginDiagnostics(st *config.Stage, ds sdk.Diagnostics) hcl.Diagnostics {
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

// unit is what the scheduler runs: a single stage, or a whole loop.
type unit struct {
	id      string
	stages  []string // in topological order
	decider string   // set for loops
	deps    []string // unit ids
}

func (ex *execution) units() ([]*unit, error) {
	unitOf := map[string]string{}
	var units []*unit
	byID := map[string]*unit{}
	for _, st := range ex.p.Stages {
		if st.LoopTo == "" {
			continue
		}
		body := ex.g.LoopBody(st.Addr)
		u := &unit{id: "loop " + st.Addr, decider: st.Addr}
		inBody := map[string]bool{}
		for _, a := range body {
			inBody[a] = true
		}
		for _, a := range ex.g.Order() {
			if inBody[a] {
				if other, ok := unitOf[a]; ok {
					return nil, fmt.Errorf("stage %s belongs to two loops (%s and %s): nested or overlapping loops are not supported", a, other, u.id)
				}
				unitOf[a] = u.id
				u.stages = append(u.stages, a)
			}
		}
		units = append(units, u)
		byID[u.id] = u
	}
	for _, a := range ex.g.Order() {
		if _, ok := unitOf[a]; ok {
			continue
		}
		u := &unit{id: a, stages: []string{a}}
		unitOf[a] = u.id
		units = append(units, u)
		byID[u.id] = u
	}
	for _, u := range units {
		seen := map[string]bool{}
		for _, a := range u.stages {
			for _, up := range ex.g.Upstream(a) {
				if d := unitOf[up]; d != u.id && !seen[d] {
					seen[d] = true
					u.deps = append(u.deps, d)
				}
			}
		}
		sort.Strings(u.deps)
	}
	return units, nil
}

// schedule runs every unit once its dependencies are done, stopping all
// work at the first failure.
func (ex *execution) schedule(ctx context.Context) error {
	units, err := ex.units()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	done := map[string]chan struct{}{}
	for _, u := range units {
		done[u.id] = make(chan struct{})
	}
	var (
		wg       sync.WaitGroup
		firstErr error
		errOnce  sync.Once
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel(err) })
	}
	for _, u := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, d := range u.deps {
				select {
				case <-done[d]:
				case <-ctx.Done():
					return
				}
			}
			if ctx.Err() != nil {
				return
			}
			var err error
			if u.decider != "" {
				err = ex.runLoop(ctx, u)
			} else {
				err = ex.runStage(ctx, ex.stage[u.stages[0]], 0, nil)
			}
			if err != nil {
				fail(err)
				return
			}
			close(done[u.id])
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return context.Cause(ctx)
}

// runLoop runs the loop body round after round until the decider stops it.
func (ex *execution) runLoop(ctx context.Context, u *unit) error {
	decider := ex.stage[u.decider]
	spec := decider.Spec.Loop
	if spec == nil {
		return fmt.Errorf("stage %s has loop_to but its kind %q declares no loop", decider.Addr, decider.Kind)
	}
	for round := 1; round <= decider.MaxRounds; round++ {
		rctx, rspan := tracer().Start(ctx, fmt.Sprintf("round %d", round), trace.WithAttributes(
			attribute.Int("round", round), attribute.String("loop", decider.Addr)))
		ex.emit(Event{Type: EventRoundStarted, Stage: decider.Addr, Round: round})
		var feed []runstore.OutputFile
		if round > 1 {
			feed = ex.files(decider.Addr, spec.ProposalsPort, round-1, round-1)
		}
		var err error
		for _, addr := range u.stages {
			var override map[string][]runstore.OutputFile
			if addr == decider.LoopTo && round > 1 {
				override = map[string][]runstore.OutputFile{sdk.PrimaryInput: feed}
			}
			if err = ex.runStage(rctx, ex.stage[addr], round, override); err != nil {
				break
			}
		}
		if err != nil {
			rspan.RecordError(err)
			rspan.SetStatus(codes.Error, err.Error())
			rspan.End()
			return err
		}
		d, err := ex.readDecision(decider.Addr, spec.DecisionPort, round)
		if err != nil {
			rspan.End()
			return &sdk.StageError{Stage: decider.Addr, Op: "read decision", Err: err}
		}
		if d.Status == "continue" && round == decider.MaxRounds {
			d.Status = "max_rounds"
			d.Reason = strings.TrimSpace(d.Reason + fmt.Sprintf(" (stopped: max_rounds = %d reached)", decider.MaxRounds))
		}
		d.Rounds = round
		rspan.SetAttributes(attribute.String("decision", d.Status))
		rspan.End()
		_ = ex.run.Update(func(m *runstore.Manifest) { m.Decision = d })
		ex.emit(Event{Type: EventDecision, Stage: decider.Addr, Round: round, Status: d.Status, Reason: d.Reason, Chosen: d.Chosen})
		if d.Status != "continue" {
			return nil
		}
	}
	return nil
}

// files returns a stage port's outputs for rounds from..to inclusive.
func (ex *execution) files(stage, port string, from, to int) []runstore.OutputFile {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var out []runstore.OutputFile
	for _, f := range ex.outputs[stage][port] {
		if f.Round >= from && f.Round <= to {
			out = append(out, f)
		}
	}
	return out
}

// inputFiles picks the files feeding one input port of st in round.
// A stage in the same loop body sees the current round; the loop's decider
// sees every round so far (it judges the whole history); anything else sees
// every round the producer ran.
func (ex *execution) inputFiles(st *config.Stage, round int, ref config.PortRef) []runstore.OutputFile {
	producer := ex.stage[ref.Stage]
	sameLoop := round > 0 && ex.inLoopOf(producer.Addr, st)
	switch {
	case sameLoop && st.LoopTo != "":
		return ex.files(ref.Stage, ref.Port, 1, round)
	case sameLoop:
		return ex.files(ref.Stage, ref.Port, round, round)
	default:
		return ex.files(ref.Stage, ref.Port, 0, 1<<30)
	}
}

// inLoopOf reports whether producer runs in the same loop as st.
func (ex *execution) inLoopOf(producer string, st *config.Stage) bool {
	for _, d := range ex.p.Stages {
		if d.LoopTo == "" {
			continue
		}
		body := ex.g.LoopBody(d.Addr)
		var hasP, hasS bool
		for _, a := range body {
			hasP = hasP || a == producer
			hasS = hasS || a == st.Addr
		}
		if hasP && hasS {
			return true
		}
	}
	return false
}

// runStage runs st once and commits its outputs to the run directory.
func (ex *execution) runStage(ctx context.Context, st *config.Stage, round int, override map[string][]runstore.OutputFile) (err error) {
	select {
	case ex.sem <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-ex.sem }()

	client := ex.clients[st.Addr]
	version := ""
	if st.Description != nil {
		version = st.Description.Version
	}
	ctx, span := tracer().Start(ctx, "stage "+st.Addr, trace.WithAttributes(
		attribute.String("stage", st.Addr),
		attribute.String("kind", st.Kind),
		attribute.String("plugin", st.Plugin),
		attribute.String("plugin_version", version),
		attribute.Int("pid", client.Pid()),
		attribute.Int("round", round),
		attribute.Bool("cache_hit", false),
	))
	defer span.End()
	started := time.Now()
	startedUTC := started.UTC()
	_ = ex.run.UpdateStage(st.Addr, func(s *runstore.StageRecord) {
		s.Status = runstore.StatusRunning
		if s.StartedAt == nil {
			s.StartedAt = &startedUTC
		}
	})
	ex.emit(Event{Type: EventStageStarted, Stage: st.Addr, Plugin: st.Plugin, Pid: client.Pid(), Round: round})

	defer func() {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			status := runstore.StatusFailed
			if errors.Is(err, context.Canceled) {
				status = runstore.StatusCanceled
			}
			_ = ex.run.UpdateStage(st.Addr, func(s *runstore.StageRecord) { s.Status = status; s.Error = err.Error() })
			ex.emit(Event{Type: EventStageFailed, Stage: st.Addr, Plugin: st.Plugin, Round: round, Error: err.Error(), Elapsed: time.Since(started)})
		}
	}()

	// What goes in: the files of finished stages, per input port.
	portFiles := map[string][]runstore.OutputFile{}
	var order []string
	var rowsIn, bytesIn int64
	for _, port := range st.Spec.Inputs {
		files, ok := override[port.Name]
		if !ok {
			ref, connected := st.Inputs[port.Name]
			if !connected {
				continue
			}
			files = ex.inputFiles(st, round, ref)
		}
		portFiles[port.Name] = files
		order = append(order, port.Name)
		for _, f := range files {
			rowsIn += f.Rows
			bytesIn += f.Bytes
		}
	}
	span.SetAttributes(attribute.Int64("rows_in", rowsIn), attribute.Int64("bytes_in", bytesIn))

	cin, cerr := ex.cacheInputs(st, round, portFiles)
	if cerr != nil {
		return &sdk.StageError{Stage: st.Addr, Op: "fingerprint", Err: cerr}
	}
	key := cin.Key()
	if done, rerr := ex.reuse(ctx, st, round, key, cin, started); done || rerr != nil {
		return rerr
	}

	inputs := map[string]array.RecordReader{}
	defer func() {
		for _, r := range inputs {
			r.Release()
		}
	}()
	for _, name := range order {
		files := portFiles[name]
		paths := make([]string, len(files))
		for i, f := range files {
			paths[i] = ex.run.Path(f.Path)
		}
		rd, oerr := runstore.OpenFiles(paths, ex.mem)
		if oerr != nil {
			return &sdk.StageError{Stage: st.Addr, Op: "open input " + name, Err: oerr}
		}
		inputs[name] = rd
	}

	// Outputs, each to its own file committed only when the stage succeeds.
	writers := map[string]*runstore.PortWriter{}
	sinks := map[string]func(arrow.RecordBatch) error{}
	defer func() {
		for _, w := range writers {
			w.Abort()
		}
	}()
	for _, port := range st.Spec.Outputs {
		var declared *arrow.Schema
		if len(port.ArrowSchema) > 0 {
			s, derr := flight.DeserializeSchema(port.ArrowSchema, ex.mem)
			if derr != nil {
				return &sdk.StageError{Stage: st.Addr, Op: "read declared schema of port " + port.Name, Err: derr}
			}
			declared = s
		}
		w := runstore.NewPortWriter(ex.run.Path(runstore.OutputRel(st.Addr, round, port.Name)), declared, ex.mem)
		if rs := st.Spec.Resume; rs != nil && rs.Output == port.Name {
			w.Journal()
		}
		writers[port.Name] = w
		sinks[port.Name] = w.Write
	}
	note := ""
	if rs := st.Spec.Resume; rs != nil && ex.r.Resume {
		journalled, n, jerr := ex.journalled(st, round, rs.Output)
		if jerr != nil {
			return &sdk.StageError{Stage: st.Addr, Op: "read journal", Err: jerr}
		}
		if journalled != nil {
			inputs[rs.Input] = journalled
			order = append(order, rs.Input)
			note = fmt.Sprintf("resumed with %d journalled row(s) of port %s", n, rs.Output)
			ex.log.Info("resuming stage from its journal", "stage", st.Addr, "round", round, "rows", n)
		}
	}

	runCtx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, st.Timeout, fmt.Errorf("stage %s exceeded its timeout of %s", st.Addr, st.Timeout))
		defer cancel()
	}
	_, rerr := client.Run(runCtx, pluginhost.RunRequest{
		Kind:       st.Kind,
		Stage:      st.Addr,
		RunID:      ex.run.ID(),
		WorkDir:    ex.run.Path("work", st.Addr),
		Round:      round,
		Config:     st.Config,
		Inputs:     inputs,
		InputOrder: order,
		Outputs:    sinks,
		OnProgress: func(p sdk.Progress) {
			ex.emit(Event{Type: EventProgress, Stage: st.Addr, Round: round, Progress: &p})
		},
	})
	if rerr != nil {
		if cause := context.Cause(runCtx); cause != nil && runCtx.Err() != nil && ctx.Err() == nil {
			// The stage's own timeout fired: say so rather than "canceled".
			client.Kill()
			return &sdk.StageError{Stage: st.Addr, Op: "run", Err: fmt.Errorf("%w (plugin %s was stopped)", cause, st.Plugin)}
		}
		return &sdk.StageError{Stage: st.Addr, Op: "run", Err: rerr}
	}

	var files []runstore.OutputFile
	rowsOut := map[string]int64{}
	var bytesOut int64
	for _, port := range st.Spec.Outputs {
		rows, size, sum, cerr := writers[port.Name].Commit()
		if cerr != nil {
			return &sdk.StageError{Stage: st.Addr, Op: "write output " + port.Name, Err: cerr}
		}
		f := runstore.OutputFile{Port: port.Name, Round: round, Path: runstore.OutputRel(st.Addr, round, port.Name), Rows: rows, Bytes: size, SHA256: sum}
		files = append(files, f)
		rowsOut[port.Name] = rows
		bytesOut += size
	}
	var totalOut int64
	for _, n := range rowsOut {
		totalOut += n
	}
	span.SetAttributes(attribute.Int64("rows_out", totalOut), attribute.Int64("bytes_out", bytesOut))
	exec := runstore.Execution{Round: round, Status: runstore.StatusSucceeded, Key: key, Inputs: cin, Source: "ran", Note: note, Files: files, Took: time.Since(started)}
	if err := ex.record(st, exec, true); err != nil {
		return err
	}
	if ex.r.Store != nil {
		if err := ex.r.Store.Remember(key, ex.run.ID(), st.Addr, files); err != nil {
			// A cache that cannot be written costs later runs time, not
			// this run its result.
			ex.log.Warn("cannot remember outputs for the cache", "stage", st.Addr, "error", err)
		}
	}
	ex.emit(Event{Type: EventStageFinished, Stage: st.Addr, Plugin: st.Plugin, Pid: client.Pid(), Round: round, Rows: rowsOut, Elapsed: time.Since(started)})
	return nil
}

// record makes an execution's outputs visible to later stages and writes
// it to the manifest. appendOutputs is false for executions the manifest
// already lists (a resumed run's finished ones).
func (ex *execution) record(st *config.Stage, e runstore.Execution, appendOutputs bool) error {
	ex.mu.Lock()
	if ex.outputs[st.Addr] == nil {
		ex.outputs[st.Addr] = map[string][]runstore.OutputFile{}
	}
	for _, f := range e.Files {
		ex.outputs[st.Addr][f.Port] = append(ex.outputs[st.Addr][f.Port], f)
	}
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
			s.Outputs = append(s.Outputs, e.Files...)
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

// cacheInputs gathers what an execution's outputs depend on.
func (ex *execution) cacheInputs(st *config.Stage, round int, ports map[string][]runstore.OutputFile) (runstore.CacheInputs, error) {
	fp, err := ex.r.Launcher.Fingerprint(st.Plugin)
	if err != nil {
		return runstore.CacheInputs{}, err
	}
	cfg, err := ctyjson.Marshal(st.Config, st.Config.Type())
	if err != nil {
		return runstore.CacheInputs{}, fmt.Errorf("encode config: %w", err)
	}
	in := runstore.CacheInputs{Plugin: st.Plugin, PluginSHA256: fp, Kind: st.Kind, Round: round, Config: cfg, Ports: map[string][]string{}}
	if st.Description != nil {
		in.PluginVersion = st.Description.Version
	}
	for port, files := range ports {
		sums := make([]string, len(files))
		for i, f := range files {
			sums[i] = f.SHA256
		}
		in.Ports[port] = sums
	}
	return in, nil
}

// reuse serves an execution without running the plugin: from the run
// being resumed when it finished there, else from the cache. done is true
// when the stage's outputs are in place.
func (ex *execution) reuse(ctx context.Context, st *config.Stage, round int, key string, cin runstore.CacheInputs, started time.Time) (done bool, err error) {
	e := runstore.Execution{Round: round, Status: runstore.StatusSucceeded, Key: key, Inputs: cin}
	appendOutputs := true
	if prev, ok := ex.previous[st.Addr][round]; ok && prev.Key == key {
		e = prev
		e.Source, e.From = "resumed", ex.run.ID()
		appendOutputs = false
	} else if ex.r.Store != nil && !ex.r.NoCache {
		hit, ok, err := ex.r.Store.Recall(key, ex.run)
		if err != nil {
			ex.log.Warn("cache lookup failed; running the stage", "stage", st.Addr, "error", err)
		}
		if !ok {
			return false, nil
		}
		e.Files, e.Source, e.From = hit.Files, "cache", hit.Run
	} else {
		return false, nil
	}
	trace.SpanFromContext(ctx).SetAttributes(attribute.Bool("cache_hit", true), attribute.String("served_from", e.Source+" "+e.From))
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

// journalled returns, as a reader, the rows a stage journalled on port in
// this round before the run was interrupted; nil when there are none.
func (ex *execution) journalled(st *config.Stage, round int, port string) (array.RecordReader, int64, error) {
	schema, batches, err := runstore.ReadJournal(runstore.JournalPath(ex.run.Path(runstore.OutputRel(st.Addr, round, port))), ex.mem)
	if err != nil || len(batches) == 0 {
		return nil, 0, err
	}
	var rows int64
	for _, b := range batches {
		rows += b.NumRows()
	}
	rd, err := array.NewRecordReader(schema, batches)
	for _, b := range batches {
		b.Release()
	}
	if err != nil {
		return nil, 0, err
	}
	return rd, rows, nil
}

// readDecision reads the last row of a decider's decision port.
func (ex *execution) readDecision(stage, port string, round int) (*runstore.Decision, error) {
	files := ex.files(stage, port, round, round)
	if len(files) == 0 {
		return nil, fmt.Errorf("no output on decision port %q", port)
	}
	rd, err := runstore.OpenFiles([]string{ex.run.Path(files[0].Path)}, ex.mem)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	d := &runstore.Decision{Stage: stage}
	found := false
	for rd.Next() {
		b := rd.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		last := int(b.NumRows()) - 1
		d.Status = stringCell(b, "status", last)
		d.Reason = stringCell(b, "reason", last)
		d.Chosen = stringCell(b, "chosen_candidate_id", last)
		found = true
	}
	if err := rd.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("decision port %q is empty", port)
	}
	if d.Status == "" {
		return nil, fmt.Errorf("decision port %q has no utf8 column \"status\" with a value", port)
	}
	return d, nil
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
				results[i].diags = append(results[i].diags, pluginDiagnostics(st, ds)...)
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
