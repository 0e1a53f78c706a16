package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

type runOptions struct {
	vars     varFlags
	parallel int
	out      string
	otlp     string
	quiet    bool
	json     bool
	logLevel string
	noCache  bool
	resume   string
	// engine is "local" or "temporal"; the rest configure the latter.
	engine           string
	temporal         temporalFlags
	heartbeat        time.Duration
	maxPendingTrials int
	// maxPlugins bounds the plugin processes alive at once; stageTimeout
	// bounds a stage whose block sets no timeout (0: none).
	maxPlugins   int
	stageTimeout time.Duration
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run PATH",
		Short: "Run a pipeline (a .hcl file or a directory of them)",
		Long: `Run loads and validates the pipeline, has the plugins check every stage's
config, then runs the stages (independent ones at once) and the declared
loops, each stage in a plugin process of its own that starts when the stage
is ready and stops when nothing later needs it (at most --max-plugins alive
at once). Outputs go to .sweetspot/runs/<run-id>/ as Arrow IPC
files with a manifest; spans go to the run directory and, when configured,
to OTLP (OTEL_EXPORTER_OTLP_ENDPOINT or --otlp).

Ctrl-C (SIGINT, or SIGTERM) stops the run gracefully: running stages are
canceled and their plugin processes stopped, every stage that finished is
kept, and so is every trial an evaluation stage finished (in its journal);
the manifest records the run as canceled and says how to continue it. A
second Ctrl-C does not wait: it kills the plugins and exits at once.
--resume RUN continues an interrupted run, or one whose host was killed,
in its own directory: finished stages are not run again and finished
trials are not trained again. With --engine temporal, a run whose client
was killed goes on on the workers: --resume follows its workflow to the
end, or, once the workflow has ended, starts a new one that keeps every
finished stage.

Exit codes:
  0    the run succeeded: the search converged, or its budget ran out with a
       model that meets the requirements (the best so far); a pipeline
       without a deciding stage succeeded
  1    the run failed
  2    invalid pipeline or usage
  3    the run succeeded and decided that no model meets the requirements
       (infeasible)
  4    the run succeeded but its budget (max_trials, max_wall or max_rounds)
       ran out before any model met the requirements
  130  interrupted by SIGINT (143 by SIGTERM)
With --json, the last line on stdout is one object of type "result": the
run's id and status, its outcome (converged, best_so_far, no_answer,
infeasible, no_decision, failed, canceled or invalid), the exit code, the
error if any, and the decision (stage, status, rounds, reason, chosen
candidate id, name and params).`,
		Example: `  sweetspot run examples/quickstart
  sweetspot run pipeline.hcl -var target=0.9 --otlp localhost:4317
  sweetspot run --resume 20261128-231726-a1b2c3 pipeline.hcl -var target=0.9`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPipeline(cmd.Context(), args, &o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.vars.register(cmd)
	f := cmd.Flags()
	f.IntVar(&o.parallel, "parallel", 4, fmt.Sprintf("stages that may run at once (1 to %d)", maxParallel))
	f.IntVar(&o.maxPlugins, "max-plugins", runner.DefaultMaxPlugins(), "plugin processes that may be alive at once (a stage's starts when the stage is ready and stops when nothing later needs it)")
	f.DurationVar(&o.stageTimeout, "stage-timeout", runner.DefaultStageTimeout, "how long a stage whose block sets no timeout may run (0: no limit)")
	f.StringVar(&o.out, "out", runstore.DefaultRoot, "directory that holds run directories")
	f.StringVar(&o.otlp, "otlp", "", "export spans over OTLP to this endpoint (host:port or URL)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "print only the result")
	f.BoolVar(&o.json, "json", false, "print one JSON event per line on stdout")
	f.BoolVar(&o.noCache, "no-cache", false, "run every stage, even those an earlier run already ran with the same plugin, config and inputs")
	f.StringVar(&o.resume, "resume", "", "continue the interrupted run RUN: keep what it finished, retrain nothing it recorded")
	f.StringVar(&o.logLevel, "log-level", "", "log level: trace, debug, info, warn, error (default warn, or $SWEETSPOT_LOG)")
	f.StringVar(&o.engine, "engine", "local", "where stages run: local (here), or temporal (on the workers of --temporal; see `sweetspot worker`)")
	o.temporal.register(cmd, "with --engine temporal: the task queue of the workflow and of stages without task_queue")
	f.DurationVar(&o.heartbeat, "heartbeat-timeout", 0, "with --engine temporal: how long a silent worker keeps its activity before another worker gets it (default 30s)")
	f.IntVar(&o.maxPendingTrials, "max-pending-trials", 0, "with --engine temporal: trial activities of a stage in flight at once (default 200)")
	return cmd
}

// maxParallel bounds --parallel: more stages than that at once is a typo.
const maxParallel = 1024

// runPipeline runs the pipeline and, with --json, ends stdout with the
// result line once the run exists.
func runPipeline(parent context.Context, args []string, o *runOptions, stdout, stderr io.Writer) error {
	var res runResult
	err := executePipeline(parent, args, o, stdout, stderr, &res)
	if o.json && res.run != nil {
		res.print(stdout, err)
	}
	return err
}

func executePipeline(parent context.Context, args []string, o *runOptions, stdout, stderr io.Writer, res *runResult) error {
	if parent == nil {
		parent = context.Background()
	}
	if o.parallel < 1 || o.parallel > maxParallel {
		return &exitError{code: exitInvalid, err: fmt.Errorf("--parallel %d: the number of stages that may run at once must be from 1 to %d", o.parallel, maxParallel)}
	}
	if err := o.checkEngine(); err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	if o.otlp != "" {
		if err := telemetry.CheckEndpoint(o.otlp); err != nil {
			return &exitError{code: exitInvalid, err: fmt.Errorf("--otlp: %w", err)}
		}
	}
	logger := newLogger(o.logLevel)
	catalog, err := newHost(logger, pluginhost.WithPipelineLock(args...))
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	defer catalog.Close()
	p, err := loadPipeline(args, &o.vars, catalog)
	if err != nil {
		return err
	}

	// Signals are caught from here on, so that none ends the host without
	// a word in the manifest; handleInterrupts acts on them once the run
	// exists.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	// Closed last, so that a second signal while spans are flushed still
	// stops at once.
	done := make(chan struct{})
	defer close(done)

	vars := map[string]string{}
	for k, v := range p.Vars {
		vars[k] = ctyString(v)
	}
	store := runstore.Open(o.out)
	var run *runstore.Run
	if o.resume != "" {
		run, err = store.Load(o.resume)
		if err != nil {
			return &exitError{code: exitInvalid, err: fmt.Errorf("--resume: %w", err)}
		}
		if m := run.Manifest(); m.PipelineHash != p.Hash {
			return &exitError{code: exitInvalid, err: fmt.Errorf("--resume %s: the pipeline files or variables changed since that run (hash %.12s, now %.12s); resume it with the same ones, or start a new run", m.RunID, m.PipelineHash, p.Hash)}
		}
	} else {
		run, err = store.Create(runstore.Manifest{
			Pipeline:     p.Paths,
			PipelineHash: p.Hash,
			Vars:         vars,
			StartedAt:    time.Now().UTC(),
			NoCache:      o.noCache,
		})
		if err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	res.run = run

	tcfg := telemetry.Config{
		Service:      "sweetspot",
		TraceFile:    run.Path("spans", "host.jsonl"),
		OTLPEndpoint: firstNonEmpty(o.otlp, p.Telemetry.OTLPEndpoint),
		OTLPProtocol: p.Telemetry.Protocol,
	}
	tp, err := telemetry.Setup(parent, tcfg)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			fmt.Fprintln(stderr, "warning: flushing spans:", err)
		}
	}()

	host, err := newHost(logger, pluginhost.WithPipelineLock(args...),
		pluginhost.WithTraceDir(run.Path("spans")),
		pluginhost.WithEnv(tcfg.PluginEnv("")...),
	)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	defer host.Close()

	ctx, interrupt := context.WithCancelCause(parent)
	defer interrupt(nil)
	go handleInterrupts(sigs, done, interrupt, run, args, host, o.quiet, stderr)

	printer := newEventPrinter(o, stdout, stderr)
	printer.stageStatus = func(addr string) string {
		s, _ := run.Stage(addr)
		return s.Status
	}
	events := printer.event
	var live *liveDisplay
	if f, ok := stderr.(*os.File); ok && !o.json && !o.quiet && isatty.IsTerminal(f.Fd()) {
		live = newLiveDisplay(stderr, printer)
		events = live.event
	}
	stageTimeout := o.stageTimeout
	if stageTimeout <= 0 {
		stageTimeout = -1 // none
	}
	var engine runner.Engine = &runner.Runner{Launcher: host, Logger: logger, Parallel: o.parallel, Events: events,
		MaxPlugins: o.maxPlugins, StageTimeout: stageTimeout,
		Store: store, NoCache: o.noCache, Resume: o.resume != ""}
	if o.engine == "temporal" {
		te, closeEngine, err := temporalEngine(ctx, o, host, events)
		if err != nil {
			_ = run.Update(func(m *runstore.Manifest) { m.Status, m.Error = runstore.StatusFailed, err.Error() })
			return &exitError{code: exitFailed, err: err}
		}
		defer closeEngine()
		engine = te
	}
	runErr := engine.Execute(ctx, run, p, p.Graph)
	host.Close()
	if live != nil {
		live.wait()
	}

	var interrupted *interruptedError
	if runErr != nil && errors.As(context.Cause(ctx), &interrupted) {
		// The stage errors say "canceled"; the run says why and what next.
		_ = run.Update(func(m *runstore.Manifest) { m.Error = interrupted.Error() + "; " + resumeHint(run, args) })
	}
	var cfgErr *runner.ConfigError
	if errors.As(runErr, &cfgErr) {
		renderDiagnostics(stderr, p.Files, cfgErr.Diagnostics)
		return &exitError{code: exitInvalid, err: fmt.Errorf("plugins rejected the configuration: %s", countErrors(cfgErr.Diagnostics))}
	}
	m := run.Manifest()
	if !o.json {
		printSummary(stdout, run, &m, tcfg)
	}
	if runErr != nil {
		if interrupted != nil {
			return &exitError{code: interrupted.exitCode(), err: fmt.Errorf("run %s %s", run.ID(), m.Error)}
		}
		if addr, diags := runConfigDiagnostics(p, runErr); diags.HasErrors() {
			renderDiagnostics(stderr, p.Files, diags)
			return &exitError{code: exitFailed, err: fmt.Errorf("run %s failed: stage %s rejected its configuration: %s", run.ID(), addr, countErrors(diags))}
		}
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s failed: %w", run.ID(), runErr)}
	}
	d, err := readRunDecision(run, &m, p)
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("run %s: reading its decision: %w", run.ID(), err)}
	}
	res.decision = d
	if code := d.exitCode(); code != exitOK {
		return &exitError{code: code} // the summary, or the result line, says why
	}
	return nil
}

