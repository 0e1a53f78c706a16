package temporal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/sweetspot-ml/sweetspot/pipeline/blobstore"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// StageRequest runs one execution of a stage (activity RunStage), or one
// trial of it (in a TrialRequest).
type StageRequest struct {
	RunID  string             `json:"run_id"`
	Stage  StagePlan          `json:"stage"`
	Round  int                `json:"round"`
	Inputs []runner.PortFiles `json:"inputs"`
	// Parent is the span the stage's span goes under: the round's, or the
	// run's.
	Parent SpanRef `json:"parent"`
}

// StageResponse is a finished execution: its files and where it ran.
type StageResponse struct {
	Files   []runstore.OutputFile `json:"files"`
	Worker  string                `json:"worker"`
	Attempt int                   `json:"attempt"`
	Pid     int                   `json:"pid"`
	Took    time.Duration         `json:"took_ns"`
	Note    string                `json:"note,omitempty"`
	// PeakRSS is the plugin process's peak resident memory, in bytes.
	PeakRSS int64 `json:"peak_rss_bytes,omitempty"`
}

// SplitRequest splits a stage's primary input into the inputs of its
// trial activities.
type SplitRequest struct {
	RunID string                `json:"run_id"`
	Stage string                `json:"stage"`
	Round int                   `json:"round"`
	Files []runstore.OutputFile `json:"files"`
	// MaxActivities bounds the trial activities: past it, each gets
	// several consecutive rows.
	MaxActivities int `json:"max_activities"`
}

// SplitResponse lists one input file per trial activity, in row order.
type SplitResponse struct {
	Trials []runstore.OutputFile `json:"trials"`
	Rows   int64                 `json:"rows"`
}

// TrialRequest runs a stage on one trial's input: Stage.Inputs' primary
// port holds that trial's file only.
type TrialRequest struct {
	Stage StageRequest `json:"stage"`
	Index int          `json:"index"`
}

// GatherRequest concatenates the trials' outputs, in trial order, into
// the stage's outputs.
type GatherRequest struct {
	RunID   string                     `json:"run_id"`
	Stage   string                     `json:"stage"`
	Round   int                        `json:"round"`
	Outputs []describe.PortDescription `json:"outputs"`
	Trials  [][]runstore.OutputFile    `json:"trials"`
}

// DecisionRequest reads a loop's decision.
type DecisionRequest struct {
	RunID string              `json:"run_id"`
	Stage string              `json:"stage"`
	Port  string              `json:"port"`
	File  runstore.OutputFile `json:"file"`
}

// Launcher is what a worker starts plugins with: runner.Launcher, closed
// when the worker stops.
type Launcher interface {
	runner.Launcher
	Close()
}

// Activities are a worker's activities. The zero value is not usable: set
// Root, Identity and NewLauncher.
type Activities struct {
	// Root is the run store root as this worker reaches it: the storage
	// every worker and the client share, or, with Storage set, this
	// worker's own cache of the bucket's files.
	Root string
	// Storage, when set, is the bucket through which workers exchange
	// files: outputs are uploaded once written, inputs downloaded into
	// Root (sha256-checked) before use.
	Storage *blobstore.Store
	// Identity names the worker in the manifest and in spans.
	Identity string
	// NewLauncher returns the plugin launcher for one run; plugin spans go
	// to traceDir. The built-in plugin is the worker's own executable.
	NewLauncher func(traceDir string) (Launcher, error)
	Mem         memory.Allocator
	Logger      hclog.Logger
	// Spans, when set, receives the routing of each run's trace to its
	// run directory.
	Spans *RunSpanFiles

	mu        sync.Mutex
	launchers map[string]Launcher
}

// Close stops every plugin process the activities started.
func (a *Activities) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, l := range a.launchers {
		l.Close()
		delete(a.launchers, id)
	}
}

func (a *Activities) logger() hclog.Logger {
	if a.Logger == nil {
		return hclog.NewNullLogger()
	}
	return a.Logger
}

func (a *Activities) mem() memory.Allocator {
	if a.Mem == nil {
		return memory.DefaultAllocator
	}
	return a.Mem
}

