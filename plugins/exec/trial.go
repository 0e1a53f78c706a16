package exec

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// TracerName is the instrumentation scope of the trial spans.
const TracerName = "github.com/sweetspot-ml/sweetspot/plugins/exec"

const (
	// stderrTailBytes is how much of the end of a command's stderr a
	// trial keeps for its error and span.
	stderrTailBytes = 4 << 10
	// stdoutTailBytes is how much of its other stdout text a trial keeps,
	// to show when no metrics came.
	stdoutTailBytes = 1 << 10
	// maxLineBytes bounds one line of output; the rest of a longer line
	// is dropped (and a JSON line so cut is malformed).
	maxLineBytes = 1 << 20
	// maxLoggedLines bounds the lines of each stream a trial logs.
	maxLoggedLines = 200
)

// Files in a trial's working directory.
const (
	candidateFile   = "candidate.json"
	metricsFileName = "metrics.arrow"
)

// failedResult is a failed result of c with every measurement null.
func failedResult(c tables.Candidate) tables.Result {
	nan := math.NaN()
	return tables.Result{
		Candidate: c, Accuracy: nan, Loss: nan, LatencyP50Ms: nan, LatencyP95Ms: nan, ThroughputPerS: nan,
		ModelBytes: -1, PeakBytes: -1, Status: tables.StatusFailed, RMSE: nan, R2: nan,
		AccuracyBefore: nan, LossBefore: nan, RMSEBefore: nan, NonZeroParams: -1, ValLoss: nan, SettingScore: nan,
		Repeatable: true, // the next repeat runs with a seed of its own
	}
}

