package runner_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

var pluginDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sweetspot-runner-test")
	if err != nil {
		panic(err)
	}
	pluginDir = dir
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "sweetspot-plugin-testkit"), "../../internal/testkit")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build testkit plugin: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness runs one pipeline source end to end with real plugin processes.
type harness struct {
	t      *testing.T
	run    *runstore.Run
	spans  *tracetest.SpanRecorder
	mem    *memory.CheckedAllocator
	events []runner.Event
}

func runPipeline(t *testing.T, ctx context.Context, src string) (*harness, error) {
	t.Helper()
	return runPipelineWith(t, ctx, src, nil)
}

// runPipelineWith is runPipeline with the runner's settings changed by set.
func runPipelineWith(t *testing.T, ctx context.Context, src string, set func(*runner.Runner)) (*harness, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	catalog, err := pluginhost.New(pluginhost.WithSearchPaths(pluginDir))
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close()
	p, diags := config.Load([]string{path}, catalog)
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	store := runstore.Open(filepath.Join(dir, "runs"))
	run, err := store.Create(runstore.Manifest{Pipeline: p.Paths, PipelineHash: p.Hash, StartedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}

	h := &harness{t: t, run: run, spans: tracetest.NewSpanRecorder(), mem: memory.NewCheckedAllocator(memory.NewGoAllocator())}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	host, err := pluginhost.New(pluginhost.WithSearchPaths(pluginDir), pluginhost.WithTraceDir(run.Path("spans")))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner.Runner{Launcher: host, Mem: h.mem, Events: func(e runner.Event) { h.events = append(h.events, e) }}
	if set != nil {
		set(r)
	}
	err = r.Execute(ctx, run, p, p.Graph)
	host.Close()
	h.mem.AssertSize(t, 0)
	return h, err
}

func (h *harness) manifest() runstore.Manifest { return h.run.Manifest() }

// assertProcessesGone checks that no plugin process of the run survives.
func (h *harness) assertProcessesGone() {
	h.t.Helper()
	for _, s := range h.manifest().Stages {
		if s.Pid == 0 {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(s.Pid, 0) == nil {
			if time.Now().After(deadline) {
				h.t.Errorf("plugin process %d of stage %s is still running", s.Pid, s.Addr)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (h *harness) readInt64s(stage string, round int, port, column string) []int64 {
	h.t.Helper()
	rd, err := runstore.OpenFiles([]string{h.run.Path(runstore.OutputRel(stage, round, port))}, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rd.Release()
	var out []int64
	for rd.Next() {
		b := rd.RecordBatch()
		idx := b.Schema().FieldIndices(column)
		if len(idx) == 0 {
			h.t.Fatalf("%s %s has no column %s", stage, port, column)
		}
		out = append(out, b.Column(idx[0]).(*array.Int64).Int64Values()...)
	}
	if rd.Err() != nil {
		h.t.Fatal(rd.Err())
	}
	return out
}

const loopPipeline = `
stage "emit" "src" {
  rows = 5
}
stage "double" "d" {
  input = stage.emit.src
}
stage "counter" "c" {
  input       = stage.double.d
  loop_to     = stage.double.d
  max_rounds  = %d
  target_rows = %d
  step        = 5
}
`

func TestLoopRunsUntilTheDeciderConverges(t *testing.T) {
	h, err := runPipeline(t, context.Background(), sprintf(loopPipeline, 10, 12))
	if err != nil {
		t.Fatal(err)
	}
	m := h.manifest()
	if m.Decision == nil || m.Decision.Status != "converged" || m.Decision.Rounds != 3 {
		t.Fatalf("decision = %+v, want converged after 3 rounds", m.Decision)
	}
	// Round 2 of the looped stage ran on the decider's proposals (i = 5..9).
	if got := h.readInt64s("double.d", 2, "table", "id"); !equalInts(got, []int64{5, 6, 7, 8, 9}) {
		t.Errorf("double.d round 2 rows i = %v, want 5..9", got)
	}
	// The decider saw every round so far: 15 rows in round 3.
	if m.Decision.Chosen != "rows-15" {
		t.Errorf("decider saw %q, want rows-15", m.Decision.Chosen)
	}
	pids := map[int]string{}
	for _, s := range m.Stages {
		if s.Pid == 0 || s.Pid == os.Getpid() {
			t.Errorf("stage %s has pid %d: not its own process", s.Addr, s.Pid)
		}
		if other, dup := pids[s.Pid]; dup {
			t.Errorf("stages %s and %s share pid %d", other, s.Addr, s.Pid)
		}
		pids[s.Pid] = s.Addr
		if s.Status != runstore.StatusSucceeded {
			t.Errorf("stage %s status %s", s.Addr, s.Status)
		}
	}
	h.assertProcessesGone()
}

func TestLoopStopsAtMaxRounds(t *testing.T) {
	h, err := runPipeline(t, context.Background(), sprintf(loopPipeline, 2, 1000))
	if err != nil {
		t.Fatal(err)
	}
	d := h.manifest().Decision
	if d == nil || d.Status != "max_rounds" || d.Rounds != 2 {
		t.Fatalf("decision = %+v, want max_rounds after 2", d)
	}
}

func TestCrashedPluginFailsTheRunAndKeepsFinishedOutputs(t *testing.T) {
	h, err := runPipeline(t, context.Background(), `
stage "emit" "ok" {
  plugin = "testkit"
  rows = 3
}
stage "crash" "boom" {
  plugin = "testkit"
}
stage "double" "after" {
  plugin = "testkit"
  input = stage.emit.ok
}
`)
	if err == nil {
		t.Fatal("run with a crashing plugin succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"crash.boom", "testkit", "exit"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "rpc error") {
		t.Errorf("error leaks gRPC internals: %q", msg)
	}
	m := h.manifest()
	if m.Status != runstore.StatusFailed {
		t.Errorf("run status %s, want failed", m.Status)
	}
	// The crash takes nothing else down: both other stages finish.
	for _, s := range m.Stages {
		if s.Addr != "crash.boom" && s.Status != runstore.StatusSucceeded {
			t.Errorf("stage %s is %s (%s): a failure elsewhere stopped it", s.Addr, s.Status, s.Error)
		}
	}
	if got := h.readInt64s("double.after", 0, "table", "id"); len(got) != 3 {
		t.Errorf("double.after wrote %v, want 3 rows", got)
	}
	h.assertProcessesGone()
}

// A failed stage fails only what depends on it, transitively: those
// stages are skipped, naming it, while independent ones run to the end;
// the run still fails and reports every failure.
func TestFailureSkipsOnlyItsDependents(t *testing.T) {
	h, err := runPipeline(t, context.Background(), `
stage "emit" "a" {
  plugin = "testkit"
  rows   = 3
}
stage "passthrough" "b" {
  plugin = "testkit"
  input  = stage.emit.a.table
}
stage "passthrough" "c" {
  plugin = "testkit"
  input  = stage.passthrough.b.output
}
stage "crash" "boom" {
  plugin = "testkit"
}
stage "passthrough" "d" {
  plugin = "testkit"
  input  = stage.crash.boom.table
}
stage "passthrough" "e" {
  plugin = "testkit"
  input  = stage.passthrough.d.output
}
stage "badschema" "bad" {
  plugin = "testkit"
}
`)
	if !errors.Is(err, pluginhost.ErrPluginCrashed) || !errors.Is(err, sdk.ErrSchemaMismatch) {
		t.Fatalf("error = %v, want both the crash and the schema mismatch", err)
	}
	m := h.manifest()
	if m.Status != runstore.StatusFailed {
		t.Errorf("run status %s, want failed", m.Status)
	}
	skipped := "not run: it depends on stage crash.boom, which failed"
	want := map[string][2]string{
		"emit.a":        {runstore.StatusSucceeded, ""},
		"passthrough.b": {runstore.StatusSucceeded, ""},
		"passthrough.c": {runstore.StatusSucceeded, ""},
		"crash.boom":    {runstore.StatusFailed, "ERR"},
		"passthrough.d": {runstore.StatusSkipped, skipped},
		"passthrough.e": {runstore.StatusSkipped, skipped},
		"badschema.bad": {runstore.StatusFailed, "ERR"},
	}
	got := map[string][2]string{}
	for _, s := range m.Stages {
		msg := s.Error
		if s.Status == runstore.StatusFailed && strings.Contains(err.Error(), s.Error) && strings.HasPrefix(s.Error, "stage "+s.Addr+" ") {
			msg = "ERR"
		}
		got[s.Addr] = [2]string{s.Status, msg}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stages (-want +got):\n%s", diff)
	}
	var skipEvents []string
	for _, e := range h.events {
		if e.Type == runner.EventStageSkipped {
			skipEvents = append(skipEvents, e.Stage+": "+e.Reason)
		}
	}
	sort.Strings(skipEvents)
	if diff := cmp.Diff([]string{"passthrough.d: " + skipped, "passthrough.e: " + skipped}, skipEvents); diff != "" {
		t.Errorf("skip events (-want +got):\n%s", diff)
	}
	if got := h.readInt64s("passthrough.c", 0, "output", "id"); !equalInts(got, []int64{0, 1, 2}) {
		t.Errorf("passthrough.c wrote ids %v, want 0..2", got)
	}
	h.assertProcessesGone()
}

func TestStageTimeoutStopsThePlugin(t *testing.T) {
	start := time.Now()
	h, err := runPipeline(t, context.Background(), `
stage "block" "slow" {
  plugin = "testkit"
  timeout = "1s"
}
`)
	if err == nil || !strings.Contains(err.Error(), "timeout") || !strings.Contains(err.Error(), "block.slow") {
		t.Fatalf("error = %v, want a timeout of block.slow", err)
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("timeout took %s to stop the run", el)
	}
	h.assertProcessesGone()
}

func TestCancelStopsEveryPlugin(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(2*time.Second, cancel)
	h, err := runPipeline(t, ctx, `
stage "block" "a" {
  plugin = "testkit"
}
stage "block" "b" {
  plugin = "testkit"
}
`)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if got := h.manifest().Status; got != runstore.StatusCanceled {
		t.Errorf("run status %s, want canceled", got)
	}
	h.assertProcessesGone()
}

func TestPluginConfigErrorsStopBeforeAnyStageRuns(t *testing.T) {
	h, err := runPipeline(t, context.Background(), `
stage "emit" "a" {
  plugin = "testkit"
  rows = 2
}
stage "emit" "bad" {
  plugin = "testkit"
  rows = -1
}
`)
	var cerr *runner.ConfigError
	if !errors.As(err, &cerr) {
		t.Fatalf("error = %v, want a ConfigError", err)
	}
	d := cerr.Diagnostics[0]
	if d.Subject == nil || d.Subject.Start.Line != 8 {
		t.Errorf("diagnostic %v should point at line 8 (rows = -1)", d)
	}
	for _, e := range h.events {
		if e.Type == runner.EventStageStarted {
			t.Errorf("stage %s started despite a config error", e.Stage)
		}
	}
	h.assertProcessesGone()
}

func TestSpansFormOneTreeAcrossProcesses(t *testing.T) {
	h, err := runPipeline(t, context.Background(), `
stage "emit" "src" {
  plugin = "testkit"
  rows = 4
}
stage "double" "d" {
  plugin = "testkit"
  input = stage.emit.src
}
`)
	if err != nil {
		t.Fatal(err)
	}
	hostSpans := h.spans.Ended()
	byID := map[string]sdktrace.ReadOnlySpan{}
	var root sdktrace.ReadOnlySpan
	for _, s := range hostSpans {
		byID[s.SpanContext().SpanID().String()] = s
		if strings.HasPrefix(s.Name(), "run ") {
			root = s
		}
	}
	if root == nil {
		t.Fatal("no run span")
	}
	traceID := root.SpanContext().TraceID().String()
	stageSpan := map[string]string{} // span id -> stage name
	for _, s := range hostSpans {
		if s.SpanContext().TraceID().String() != traceID {
			t.Errorf("host span %q is in trace %s, not the run's %s", s.Name(), s.SpanContext().TraceID(), traceID)
		}
		if strings.HasPrefix(s.Name(), "stage ") {
			if s.Parent().SpanID() != root.SpanContext().SpanID() {
				t.Errorf("stage span %q is not a child of the run span", s.Name())
			}
			stageSpan[s.SpanContext().SpanID().String()] = s.Name()
		}
	}

	// Plugin spans, from the plugins' own span files.
	files, _ := filepath.Glob(h.run.Path("spans", "*.jsonl"))
	if len(files) < 2 {
		t.Fatalf("want a span file per plugin process, got %v", files)
	}
	found := map[string]bool{}
	for _, f := range files {
		for _, s := range readSpanFile(t, f) {
			if s.SpanContext.TraceID != traceID {
				t.Errorf("plugin span %q in %s is in trace %s, not %s", s.Name, f, s.SpanContext.TraceID, traceID)
				continue
			}
			// Walk up through the plugin's own spans to the host.
			if name, ok := stageSpan[s.Parent.SpanID]; ok {
				found[name] = true
			}
		}
	}
	for _, name := range []string{"stage emit.src", "stage double.d"} {
		if !found[name] {
			t.Errorf("no plugin-side span is a child of host span %q", name)
		}
	}
	_ = telemetry.EnvTraceFile
}

type jsonSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
}

func readSpanFile(t *testing.T, path string) []jsonSpan {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []jsonSpan
	dec := json.NewDecoder(bufio.NewReader(f))
	for dec.More() {
		var s jsonSpan
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, s)
	}
	return out
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