func (a *Activities) runDir(runID string) (string, error) {
	if runID == "" || runID != filepath.Base(runID) || strings.HasPrefix(runID, ".") {
		return "", temporal.NewNonRetryableApplicationError(fmt.Sprintf("invalid run id %q", runID), "invalid_request", nil)
	}
	dir := filepath.Join(a.Root, runID)
	if a.Storage != nil {
		// Files come from the bucket: the run directory is this
		// worker's cache, made on first use.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("cache directory of run %s: %w", runID, err)
		}
		return dir, nil
	}
	if _, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil {
		// The run directory is created by the client before the
		// workflow starts: a worker that does not see it does not share
		// the client's storage, and another worker may.
		return "", fmt.Errorf("run %s is not in this worker's run store %s (workers and client must share it): %w", runID, a.Root, err)
	}
	return dir, nil
}

// launcher returns the run's plugin launcher, started on first use.
func (a *Activities) launcher(runID, runDir string) (Launcher, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.launchers[runID]; ok {
		return l, nil
	}
	l, err := a.NewLauncher(filepath.Join(runDir, "spans", "worker-"+fileSafe(a.Identity)))
	if err != nil {
		return nil, err
	}
	if a.launchers == nil {
		a.launchers = map[string]Launcher{}
	}
	a.launchers[runID] = l
	return l, nil
}

// RunStage runs one execution of a stage in a plugin process started for
// it, and heartbeats its progress.
func (a *Activities) RunStage(ctx context.Context, req StageRequest) (*StageResponse, error) {
	outDir := "" // the stage's own place
	return a.run(ctx, req, outDir, "stage "+req.Stage.Addr, nil)
}

// RunTrial runs one trial of a fanned-out stage. Each attempt writes to
// its own directory, so a worker presumed dead that finishes late cannot
// overwrite what the accepted attempt recorded.
func (a *Activities) RunTrial(ctx context.Context, req TrialRequest) (*StageResponse, error) {
	attempt := activity.GetInfo(ctx).Attempt
	outDir := filepath.Join(trialDir(req.Stage.Stage.Addr, req.Stage.Round, req.Index), fmt.Sprintf("attempt-%d", attempt))
	return a.run(ctx, req.Stage, outDir, fmt.Sprintf("trial task %d", req.Index), []attribute.KeyValue{attribute.Int("trial", req.Index)})
}

// trialDir is where one trial activity's files live, relative to the run
// directory.
func trialDir(stage string, round, index int) string {
	return filepath.Join(filepath.Dir(runstore.OutputRel(stage, round, "x")), "trials", fmt.Sprintf("%05d", index))
}

func (a *Activities) run(ctx context.Context, req StageRequest, outDir, spanName string, extra []attribute.KeyValue) (*StageResponse, error) {
	started := time.Now()
	info := activity.GetInfo(ctx)
	st := req.Stage
	runDir, err := a.runDir(req.RunID)
	if err != nil {
		return nil, err
	}
	a.Spans.route(req.Parent.TraceID, req.RunID)
	cfg, err := stagerpc.DecodeConfig(st.Config, st.ConfigType)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("stage %s: %v", st.Addr, err), "invalid_request", nil)
	}
	launcher, err := a.launcher(req.RunID, runDir)
	if err != nil {
		return nil, err
	}
	for _, in := range req.Inputs {
		if err := a.fetch(ctx, runDir, in.Files...); err != nil {
			return nil, err
		}
	}
	task := &runner.StageTask{
		RunID: req.RunID, RunDir: runDir,
		Stage: st.Addr, Kind: st.Kind, Plugin: st.Plugin, Round: req.Round,
		Config: cfg, Inputs: req.Inputs, Outputs: st.Outputs, OutputDir: outDir,
		// Files written on another machine are checked before use (fetch
		// has checked those from a bucket).
		VerifyInputs: a.Storage == nil,
		Timeout:      st.Timeout,
		PassEnv:      st.PassEnv,
		MemoryLimit:  st.MemoryLimit,
		PluginHashes: st.PluginHashes,
		LockFile:     st.LockFile,
	}
	var rowsIn, bytesIn int64
	for _, in := range req.Inputs {
		for _, f := range in.Files {
			rowsIn += f.Rows
			bytesIn += f.Bytes
		}
	}
	// The span continues the run's trace under the workflow's round (or
	// run) span; the Temporal interceptor's activity span is linked.
	sctx, span := tracer().Start(withParent(ctx, req.Parent), spanName, trace.WithLinks(trace.LinkFromContext(ctx)),
		trace.WithAttributes(append([]attribute.KeyValue{
			attribute.String("stage", st.Addr),
			attribute.String("kind", st.Kind),
			attribute.String("plugin", st.Plugin),
			attribute.String("plugin_version", st.PluginVersion),
			attribute.Int("round", req.Round),
			attribute.Bool("cache_hit", false),
			attribute.String("worker", a.Identity),
			attribute.Int("attempt", int(info.Attempt)),
			attribute.Int64("rows_in", rowsIn),
			attribute.Int64("bytes_in", bytesIn),
		}, extra...)...))
	defer span.End()

	hb := startHeartbeat(ctx, info.HeartbeatTimeout)
	defer hb.stop()
	exec := &runner.HostExecutor{Launcher: launcher, Mem: a.mem(), Logger: a.logger()}
	out, err := exec.RunStage(sctx, task, hb.progress)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, activityError(err)
	}
	var rowsOut, bytesOut int64
	for _, f := range out.Files {
		rowsOut += f.Rows
		bytesOut += f.Bytes
	}
	span.SetAttributes(attribute.Int("pid", out.Pid), attribute.Int64("rows_out", rowsOut), attribute.Int64("bytes_out", bytesOut))
	if err := a.publish(ctx, req.RunID, runDir, out.Files); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return nil, err
	}
	return &StageResponse{Files: out.Files, Worker: a.Identity, Attempt: int(info.Attempt), Pid: out.Pid, Took: time.Since(started), Note: out.Note, PeakRSS: out.PeakRSS}, nil
}