// trial runs the command for one candidate, and gives its models row
// when it ended ok with an artifact (nil otherwise). Its error is only
// ctx's: every other problem is the result's.
func (s *Stage) trial(ctx context.Context, c candidate, dir string, stageEnv map[string]string, tp *trialPruning) (tables.Result, *tables.Model, error) {
	r := failedResult(c.Candidate)
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName).Start(ctx, "trial "+c.label(), trace.WithAttributes(append(candidateAttributes(c, dir),
		attribute.Int64("seed", int64(s.trialSeed(c.Candidate))))...))
	defer span.End()
	if sc := span.SpanContext(); sc.HasTraceID() {
		r.TraceID = sc.TraceID().String()
	}
	log := sdk.Logger(ctx).With("candidate", c.Name)
	if c.ID != c.Name {
		log = log.With("candidate_id", c.ID)
	}
	if c.Repeat > 0 {
		log = log.With("repeat", c.Repeat)
	}
	fail := func(e error) (tables.Result, *tables.Model, error) {
		r.Status, r.Error = tables.StatusFailed, e.Error()
		span.RecordError(e)
		span.SetStatus(codes.Error, firstLine(r.Error))
		span.SetAttributes(attribute.String("status", r.Status), attribute.Int("epochs_run", int(r.EpochsRun)))
		log.Warn("trial failed", "error", r.Error)
		return r, nil, nil
	}

	if err := os.RemoveAll(dir); err != nil {
		return fail(fmt.Errorf("clear the trial's working directory: %w", err))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(fmt.Errorf("make the trial's working directory: %w", err))
	}
	stdin := filepath.Join(dir, candidateFile)
	if err := os.WriteFile(stdin, append(c.JSON(), '\n'), 0o644); err != nil {
		return fail(fmt.Errorf("write the candidate for the command: %w", err))
	}
	metricsFile := ""
	if s.output == OutputArrow {
		metricsFile = filepath.Join(dir, metricsFileName)
	}

	o := &outcome{jsonl: s.output == OutputJSONL, span: span, log: log,
		stderr: tail{max: stderrTailBytes}, stdout: tail{max: stdoutTailBytes}}
	env := s.environ(ctx, c, dir, metricsFile, stageEnv)
	if tp != nil {
		o.prune, o.graceOver = tp, make(chan struct{})
		env = append(env, "SWEETSPOT_CONTROL_FILE="+tp.control)
		// The pruner learns how the trial ended, whichever way it did,
		// unless the stage run was canceled under it.
		defer func() {
			if ctx.Err() == nil {
				tp.done(o.curve, r.Status == tables.StatusOK)
			}
		}()
	}
	err := s.run(ctx, o, dir, env, stdin)
	if o.graceTimer != nil {
		o.graceTimer.Stop()
	}
	if err != nil {
		span.SetStatus(codes.Error, "canceled")
		return r, nil, err
	}
	r.TrainSeconds, r.EpochsRun = o.wall.Seconds(), int32(min(o.epochs, math.MaxInt32))
	if t := o.stderr.String(); t != "" {
		span.SetAttributes(attribute.String("stderr_tail", t))
	}
	if o.state != nil {
		span.SetAttributes(attribute.Int("exit_code", o.state.ExitCode()))
	}
	withStderr := func(e error) error {
		if t := o.stderr.String(); t != "" {
			return fmt.Errorf("%w; stderr:\n%s", e, t)
		}
		return e
	}
	if o.pruneReason != "" {
		s.pruned(ctx, &r, o, metricsFile)
		span.SetAttributes(append(evaluation.ResultAttributes(r), attribute.Int64("params", r.Params))...)
		span.SetStatus(codes.Ok, "")
		log.Info("trial pruned", "reason", r.Error, "accuracy", r.Accuracy, "loss", r.Loss, "epochs_run", r.EpochsRun)
		return r, nil, nil
	}
	switch {
	case o.startErr != nil:
		return fail(fmt.Errorf("cannot start %s: %w", s.path, o.startErr))
	case o.timedOut:
		return fail(withStderr(fmt.Errorf("timed out after %s (trial_timeout); the command's process group was killed", s.timeout)))
	case !o.state.Success():
		return fail(withStderr(fmt.Errorf("the command failed: %s", o.state)))
	case o.parseErr != nil:
		return fail(withStderr(fmt.Errorf("malformed metrics: %w", o.parseErr)))
	}

	values, where := o.metrics, fmt.Sprintf("stdout line %d", o.metricsLine)
	if s.output == OutputArrow {
		where = metricsFileName
		if values, err = readMetricsFile(sdk.Allocator(ctx), metricsFile); err != nil {
			return fail(withStderr(fmt.Errorf("malformed metrics: %w", err)))
		}
	} else if values == nil {
		msg := `no metrics: the command wrote no JSON object without an "epoch" key on stdout`
		if o.epochObjects > 0 {
			msg += fmt.Sprintf(` (it wrote %d epoch line(s): end with an object of the final metrics)`, o.epochObjects)
		}
		if t := o.stdout.String(); t != "" {
			msg += "; its other stdout ended with:\n" + t
		}
		return fail(withStderr(errors.New(msg)))
	}
	m, err := decodeMetrics(values)
	if err != nil {
		return fail(withStderr(fmt.Errorf("malformed metrics (%s): %w", where, err)))
	}
	if s.search != nil {
		// The search's metric is read, not ignored.
		m.unknown = slices.DeleteFunc(m.unknown, func(k string) bool { return k == s.search.Metric })
		if r.SettingScore, err = s.searchScore(values); err != nil {
			return fail(withStderr(fmt.Errorf("malformed metrics (%s): %w", where, err)))
		}
	}
	if len(m.unknown) > 0 {
		log.Info("unknown metrics ignored", "keys", m.unknown)
		span.SetAttributes(attribute.StringSlice("ignored_metrics", m.unknown))
	}
	if _, ok := m.get("params"); !ok && c.Params == 0 {
		return fail(withStderr(errors.New(`no params: the candidate's params is 0, which leaves the count to the trainer, and the command reported none; report "params" (the trained model's parameter count) with the final metrics`)))
	}
	s.apply(&r, m, o)
	r.Status = tables.StatusOK
	var model *tables.Model
	if rel := cmp.Or(m.text[artifactKey], s.artifact); rel != "" {
		format, data, err := readArtifact(dir, rel, maxArtifactBytes)
		switch {
		case errors.Is(err, errArtifactTooLarge):
			log.Warn("artifact not kept: it is larger than a models row carries", "artifact", rel, "error", err)
			span.SetAttributes(attribute.String("artifact", rel), attribute.Bool("artifact_kept", false))
		case err != nil:
			return fail(fmt.Errorf("stage %s, trial %s: artifact %q: %w", cmp.Or(sdk.Info(ctx).Stage, Kind), c.label(), rel, err))
		default:
			mr := tables.NewModel(r, format, data)
			mr.Artifact = filepath.ToSlash(filepath.Clean(rel))
			model = &mr
			span.SetAttributes(attribute.String("artifact", mr.Artifact), attribute.String("artifact_format", format),
				attribute.Int("artifact_bytes", len(data)), attribute.String("artifact_digest", mr.Digest))
		}
	}
	attrs := append(evaluation.ResultAttributes(r), attribute.Int64("params", r.Params))
	if r.Params != c.Params {
		attrs = append(attrs, attribute.Int64("candidate_params", c.Params))
	}
	span.SetAttributes(attrs...)
	span.SetStatus(codes.Ok, "")
	log.Info("trial", "accuracy", r.Accuracy, "loss", r.Loss, "latency_p95_ms", r.LatencyP95Ms,
		"train_seconds", r.TrainSeconds, "epochs_run", r.EpochsRun)
	return r, model, nil
}