// runConfigDiagnostics finds in a failed run's error the config problems
// a plugin could see only once it ran (a target column its data file
// lacks), mapped onto the stage's source, so they point at the attribute
// as the ones found before the run do.
func runConfigDiagnostics(p *config.Pipeline, err error) (string, hcl.Diagnostics) {
	var se *sdk.StageError
	var ds sdk.Diagnostics
	if !errors.As(err, &se) || !errors.As(se, &ds) {
		return "", nil
	}
	for _, st := range p.Stages {
		if st.Addr == se.Stage {
			return st.Addr, runner.PluginDiagnostics(st, ds)
		}
	}
	return "", nil
}

// interruptedError is the cause of a run stopped by a signal. It is a
// cancellation, so the run and its stages are recorded as canceled.
type interruptedError struct {
	sig os.Signal
}

func (e *interruptedError) Error() string { return "interrupted by " + signalName(e.sig) }
func (e *interruptedError) Unwrap() error { return context.Canceled }

// exitCode is the shell's code for a process ended by the signal: 130 for
// SIGINT, 143 for SIGTERM.
func (e *interruptedError) exitCode() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

func signalName(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// handleInterrupts acts on SIGINT and SIGTERM. The first ends the run's
// context: every stage is canceled and its plugin stopped, and the rows a
// stage had sent stay in its journal (runPipeline then says in the
// manifest how to resume). A second does not wait for that, nor for a
// plugin that does not answer: it records the stop, kills the plugins
// (SIGKILL) and exits at once.
func handleInterrupts(sigs <-chan os.Signal, done <-chan struct{}, interrupt context.CancelCauseFunc, run *runstore.Run, args []string, host interface{ Abort() }, quiet bool, stderr io.Writer) {
	var first os.Signal
	select {
	case first = <-sigs:
	case <-done:
		return
	}
	cause := &interruptedError{sig: first}
	if !quiet {
		fmt.Fprintf(stderr, "\n%s: stopping run %s and its plugins (%s again stops at once)\n", cause, run.ID(), signalName(first))
	}
	interrupt(cause)
	select {
	case second := <-sigs:
		now := time.Now().UTC()
		_ = run.Update(func(m *runstore.Manifest) {
			if m.Status != runstore.StatusRunning && m.Status != runstore.StatusCanceled {
				return // it ended before the second signal
			}
			m.Status, m.FinishedAt = runstore.StatusCanceled, &now
			m.Error = fmt.Sprintf("%s, then stopped at once by a second %s; %s", cause, signalName(second), resumeHint(run, args))
			for _, st := range m.Stages {
				if st.Status == runstore.StatusRunning || st.Status == "pending" {
					st.Status, st.Error = runstore.StatusCanceled, "stopped at once by a second "+signalName(second)
				}
			}
		})
		if !quiet {
			fmt.Fprintf(stderr, "%s again: stopping at once\n", signalName(second))
		}
		host.Abort()
		os.Exit(cause.exitCode())
	case <-done:
	}
}

// resumeHint says what an interrupted run keeps and how to continue it.
func resumeHint(run *runstore.Run, args []string) string {
	return fmt.Sprintf("the stages that finished and the trials already journalled are kept; continue with: sweetspot run --resume %s %s", run.ID(), strings.Join(args, " "))
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// printSummary tells the user what the run left and where.
func printSummary(w io.Writer, run *runstore.Run, m *runstore.Manifest, tcfg telemetry.Config) {
	fmt.Fprintf(w, "\nrun %s %s\n", m.RunID, m.Status)
	stages := append([]*runstore.StageRecord(nil), m.Stages...)
	sort.SliceStable(stages, func(i, j int) bool { return startedBefore(stages[i], stages[j]) })
	for _, s := range stages {
		var outs []string
		rows := map[string]int64{}
		var ports []string
		for _, f := range s.Outputs {
			if _, ok := rows[f.Port]; !ok {
				ports = append(ports, f.Port)
			}
			rows[f.Port] += f.Rows
		}
		for _, p := range ports {
			outs = append(outs, fmt.Sprintf("%s=%d rows", p, rows[p]))
		}
		rounds := ""
		if s.Rounds > 0 {
			rounds = fmt.Sprintf(" rounds=%d", s.Rounds)
		}
		fmt.Fprintf(w, "  %-28s %-10s %-14s%s %s\n", s.Addr, s.Status, servedBy(s), rounds, strings.Join(outs, " "))
	}
	ms, err := printTrials(w, run, m)
	if err != nil {
		fmt.Fprintln(w, "cannot show the trials:", err)
	}
	if d := m.Decision; d != nil {
		fmt.Fprintf(w, "\ndecision: %s after %d round(s)", d.Status, d.Rounds)
		if d.Chosen != "" {
			fmt.Fprintf(w, ", chosen %s", ms.named(d.Chosen))
		}
		if d.Reason != "" {
			fmt.Fprintf(w, ": %s", d.Reason)
		}
		fmt.Fprintln(w)
	}
	abs, _ := filepath.Abs(run.Dir)
	fmt.Fprintf(w, "outputs: %s\n", abs)
	fmt.Fprintf(w, "trace:   %s\n", m.TraceID)
	if link := jaegerLink(tcfg, m.TraceID); link != "" {
		fmt.Fprintf(w, "jaeger:  %s\n", link)
	}
}

// servedBy says what made a stage's outputs: the process it ran in, or,
// for a stage that started none, where its outputs came from.
func servedBy(s *runstore.StageRecord) string {
	if s.Pid != 0 {
		return fmt.Sprintf("pid=%d", s.Pid)
	}
	if n := len(s.Executions); n > 0 && s.Executions[n-1].Source != "" && s.Executions[n-1].Source != "ran" {
		return "from=" + s.Executions[n-1].Source
	}
	return "no process"
}

func startedBefore(a, b *runstore.StageRecord) bool {
	if a.StartedAt == nil || b.StartedAt == nil {
		return a.StartedAt != nil
	}
	return a.StartedAt.Before(*b.StartedAt)
}

// jaegerLink is the trace's page in the Jaeger UI when the run exported
// its spans over OTLP to Jaeger's ports (telemetry.JaegerTraceURL).
func jaegerLink(tcfg telemetry.Config, traceID string) string {
	if !tcfg.OTLPEnabled() {
		return ""
	}
	return telemetry.JaegerTraceURL(tcfg.Endpoint(), traceID)
}

// eventPrinter shows a run's events: log lines on stderr, or JSON lines on
// stdout with --json.
type eventPrinter struct {
	mu     sync.Mutex
	o      *runOptions
	stdout io.Writer
	stderr io.Writer
	enc    *json.Encoder
	last   map[string]time.Time
	// stageStatus is a stage's status in the run's manifest, which the
	// runner writes before it says that the stage ended; nil when unknown.
	stageStatus func(addr string) string
}

func newEventPrinter(o *runOptions, stdout, stderr io.Writer) *eventPrinter {
	return &eventPrinter{o: o, stdout: stdout, stderr: stderr, enc: json.NewEncoder(stdout), last: map[string]time.Time{}}
}

func (p *eventPrinter) event(e runner.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.o.json {
		_ = p.enc.Encode(e)
		return
	}
	if p.o.quiet {
		return
	}
	p.write(p.stderr, e)
}

// write prints one event as a log line.
func (p *eventPrinter) write(w io.Writer, e runner.Event) {
	ts := e.Time.Format("15:04:05")
	round := ""
	if e.Round > 0 {
		round = fmt.Sprintf(" round %d", e.Round)
	}
	switch e.Type {
	case runner.EventRunStarted:
		fmt.Fprintf(w, "%s run %s started\n", ts, e.RunID)
	case runner.EventStageStarted:
		if e.Pid == 0 && e.Source != "" {
			fmt.Fprintf(w, "%s %s%s started (plugin %s, no process: outputs from %s)\n", ts, e.Stage, round, e.Plugin, e.Source)
			break
		}
		fmt.Fprintf(w, "%s %s%s started (plugin %s, pid %d)\n", ts, e.Stage, round, e.Plugin, e.Pid)
	case runner.EventStageFinished:
		var parts []string
		for port, n := range e.Rows {
			parts = append(parts, fmt.Sprintf("%s=%d", port, n))
		}
		sort.Strings(parts)
		from := ""
		if e.Source != "" {
			from = ", from " + e.Source
		}
		fmt.Fprintf(w, "%s %s%s finished in %s (%s rows%s)\n", ts, e.Stage, round, e.Elapsed.Round(time.Millisecond), strings.Join(parts, " "), from)
	case runner.EventStageFailed:
		ended := "FAILED"
		if p.canceled(e) {
			ended = "CANCELED"
		}
		fmt.Fprintf(w, "%s %s%s %s after %s: %s\n", ts, e.Stage, round, ended, e.Elapsed.Round(time.Millisecond), e.Error)
	case runner.EventStageSkipped:
		fmt.Fprintf(w, "%s %s skipped: %s\n", ts, e.Stage, e.Reason)
	case runner.EventProgress:
		// At most one line a second per stage, and always the last one.
		pr := e.Progress
		if pr == nil || (time.Since(p.last[e.Stage]) < time.Second && pr.Done < pr.Total) {
			return
		}
		p.last[e.Stage] = time.Now()
		fmt.Fprintf(w, "%s %s%s %d/%d %s\n", ts, e.Stage, round, pr.Done, pr.Total, pr.Message)
	case runner.EventRoundStarted:
		fmt.Fprintf(w, "%s loop %s: round %d\n", ts, e.Stage, e.Round)
	case runner.EventDecision:
		fmt.Fprintf(w, "%s %s round %d decided %s %s\n", ts, e.Stage, e.Round, e.Status, e.Reason)
	case runner.EventRunFinished:
		fmt.Fprintf(w, "%s run %s %s in %s\n", ts, e.RunID, e.Status, e.Elapsed.Round(time.Millisecond))
	}
}

// canceled says whether a stage that ended without success was canceled
// rather than failed.
func (p *eventPrinter) canceled(e runner.Event) bool {
	if e.Status != "" {
		return e.Status == runstore.StatusCanceled
	}
	return p.stageStatus != nil && p.stageStatus(e.Stage) == runstore.StatusCanceled
}

// ctyString renders a variable value for the manifest, as JSON.
func ctyString(v cty.Value) string {
	data, err := ctyjson.SimpleJSONValue{Value: v}.MarshalJSON()
	if err != nil {
		return v.GoString()
	}
	return string(data)
}

// runResult is what the result line of --json says: the run, and the
// decision it reached when it succeeded.
type runResult struct {
	run      *runstore.Run
	decision *runDecision
}

// resultLine is the last line of --json output.
type resultLine struct {
	Type     string       `json:"type"` // "result"
	RunID    string       `json:"run_id"`
	Status   string       `json:"status"`
	Outcome  string       `json:"outcome"`
	ExitCode int          `json:"exit_code"`
	Error    string       `json:"error,omitempty"`
	Decision *runDecision `json:"decision,omitempty"`
}

// decisionMaxRounds is the status the runner gives a loop it stopped at
// max_rounds while its decision still asked to continue.
const decisionMaxRounds = "max_rounds"

// Outcomes of a run, as the result line names them.
const (
	outcomeConverged  = "converged"   // the search converged (exit 0)
	outcomeBestSoFar  = "best_so_far" // the budget ran out; the chosen model meets the requirements, a smaller one may too (exit 0)
	outcomeNoAnswer   = "no_answer"   // the budget ran out before any model met the requirements (exit 4)
	outcomeInfeasible = "infeasible"  // no model meets the requirements (exit 3)
	outcomeNoDecision = "no_decision" // the pipeline has no deciding stage (exit 0)
	outcomeFailed     = "failed"
	outcomeCanceled   = "canceled"
	outcomeInvalid    = "invalid"
)

// print writes the result line of a run that ended with err.
func (r *runResult) print(w io.Writer, err error) {
	m := r.run.Manifest()
	line := resultLine{Type: "result", RunID: m.RunID, Status: m.Status, Decision: r.decision, ExitCode: exitOK}
	var ee *exitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		line.ExitCode = ee.code
		if ee.err != nil {
			line.Error = ee.err.Error()
		}
	default:
		line.ExitCode, line.Error = exitFailed, err.Error()
	}
	switch {
	case r.decision != nil && line.Error == "":
		line.Outcome = r.decision.outcome()
	case line.ExitCode == exitOK:
		line.Outcome = outcomeNoDecision
	case line.ExitCode == exitInvalid:
		line.Outcome = outcomeInvalid
	case line.ExitCode > 128:
		line.Outcome = outcomeCanceled
	default:
		line.Outcome = outcomeFailed
	}
	_ = json.NewEncoder(w).Encode(line)
}

// runDecision is how a run's search ended: the last row of its deciding
// stage's decision port, with the loop's own stop (max_rounds) when the
// loop ended it.
type runDecision struct {
	Stage        string `json:"stage"`
	Status       string `json:"status"`
	Rounds       int    `json:"rounds,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Chosen       string `json:"chosen,omitempty"`
	ChosenName   string `json:"chosen_name,omitempty"`
	ChosenParams *int64 `json:"chosen_params,omitempty"`
}

// outcome reads the decision's status: a search stopped by its budget
// (budget_exhausted, or a loop stopped at max_rounds) has an answer when
// it chose a model, which meets the requirements. A status of a deciding
// stage's own counts as an answer.
func (d *runDecision) outcome() string {
	switch d.Status {
	case tables.DecisionConverged:
		return outcomeConverged
	case tables.DecisionInfeasible:
		return outcomeInfeasible
	case tables.DecisionBudgetExhausted, decisionMaxRounds, tables.DecisionContinue:
		if d.Chosen != "" {
			return outcomeBestSoFar
		}
		return outcomeNoAnswer
	}
	return d.Status
}

// exitCode is the exit code of a run that reached d.
func (d *runDecision) exitCode() int {
	if d == nil {
		return exitOK
	}
	switch d.outcome() {
	case outcomeInfeasible:
		return exitInfeasible
	case outcomeNoAnswer:
		return exitNoAnswer
	}
	return exitOK
}

// readRunDecision reads the decision of a finished run: the loop's
// deciding stage's, or else the last stage whose kind declares a decision
// port (a resize stage without loop_to). Nil when the pipeline has none.
func readRunDecision(run *runstore.Run, m *runstore.Manifest, p *config.Pipeline) (*runDecision, error) {
	var st *config.Stage
	for _, s := range p.Stages {
		if s.Spec == nil || s.Spec.Loop == nil || s.Spec.Loop.DecisionPort == "" {
			continue
		}
		if st == nil || m.Decision == nil || s.Addr == m.Decision.Stage {
			st = s
		}
		if m.Decision != nil && s.Addr == m.Decision.Stage {
			break
		}
	}
	if st == nil {
		return nil, nil
	}
	d := &runDecision{Stage: st.Addr}
	var file *runstore.OutputFile
	for _, rec := range m.Stages {
		if rec.Addr != st.Addr {
			continue
		}
		for i, f := range rec.Outputs {
			if f.Port == st.Spec.Loop.DecisionPort && (file == nil || f.Round >= file.Round) {
				file = &rec.Outputs[i]
			}
		}
	}
	if file != nil {
		if err := d.readLastRow(run.Path(file.Path)); err != nil {
			return nil, fmt.Errorf("stage %s, port %s: %w", st.Addr, file.Port, err)
		}
		d.Rounds = file.Round
	}
	if md := m.Decision; md != nil && md.Stage == st.Addr {
		d.Status, d.Reason, d.Rounds = md.Status, md.Reason, md.Rounds
		if d.Chosen == "" {
			d.Chosen, d.ChosenName = md.Chosen, md.ChosenName
		}
	}
	if d.Status == "" {
		return nil, nil // the stage did not run (a pipeline stopped before it)
	}
	return d, nil
}

// readLastRow reads the decision columns of the last row of a decision
// file.
func (d *runDecision) readLastRow(path string) error {
	rd, err := runstore.OpenFiles([]string{path}, nil)
	if err != nil {
		return err
	}
	defer rd.Release()
	for rd.Next() {
		b := rd.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		row := int(b.NumRows()) - 1
		str := func(name string) string {
			if idx := b.Schema().FieldIndices(name); len(idx) > 0 {
				if c, ok := b.Column(idx[0]).(*array.String); ok && c.IsValid(row) {
					return c.Value(row)
				}
			}
			return ""
		}
		d.Status, d.Reason = str(tables.ColStatus), str(tables.ColReason)
		d.Chosen, d.ChosenName = str(tables.ColChosenCandidateID), str(tables.ColChosenName)
		d.ChosenParams = nil
		if idx := b.Schema().FieldIndices(tables.ColChosenParams); len(idx) > 0 {
			if c, ok := b.Column(idx[0]).(*array.Int64); ok && c.IsValid(row) {
				v := c.Value(row)
				d.ChosenParams = &v
			}
		}
	}
	return rd.Err()
}