// activityError tells Temporal whether trying again can help: a plugin
// that crashed or asked to be retried, a file that could not be read, yes;
// a stage that rejected its config or input, ran past its timeout or its
// memory_limit, or wrote to stdout, no.
func activityError(err error) error {
	msg := err.Error()
	var re *pluginhost.RunError
	if errors.As(err, &re) {
		switch re.Kind {
		case pluginhost.KindCrashed, pluginhost.KindCanceled:
			return temporal.NewApplicationError(msg, "plugin_"+strings.ReplaceAll(re.Kind.String(), " ", "_"))
		case pluginhost.KindRetryAfter:
			return temporal.NewApplicationErrorWithOptions(msg, "retry_after", temporal.ApplicationErrorOptions{NextRetryDelay: re.RetryAfter})
		default:
			return temporal.NewNonRetryableApplicationError(msg, "stage_"+strings.ReplaceAll(re.Kind.String(), " ", "_"), nil)
		}
	}
	var te *runner.TimeoutError
	if errors.As(err, &te) {
		return temporal.NewNonRetryableApplicationError(msg, "stage_timeout", nil)
	}
	var mle *pluginhost.MemoryLimitError
	if errors.As(err, &mle) {
		return temporal.NewNonRetryableApplicationError(msg, "stage_memory_limit", nil)
	}
	var soe *pluginhost.StdoutError
	if errors.As(err, &soe) {
		return temporal.NewNonRetryableApplicationError(msg, "stage_stdout", nil)
	}
	var diags sdk.Diagnostics
	if errors.As(err, &diags) {
		return temporal.NewNonRetryableApplicationError(msg, "stage_config", nil)
	}
	return temporal.NewApplicationError(msg, "stage_io")
}

// heartbeat reports an activity's latest progress to Temporal often enough
// that a worker that stops reporting is known dead within the heartbeat
// timeout, and its activity given to another worker.
type heartbeat struct {
	mu     sync.Mutex
	last   *sdk.Progress
	cancel context.CancelFunc
	done   chan struct{}
}

func startHeartbeat(ctx context.Context, timeout time.Duration) *heartbeat {
	every := timeout / 3
	if every <= 0 || every > 10*time.Second {
		every = 10 * time.Second
	}
	every = max(every, 100*time.Millisecond)
	hctx, cancel := context.WithCancel(ctx)
	h := &heartbeat{cancel: cancel, done: make(chan struct{})}
	activity.RecordHeartbeat(ctx)
	go func() {
		defer close(h.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-hctx.Done():
				return
			case <-t.C:
				h.mu.Lock()
				last := h.last
				h.mu.Unlock()
				if last != nil {
					activity.RecordHeartbeat(ctx, *last)
				} else {
					activity.RecordHeartbeat(ctx)
				}
			}
		}
	}()
	return h
}

func (h *heartbeat) progress(p sdk.Progress) {
	h.mu.Lock()
	h.last = &p
	h.mu.Unlock()
}

func (h *heartbeat) stop() {
	h.cancel()
	<-h.done
}