// pruned makes r the row of a trial its pruner stopped: status pruned, the
// reason as its error, and its last values: the final metrics, when the
// command wrote them after it was told to stop, else its last epoch line's.
// Whatever the command did after the answer (exit non-zero, be killed at
// the end of its grace), it was stopped, not broken.
func (s *Stage) pruned(ctx context.Context, r *tables.Result, o *outcome, metricsFile string) {
	values := o.metrics
	if values == nil && s.output == OutputArrow {
		values, _ = readMetricsFile(sdk.Allocator(ctx), metricsFile)
	}
	if values == nil {
		values = maps.Clone(o.lastEpoch)
		delete(values, "epoch")
	}
	m, err := decodeMetrics(values)
	if err != nil {
		o.log.Info("a pruned trial's last values are incomplete", "error", err)
	}
	s.apply(r, m, o)
	r.Status, r.StoppedBy = tables.StatusPruned, stoppedByPruner
	r.Error = o.pruneReason
	if o.graceKilled {
		r.Error += prunedNote(o.prune.Settings.Grace)
	}
}

// stoppedByPruner is a pruned trial's stopped_by.
const stoppedByPruner = "pruner"

// apply copies the reported metrics into r; measurements the command left
// out keep the stage's (wall time, epoch lines, peak RSS) or stay null.
func (s *Stage) apply(r *tables.Result, m metrics, o *outcome) {
	f := func(key string, dst *float64) {
		if v, ok := m.get(key); ok {
			*dst = v
		}
	}
	i64 := func(key string, dst *int64) {
		if v, ok := m.get(key); ok {
			*dst = int64(v)
		}
	}
	i32 := func(key string, dst *int32) {
		if v, ok := m.get(key); ok {
			*dst = int32(v)
		}
	}
	if o.peakRSS > 0 {
		r.PeakBytes = o.peakRSS
	}
	f("accuracy", &r.Accuracy)
	f("loss", &r.Loss)
	f("latency_p50_ms", &r.LatencyP50Ms)
	f("latency_p95_ms", &r.LatencyP95Ms)
	f("throughput_per_s", &r.ThroughputPerS)
	i64("model_bytes", &r.ModelBytes)
	i64("peak_bytes", &r.PeakBytes)
	i64("params", &r.Params)
	i64("flops", &r.FLOPs)
	f("train_seconds", &r.TrainSeconds)
	i32("epochs_run", &r.EpochsRun)
	f("rmse", &r.RMSE)
	f("r2", &r.R2)
	f("accuracy_before", &r.AccuracyBefore)
	f("loss_before", &r.LossBefore)
	f("rmse_before", &r.RMSEBefore)
	i64("nonzero_params", &r.NonZeroParams)
	f("val_loss", &r.ValLoss)
	i32("best_epoch", &r.BestEpoch)
	r.StoppedBy = m.text["stopped_by"]
}