// SplitTrials writes a stage's primary input as one Arrow file per trial
// activity (one row each, or a few consecutive rows when there are more
// rows than MaxActivities). Splitting again writes the same files.
func (a *Activities) SplitTrials(ctx context.Context, req SplitRequest) (*SplitResponse, error) {
	runDir, err := a.runDir(req.RunID)
	if err != nil {
		return nil, err
	}
	hb := startHeartbeat(ctx, activity.GetInfo(ctx).HeartbeatTimeout)
	defer hb.stop()
	mem := a.mem()
	if err := a.fetch(ctx, runDir, req.Files...); err != nil {
		return nil, err
	}
	paths := make([]string, len(req.Files))
	var rows int64
	for i, f := range req.Files {
		paths[i] = filepath.Join(runDir, f.Path)
		if a.Storage == nil {
			if err := runner.VerifyFile(paths[i], f); err != nil {
				return nil, activityError(err)
			}
		}
		rows += f.Rows
	}
	per := int64(1)
	if limit := int64(max(req.MaxActivities, 1)); rows > limit {
		per = (rows + limit - 1) / limit
	}
	rd, err := runstore.OpenFiles(paths, mem)
	if err != nil {
		return nil, activityError(err)
	}
	defer rd.Release()

	resp := &SplitResponse{Rows: rows}
	var w *runstore.PortWriter
	var inChunk int64
	commit := func() error {
		n, size, sum, err := w.Commit()
		if err != nil {
			return err
		}
		idx := len(resp.Trials)
		resp.Trials = append(resp.Trials, runstore.OutputFile{
			Port: sdk.PrimaryInput, Round: req.Round, Path: filepath.Join(trialDir(req.Stage, req.Round, idx), "input.arrow"),
			Rows: n, Bytes: size, SHA256: sum,
		})
		w, inChunk = nil, 0
		return nil
	}
	defer func() {
		if w != nil {
			w.Abort()
		}
	}()
	for rd.Next() {
		b := rd.RecordBatch()
		for off := int64(0); off < b.NumRows(); {
			if w == nil {
				idx := len(resp.Trials)
				w = runstore.NewPortWriter(filepath.Join(runDir, trialDir(req.Stage, req.Round, idx), "input.arrow"), b.Schema(), mem)
			}
			n := min(per-inChunk, b.NumRows()-off)
			slice := b.NewSlice(off, off+n)
			err := w.Write(slice)
			slice.Release()
			if err != nil {
				return nil, activityError(err)
			}
			off += n
			inChunk += n
			if inChunk == per {
				if err := commit(); err != nil {
					return nil, activityError(err)
				}
			}
		}
	}
	if err := rd.Err(); err != nil {
		return nil, activityError(err)
	}
	if w != nil {
		if err := commit(); err != nil {
			return nil, activityError(err)
		}
	}
	if err := a.publish(ctx, req.RunID, runDir, resp.Trials); err != nil {
		return nil, err
	}
	return resp, nil
}

// GatherTrials concatenates the trials' outputs, in trial order, into the
// stage's output files, checking each trial file's sha256.
func (a *Activities) GatherTrials(ctx context.Context, req GatherRequest) ([]runstore.OutputFile, error) {
	runDir, err := a.runDir(req.RunID)
	if err != nil {
		return nil, err
	}
	hb := startHeartbeat(ctx, activity.GetInfo(ctx).HeartbeatTimeout)
	defer hb.stop()
	mem := a.mem()
	for _, files := range req.Trials {
		for _, f := range files {
			if f.Rows == 0 {
				continue // an empty trial file is not read
			}
			if err := a.fetch(ctx, runDir, f); err != nil {
				return nil, err
			}
		}
	}
	var out []runstore.OutputFile
	for pi, port := range req.Outputs {
		f, err := gatherPort(runDir, req, pi, port, mem)
		if err != nil {
			return nil, activityError(err)
		}
		out = append(out, f)
	}
	if err := a.publish(ctx, req.RunID, runDir, out); err != nil {
		return nil, err
	}
	return out, nil
}

func gatherPort(runDir string, req GatherRequest, pi int, port describe.PortDescription, mem memory.Allocator) (runstore.OutputFile, error) {
	var declared *arrow.Schema
	if len(port.ArrowSchema) > 0 {
		s, err := port.PortSchema()
		if err != nil {
			return runstore.OutputFile{}, fmt.Errorf("declared schema of port %s: %w", port.Name, err)
		}
		declared = s
	}
	rel := runstore.OutputRel(req.Stage, req.Round, port.Name)
	w := runstore.NewPortWriter(filepath.Join(runDir, rel), declared, mem)
	defer w.Abort()
	for ti, files := range req.Trials {
		if pi >= len(files) || files[pi].Port != port.Name {
			return runstore.OutputFile{}, fmt.Errorf("trial %d has no file for port %s", ti, port.Name)
		}
		f := files[pi]
		if f.Rows == 0 {
			continue
		}
		path := filepath.Join(runDir, f.Path)
		if err := runner.VerifyFile(path, f); err != nil {
			return runstore.OutputFile{}, err
		}
		rd, err := runstore.OpenFiles([]string{path}, mem)
		if err != nil {
			return runstore.OutputFile{}, err
		}
		for rd.Next() {
			if err := w.Write(rd.RecordBatch()); err != nil {
				rd.Release()
				return runstore.OutputFile{}, err
			}
		}
		err = rd.Err()
		rd.Release()
		if err != nil {
			return runstore.OutputFile{}, err
		}
	}
	rows, size, sum, err := w.Commit()
	if err != nil {
		return runstore.OutputFile{}, err
	}
	return runstore.OutputFile{Port: port.Name, Round: req.Round, Path: rel, Rows: rows, Bytes: size, SHA256: sum}, nil
}

// ReadDecision reads the last row of a loop decider's decision file.
func (a *Activities) ReadDecision(ctx context.Context, req DecisionRequest) (*runstore.Decision, error) {
	runDir, err := a.runDir(req.RunID)
	if err != nil {
		return nil, err
	}
	if err := a.fetch(ctx, runDir, req.File); err != nil {
		return nil, err
	}
	path := filepath.Join(runDir, req.File.Path)
	if err := runner.VerifyFile(path, req.File); err != nil {
		return nil, activityError(err)
	}
	d, err := runner.ReadDecision(req.Stage, req.Port, path, a.mem())
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("stage %s: read decision: %v", req.Stage, err), "stage_decision", nil)
	}
	return d, nil
}

// RecordSpan records a span whose id the workflow chose ahead (a round,
// a stage spread over trial activities) once it has ended.
func (a *Activities) RecordSpan(ctx context.Context, rec SpanRecord) error {
	a.Spans.route(rec.Span.TraceID, rec.RunID)
	rec.record(ctx)
	return nil
}

// workersOf lists the distinct workers of trials, sorted.
func workersOf(trials []runstore.TrialRecord) []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range trials {
		if !seen[t.Worker] {
			seen[t.Worker] = true
			out = append(out, t.Worker)
		}
	}
	sort.Strings(out)
	return out
}

// fetch makes files present and checked in runDir: with a bucket, each is
// downloaded (or found in the cache) and its sha256 checked; without one
// they are already there, in the shared directory.
func (a *Activities) fetch(ctx context.Context, runDir string, files ...runstore.OutputFile) error {
	for _, f := range files {
		if a.Storage == nil {
			if f.URI != "" {
				return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is in object storage (%s) but this worker has no --storage: start every worker with the client's --storage", f.Path, f.URI), "storage_mismatch", nil)
			}
			continue
		}
		if f.URI == "" {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s was written without object storage but this worker uses %s: start every worker with the client's --storage", f.Path, a.Storage.URL()), "storage_mismatch", nil)
		}
		key, ok := a.Storage.ObjectKey(f.URI)
		if !ok {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is not in this worker's storage %s: start every worker with the client's --storage", f.URI, a.Storage.URL()), "storage_mismatch", nil)
		}
		if _, err := a.Storage.Get(ctx, key, filepath.Join(runDir, f.Path), f.SHA256, f.Bytes); err != nil {
			if errors.Is(err, blobstore.ErrChecksum) {
				// The object itself is wrong: downloading it again
				// cannot help.
				return temporal.NewNonRetryableApplicationError(err.Error(), "storage_checksum", nil)
			}
			return temporal.NewApplicationError(err.Error(), "storage_io")
		}
	}
	return nil
}

// publish uploads files (just committed in runDir) to the bucket, if any,
// and records their URIs in the descriptors.
func (a *Activities) publish(ctx context.Context, runID, runDir string, files []runstore.OutputFile) error {
	if a.Storage == nil {
		return nil
	}
	for i := range files {
		uri, err := a.Storage.Put(ctx, objectKey(runID, files[i].Path), filepath.Join(runDir, files[i].Path))
		if err != nil {
			return temporal.NewApplicationError(err.Error(), "storage_io")
		}
		files[i].URI = uri
	}
	return nil
}

// objectKey is where a run's file lives in a bucket: the run directory's
// layout under the run id.
func objectKey(runID, rel string) string {
	return runID + "/" + filepath.ToSlash(rel)
}