// trialSeed is SWEETSPOT_SEED: the stage's seed mixed with the
// candidate's training settings and its repeat, as the evaluation stage
// mixes them for an MLP (evaluation.RepeatSeed: repeat 0's seed is the
// one a stage without repeats gives); for other kinds, whose depth, width
// and (often) params are 0, the kind, size and knobs too, so that two
// sizes of a family do not share a seed.
func (s *Stage) trialSeed(c tables.Candidate) uint64 {
	key := evaluation.TrainingKey(c, int(c.Epochs))
	if c.Kind != tables.KindMLP {
		key += fmt.Sprintf("|%s|s%g|%s", c.Kind, c.Size, c.Knobs)
	}
	return evaluation.RepeatSeed(s.seed, key, c.Repeat) % (1 << 31)
}

// candidateAttributes are a trial span's attributes before it runs: the
// evaluation stage's and the working directory.
func candidateAttributes(c candidate, dir string) []attribute.KeyValue {
	return append(evaluation.CandidateAttributes(c.Candidate), attribute.String("work_dir", dir))
}

// environ is the command's environment: the plugin's own (without
// go-plugin's variables and inherited SWEETSPOT_ ones), the env
// attribute, the derived seed, the candidate's columns and knobs, then
// the stage's variables, each later one winning.
func (s *Stage) environ(ctx context.Context, c candidate, dir, metricsFile string, stageEnv map[string]string) []string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SWEETSPOT_") || strings.HasPrefix(k, "PLUGIN_") || k == "TRACEPARENT" || k == "TRACESTATE" {
			continue
		}
		env[k] = v
	}
	maps.Copy(env, s.env)
	env["SWEETSPOT_SEED"] = strconv.FormatUint(s.trialSeed(c.Candidate), 10)
	c.env(env)
	maps.Copy(env, stageEnv)
	env["SWEETSPOT_CANDIDATE_JSON"] = string(c.JSON())
	env["SWEETSPOT_WORKDIR"] = dir
	if metricsFile != "" {
		env["SWEETSPOT_METRICS_FILE"] = metricsFile
	}
	// The trial's span context, for a trainer that traces its own work.
	carrier := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, carrier)
	for k, v := range carrier {
		env[strings.ToUpper(k)] = v
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// outcome is what running the command gave.
type outcome struct {
	jsonl bool
	span  trace.Span
	log   hclog.Logger

	startErr error
	state    *os.ProcessState
	timedOut bool
	wall     time.Duration
	peakRSS  int64

	// Written by the stdout reader only, read after it is done.
	lines        int
	metrics      map[string]any
	metricsLine  int
	parseErr     error
	epochs       int
	epochObjects int
	stdout       tail
	stdoutLogged int

	stderr       tail
	stderrLogged int

	// Pruning, when the stage has a pruner: written by the stdout
	// reader (and the grace timer), read after the command ended.
	prune       *trialPruning
	lastEpoch   map[string]any
	curve       [][2]float64
	pruneReason string
	graceTimer  *time.Timer
	graceOver   chan struct{} // closed when a pruned command's grace ends
	graceOnce   sync.Once
	graceKilled bool
}

// run runs the command to its end, its timeout, or ctx's end, and kills
// its process group whichever comes first. Its error is only ctx's.
func (s *Stage) run(ctx context.Context, o *outcome, dir string, env []string, stdinPath string) error {
	tctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	stdin, err := os.Open(stdinPath)
	if err != nil {
		o.startErr = err
		return nil
	}
	defer stdin.Close()
	// Pipes the stage owns, rather than exec's copying goroutines: Wait
	// then waits for the command alone, and a child that keeps stdout
	// open cannot hold the trial once its group is killed.
	outR, outW, err := os.Pipe()
	if err != nil {
		o.startErr = err
		return nil
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		o.startErr = err
		return nil
	}
	defer errR.Close()
	cmd := &osexec.Cmd{Path: s.path, Args: s.argv, Dir: dir, Env: env, Stdin: stdin, Stdout: outW, Stderr: errW}
	procs := newTrialProcesses(cmd)
	if err := ctx.Err(); err != nil {
		outW.Close()
		errW.Close()
		return err
	}
	start := time.Now()
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		o.startErr = err
		return nil
	}
	var wg sync.WaitGroup
	wg.Go(func() { readLines(outR, o.onStdout) })
	wg.Go(func() { readLines(errR, o.onStderr) })
	waited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait() // when the command ran, its error is ProcessState's
		close(waited)
	}()
	killed := false
	select {
	case <-waited:
	case <-tctx.Done():
		procs.kill()
		killed = true
		<-waited
	case <-o.graceOver: // nil without a pruner
		procs.kill()
		o.graceKilled = true
		<-waited
	}
	o.wall = time.Since(start)
	// Whatever the command left running goes with it.
	procs.end()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if o.state = cmd.ProcessState; o.state == nil {
		o.startErr = waitErr
		return nil
	}
	o.peakRSS = peakRSS(o.state)
	o.timedOut = killed && !o.state.Exited()
	return nil
}

func (o *outcome) onStdout(line []byte, cut bool) {
	o.lines++
	kind, obj, err := parseLine(line)
	if cut && kind != lineText {
		err = fmt.Errorf("the line is longer than %d bytes", maxLineBytes)
	}
	if err != nil {
		if o.jsonl {
			if o.parseErr == nil {
				o.parseErr = fmt.Errorf("stdout line %d: %w", o.lines, err)
			}
			return
		}
		kind = lineText
	}
	switch kind {
	case lineEpoch:
		o.epochObjects++
		attrs, err := epochAttributes(obj)
		if err != nil {
			if o.jsonl && o.parseErr == nil {
				o.parseErr = fmt.Errorf("stdout line %d: %w", o.lines, err)
			}
			return
		}
		o.epochs++
		o.span.AddEvent("epoch", trace.WithAttributes(attrs...))
		o.lastEpoch = obj
		if o.prune != nil {
			o.judge(obj)
		}
	case lineMetrics:
		if o.jsonl {
			o.metrics, o.metricsLine = obj, o.lines
			return
		}
		fallthrough
	default:
		o.stdout.add(line)
		if o.stdoutLogged < maxLoggedLines {
			o.stdoutLogged++
			o.log.Info("trial stdout", "line", string(line))
		}
	}
}

func (o *outcome) onStderr(line []byte, _ bool) {
	o.stderr.add(line)
	if o.stderrLogged < maxLoggedLines {
		o.stderrLogged++
		o.log.Info("trial stderr", "line", string(line))
	}
}

// readLines calls f with each line of r (without its line ending), cut to
// maxLineBytes, until r ends.
func readLines(r io.Reader, f func(line []byte, cut bool)) {
	br := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	cut := false
	for {
		chunk, err := br.ReadSlice('\n')
		if room := maxLineBytes - len(buf); len(chunk) > room {
			buf = append(buf, chunk[:room]...)
			cut = true
		} else {
			buf = append(buf, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(buf) > 0 {
			f(bytes.TrimRight(buf, "\r\n"), cut)
		}
		buf, cut = buf[:0], false
		if err != nil {
			return
		}
	}
}

// tail keeps the last max bytes of the lines added to it.
type tail struct {
	b   []byte
	max int
	cut bool
}

func (t *tail) add(line []byte) {
	t.b = append(t.b, line...)
	t.b = append(t.b, '\n')
	if over := len(t.b) - t.max; over > 0 {
		for over < len(t.b) && !utf8.RuneStart(t.b[over]) {
			over++
		}
		t.b = t.b[:copy(t.b, t.b[over:])]
		t.cut = true
	}
}

func (t *tail) String() string {
	s := strings.TrimRight(string(t.b), "\n")
	if t.cut && s != "" {
		return "…" + s
	}
	return s
}
