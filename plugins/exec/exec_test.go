package exec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// spans records every span of the package's tests: the trial spans use the
// global tracer provider, as in a plugin process.
var (
	spans    = tracetest.NewSpanRecorder()
	provider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
)

// helperEnv, when set in the environment, makes the test binary act as a
// trial command (see helper_test.go) instead of running the tests.
const helperEnv = "EXEC_TEST_HELPER"

func TestMain(m *testing.M) {
	if h := os.Getenv(helperEnv); h != "" {
		os.Exit(helper(h))
	}
	otel.SetTracerProvider(provider)
	os.Exit(m.Run())
}

func ptr[T any](v T) *T { return &v }

// checked returns an allocator that must be empty when the test and its
// cleanups are done.
func checked(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// data generates a dataset and returns it as the dataset stage emits it.
func data(t *testing.T, mem memory.Allocator, kind string, rows int, seed uint64, test, valid float64) []arrow.RecordBatch {
	t.Helper()
	o := dataset.GenDefaults(kind)
	o.Rows, o.Seed = rows, seed
	out, err := dataset.GenerateBatches(mem, o, test, valid, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, b := range out {
			b.Release()
		}
	})
	return out
}

// splitCounts counts a dataset's rows by split.
func splitCounts(t *testing.T, ds []arrow.RecordBatch) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, b := range ds {
		col := b.Column(b.Schema().FieldIndices("split")[0]).(*array.String)
		for i := range col.Len() {
			n[col.Value(i)]++
		}
	}
	return n
}

// cand is a candidate for a dataset of `in` features and `out` outputs,
// counted as model_choice counts.
func cand(in, out int64, depth, width int32) tables.Candidate {
	family := tables.FamilyMLP
	if depth == 0 {
		family = tables.FamilyLinear
	}
	p, f := mlp.Count(mlp.LayerSizes(in, int64(depth), int64(width), out))
	return tables.Candidate{
		ID: fmt.Sprintf("%s-d%d-w%d", family, depth, width), Family: family, Depth: depth, Width: width,
		Params: p, FLOPs: f, LearningRate: 0.03, BatchSize: 16, Epochs: 5, Preprocess: "standardize", Quantize: "none",
	}
}

func candidates(t *testing.T, mem memory.Allocator, cs ...tables.Candidate) []arrow.RecordBatch {
	t.Helper()
	b := tables.BuildCandidates(mem, cs)
	t.Cleanup(b.Release)
	return []arrow.RecordBatch{b}
}

// sh is a command running a shell script.
func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// run runs the stage in process and returns its results, in candidate
// order.
func run(t *testing.T, ctx context.Context, cfg Config, in stagetest.Inputs) ([]tables.Result, error) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(t, ctx, Info(), st, in)
	if err != nil {
		return nil, err
	}
	var rs []tables.Result
	for _, b := range out.Batches(OutputPort) {
		got, err := tables.ReadResults(b)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, got...)
	}
	return rs, nil
}

func byID(rs []tables.Result) map[string]tables.Result {
	m := map[string]tables.Result{}
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

// trialSpan returns the ended span of a candidate's last trial.
func trialSpan(t *testing.T, id string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	for _, s := range spans.Ended() {
		if s.Name() == "trial "+id {
			found = s
		}
	}
	if found == nil {
		t.Fatalf("no span trial %s", id)
	}
	return found
}

func attrs(s sdktrace.ReadOnlySpan) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes() {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func TestJSONLines(t *testing.T) {
	mem := checked(t)
	c := cand(4, 3, 1, 8)
	c.ID = "jsonl"
	// Chatter, epoch lines, an intermediate object and the final one (with
	// a CRLF ending): the last object wins, whole.
	script := `
echo "loading data"
echo '{"epoch": 1, "loss": 0.9, "val_loss": 1.0, "phase": "warmup"}'
echo '{"epoch": 2, "loss": 0.5}'
echo '{"accuracy": 0.1, "loss": 9}'
echo 'warming up' >&2
printf '{"accuracy": 0.875, "loss": 0.31, "latency_p50_ms": 0.2, "latency_p95_ms": 0.4, "throughput_per_s": 5000, "model_bytes": 1234, "params": 99, "stopped_by": "early_stopping", "gpu_util": 0.5, "notes": {"a": 1}}\r\n'
`
	rs, err := run(t, context.Background(), Config{Command: sh(script)},
		stagetest.Inputs{InputPort: candidates(t, mem, c)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 {
		t.Fatalf("%d results, want 1", len(rs))
	}
	r := rs[0]
	type got struct {
		Status, Error                      string
		Accuracy, Loss, P50, P95, Through  float64
		ModelBytes, Params, FLOPs          int64
		EpochsRun                          int32
		StoppedBy                          string
		RMSENull, HasPeak, HasTrainSeconds bool
	}
	want := got{Status: "ok", Accuracy: 0.875, Loss: 0.31, P50: 0.2, P95: 0.4, Through: 5000, ModelBytes: 1234, Params: 99, FLOPs: c.FLOPs,
		EpochsRun: 2, StoppedBy: "early_stopping", RMSENull: true, HasPeak: true, HasTrainSeconds: true}
	g := got{r.Status, r.Error, r.Accuracy, r.Loss, r.LatencyP50Ms, r.LatencyP95Ms, r.ThroughputPerS, r.ModelBytes, r.Params, r.FLOPs,
		r.EpochsRun, r.StoppedBy, math.IsNaN(r.RMSE), r.PeakBytes > 0, r.TrainSeconds > 0}
	if diff := cmp.Diff(want, g); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	s := trialSpan(t, "jsonl")
	a := attrs(s)
	for k, v := range map[string]string{"width": "8", "depth": "1", "params": "99", "candidate_params": strconv.FormatInt(c.Params, 10),
		"accuracy": "0.875", "latency_p95_ms": "0.4", "status": "ok", "exit_code": "0", "stderr_tail": "warming up",
		"ignored_metrics": `["gpu_util","notes"]`} {
		if a[k] != v {
			t.Errorf("span attribute %s = %q, want %q", k, a[k], v)
		}
	}
	if s.Status().Code != codes.Ok || r.TraceID != s.SpanContext().TraceID().String() {
		t.Errorf("span status %v, trace_id %s of span %s", s.Status(), r.TraceID, s.SpanContext().TraceID())
	}
	var events []string
	for _, e := range s.Events() {
		var kv []string
		for _, x := range e.Attributes {
			kv = append(kv, string(x.Key)+"="+x.Value.Emit())
		}
		events = append(events, e.Name+" "+strings.Join(kv, " "))
	}
	if diff := cmp.Diff([]string{"epoch epoch=1 loss=0.9 phase=warmup val_loss=1", "epoch epoch=2 loss=0.5"}, events); diff != "" {
		t.Errorf("span events (-want +got):\n%s", diff)
	}
}

func TestArrowOutput(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"arrow-file", "arrow-stream"} {
		t.Run(mode, func(t *testing.T) {
			mem := checked(t)
			c := cand(4, 3, 1, 8)
			rs, err := run(t, context.Background(), Config{Command: []string{self}, Output: OutputArrow, Env: map[string]string{helperEnv: mode}},
				stagetest.Inputs{InputPort: candidates(t, mem, c)})
			if err != nil {
				t.Fatal(err)
			}
			r := rs[0]
			// The helper writes two rows; the second wins.
			if r.Status != "ok" || r.Accuracy != 0.75 || r.ModelBytes != 4096 || r.EpochsRun != 7 || r.StoppedBy != "epochs" || !math.IsNaN(r.Loss) || r.R2 != -0.5 {
				t.Errorf("got %s %q accuracy %g model_bytes %d epochs_run %d stopped_by %q loss %g r2 %g",
					r.Status, r.Error, r.Accuracy, r.ModelBytes, r.EpochsRun, r.StoppedBy, r.Loss, r.R2)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		mem := checked(t)
		rs, err := run(t, context.Background(), Config{Command: sh(`echo '{"accuracy": 0.9}'`), Output: OutputArrow},
			stagetest.Inputs{InputPort: candidates(t, mem, cand(4, 3, 1, 8))})
		if err != nil {
			t.Fatal(err)
		}
		if r := rs[0]; r.Status != "failed" || !strings.Contains(r.Error, "no metrics file") {
			t.Errorf("got %s %q, want failed: no metrics file", r.Status, r.Error)
		}
	})
	t.Run("not arrow", func(t *testing.T) {
		mem := checked(t)
		rs, err := run(t, context.Background(), Config{Command: sh(`echo '{"accuracy": 0.9}' > "$SWEETSPOT_METRICS_FILE"`), Output: OutputArrow},
			stagetest.Inputs{InputPort: candidates(t, mem, cand(4, 3, 1, 8))})
		if err != nil {
			t.Fatal(err)
		}
		if r := rs[0]; r.Status != "failed" || !strings.Contains(r.Error, "neither an Arrow IPC file nor stream") {
			t.Errorf("got %s %q", r.Status, r.Error)
		}
	})
}

// The Arrow dataset files hold the splits with their schema metadata: the
// helper reads them and reports what it found.
func TestArrowDataset(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 200, 1, 0.25, 0.1)
	rs, err := run(t, context.Background(), Config{Command: []string{self}, Env: map[string]string{helperEnv: "read-dataset"}},
		stagetest.Inputs{InputPort: candidates(t, mem, cand(4, 3, 1, 8)), DatasetPort: ds})
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Status != "ok" {
		t.Fatalf("%s: %s", r.Status, r.Error)
	}
	// loss: train rows, rmse: validation rows, r2: test rows; model_bytes
	// the columns; stopped_by the metadata.
	n := splitCounts(t, ds)
	if r.Loss != float64(n["train"]) || r.RMSE != float64(n["validation"]) || r.R2 != float64(n["test"]) || n["validation"] == 0 ||
		r.ModelBytes != 5 || r.StoppedBy != "target/classification/3/int64" {
		t.Errorf("helper saw train %g validation %g test %g rows, %d columns, %q", r.Loss, r.RMSE, r.R2, r.ModelBytes, r.StoppedBy)
	}
}

// A command and its children are one process group: a timeout kills all
// of them, and so does the command's own exit.
func TestProcessGroupKilled(t *testing.T) {
	for _, tc := range []struct {
		name, script, wantErr string
		timeout               time.Duration
		wantStatus            string
	}{
		{"timeout", `sleep 300 & echo $! > "$OUT/$SWEETSPOT_CANDIDATE_ID.pid"; echo started >&2; wait`, "timed out after 1s", time.Second, "failed"},
		// The child keeps the command's stdout open; the trial must not
		// wait for it (it would time out).
		{"left behind", `sleep 300 & echo $! > "$OUT/$SWEETSPOT_CANDIDATE_ID.pid"; echo '{"accuracy": 0.5}'`, "", 30 * time.Second, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := checked(t)
			out := t.TempDir()
			c := cand(4, 3, 1, 8)
			start := time.Now()
			rs, err := run(t, context.Background(), Config{Command: sh(tc.script), TrialTimeout: ptr(tc.timeout), Env: map[string]string{"OUT": out}},
				stagetest.Inputs{InputPort: candidates(t, mem, c)})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("the stage took %s", d)
			}
			r := rs[0]
			if r.Status != tc.wantStatus || !strings.Contains(r.Error, tc.wantErr) {
				t.Errorf("got %s %q, want %s with %q", r.Status, r.Error, tc.wantStatus, tc.wantErr)
			}
			if tc.wantStatus == "failed" && !strings.Contains(r.Error, "started") {
				t.Errorf("error %q lacks the stderr tail", r.Error)
			}
			b, err := os.ReadFile(filepath.Join(out, c.ID+".pid"))
			if err != nil {
				t.Fatal(err)
			}
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			waitGone(t, pid)
		})
	}
}

// waitGone fails the test unless pid is gone (or a zombie: dead, waiting
// for a parent that may never reap it) within a few seconds.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
				return
			}
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("process %d still runs after its trial", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A command that fails is a failed trial with its stderr's tail; the other
// trials go on and the stage succeeds.
func TestFailingCommand(t *testing.T) {
	mem := checked(t)
	good, bad, noisy := cand(4, 3, 1, 8), cand(4, 3, 1, 16), cand(4, 3, 1, 32)
	script := `
case "$SWEETSPOT_WIDTH" in
16) echo "loading" >&2; echo 'RuntimeError: out of memory' >&2; exit 3 ;;
32) i=0; while [ $i -lt 2000 ]; do echo "noise line $i" >&2; i=$((i+1)); done; echo 'the real reason' >&2; kill -9 $$ ;;
esac
echo '{"accuracy": 0.9}'
`
	rs, err := run(t, context.Background(), Config{Command: sh(script), Parallelism: ptr(2)},
		stagetest.Inputs{InputPort: candidates(t, mem, good, bad, noisy)})
	if err != nil {
		t.Fatalf("the stage failed: %v", err)
	}
	got := byID(rs)
	if r := got[good.ID]; r.Status != "ok" {
		t.Errorf("good trial: %s %q", r.Status, r.Error)
	}
	r := got[bad.ID]
	if want := "the command failed: exit status 3; stderr:\nloading\nRuntimeError: out of memory"; r.Status != "failed" || r.Error != want {
		t.Errorf("failing trial: %s %q, want failed %q", r.Status, r.Error, want)
	}
	if !math.IsNaN(r.Accuracy) || r.ModelBytes != -1 || r.TrainSeconds <= 0 {
		t.Errorf("failed trial has accuracy %g model_bytes %d train_seconds %g", r.Accuracy, r.ModelBytes, r.TrainSeconds)
	}
	s := trialSpan(t, bad.ID)
	if s.Status().Code != codes.Error || attrs(s)["exit_code"] != "3" || !strings.Contains(attrs(s)["stderr_tail"], "out of memory") {
		t.Errorf("failed trial's span: %v %v", s.Status(), attrs(s))
	}
	// The tail is bounded and ends with the last line.
	r = got[noisy.ID]
	if r.Status != "failed" || !strings.Contains(r.Error, "signal: killed") || !strings.HasSuffix(r.Error, "the real reason") ||
		len(r.Error) > stderrTailBytes+200 || strings.Contains(r.Error, "noise line 1\n") {
		t.Errorf("noisy trial: %s, error of %d bytes: %.200q...", r.Status, len(r.Error), r.Error)
	}
}

func TestMalformedMetrics(t *testing.T) {
	cases := []struct {
		name, script, want string
	}{
		{"truncated", `echo '{"accuracy": 0.9'`, "malformed metrics: stdout line 1: unexpected EOF"},
		{"nan", `echo '{"accuracy": NaN}'`, "NaN and Infinity are not JSON numbers"},
		{"trailing", `echo '{"accuracy": 0.9} {"loss": 1}'`, "stdout line 1: text after the JSON object"},
		{"nothing", `echo hello`, "no metrics: the command wrote no JSON object without an \"epoch\" key on stdout; its other stdout ended with:\nhello"},
		{"epochs only", `echo '{"epoch": 1, "accuracy": 0.9}'`, "it wrote 1 epoch line(s)"},
		{"bad epoch", `echo '{"epoch": "one"}'; echo '{"accuracy": 0.9}'`, `stdout line 1: epoch is "one", want a whole number`},
		{"range", `echo '{"accuracy": 1.5, "model_bytes": 2.5}'`, "accuracy is 1.5: want a fraction between 0 and 1\nmodel_bytes is 2.5: want a whole number"},
		{"type", `echo '{"accuracy": "high", "stopped_by": 3}'`, "accuracy is \"high\", want a number\nstopped_by is 3, want a string"},
		{"no quality", `echo '{"latency_p95_ms": 1}'`, "no accuracy, loss, rmse among the metrics (found latency_p95_ms)"},
		{"huge", `echo '{"loss": 1e999}'`, "the number 1e999 is out of range"},
		{"malformed then good", `echo '{"accuracy": 0.9,'; echo '{"accuracy": 0.9}'`, "stdout line 1: unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := checked(t)
			rs, err := run(t, context.Background(), Config{Command: sh(tc.script)}, stagetest.Inputs{InputPort: candidates(t, mem, cand(4, 3, 1, 8))})
			if err != nil {
				t.Fatal(err)
			}
			if r := rs[0]; r.Status != "failed" || !strings.Contains(r.Error, tc.want) {
				t.Errorf("got %s %q, want failed with %q", r.Status, r.Error, tc.want)
			}
		})
	}
}

// The candidate reaches the command on stdin and in the environment, with
// the dataset files, the seed and the trace context.
func TestEnvironmentAndStdin(t *testing.T) {
	mem := checked(t)
	t.Setenv("SWEETSPOT_LEAK", "from the plugin's environment")
	t.Setenv("PLUGIN_MIN_PORT", "10000")
	out := t.TempDir()
	ds := data(t, mem, dataset.GenBlobs, 120, 2, 0.25, 0)
	c1, c2 := cand(4, 3, 1, 8), cand(4, 3, 2, 4)
	c2.ID = "odd/id ü"
	script := `
d="$OUT/$SWEETSPOT_WIDTH"
mkdir -p "$d"
cat > "$d/stdin.json"
env > "$d/env.txt"
pwd > "$d/pwd.txt"
wc -l < "$SWEETSPOT_TRAIN" > "$d/train_lines.txt"
head -n 1 "$SWEETSPOT_TEST" > "$d/test_header.txt"
echo '{"loss": 0.5}'
`
	ctx, parent := provider.Tracer("test").Start(context.Background(), "stage exec.test")
	rs, err := run(t, ctx, Config{Command: sh(script), DatasetFormat: FormatCSV, Seed: ptr(int64(5)), Env: map[string]string{"OUT": out, "FOO": "bar baz"}},
		stagetest.Inputs{InputPort: candidates(t, mem, c1, c2), DatasetPort: ds})
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Status != "ok" {
			t.Fatalf("%s: %s %s", r.ID, r.Status, r.Error)
		}
	}
	read := func(width int32, name string) string {
		b, err := os.ReadFile(filepath.Join(out, fmt.Sprint(width), name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	var stdin map[string]any
	if err := json.Unmarshal([]byte(read(4, "stdin.json")), &stdin); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"candidate_id": "odd/id ü", "round": 0.0, "repeat": 0.0, "family": "mlp", "depth": 2.0, "width": 4.0, "params": float64(c2.Params),
		"flops": float64(c2.FLOPs), "learning_rate": 0.03, "batch_size": 16.0, "epochs": 5.0, "preprocess": "standardize", "quantize": "none", "prune_fraction": 0.0,
		"name": "odd/id ü", "family_kind": "mlp", "size": 4.0, "knobs": map[string]any{}}
	if diff := cmp.Diff(want, stdin); diff != "" {
		t.Errorf("stdin (-want +got):\n%s", diff)
	}
	env := map[string]string{}
	for _, line := range strings.Split(read(4, "env.txt"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	wd := read(4, "pwd.txt")
	for k, v := range map[string]string{
		"SWEETSPOT_CANDIDATE_ID": "odd/id ü", "SWEETSPOT_WIDTH": "4", "SWEETSPOT_DEPTH": "2", "SWEETSPOT_LEARNING_RATE": "0.03",
		"SWEETSPOT_EPOCHS": "5", "SWEETSPOT_BATCH_SIZE": "16", "SWEETSPOT_PREPROCESS": "standardize", "SWEETSPOT_PRUNE_FRACTION": "0",
		"SWEETSPOT_TARGET": "target", "SWEETSPOT_TASK": "classification", "SWEETSPOT_CLASSES": "3", "SWEETSPOT_DATASET_FORMAT": "csv",
		"SWEETSPOT_OUTPUT": "jsonl", "SWEETSPOT_TIMEOUT_SECONDS": "600", "SWEETSPOT_WORKDIR": wd, "FOO": "bar baz",
		"SWEETSPOT_SEED":   strconv.FormatUint(evaluation.TrialSeed(5, evaluation.TrainingKey(c2, 5))%(1<<31), 10),
		"SWEETSPOT_REPEAT": "0",
		"SWEETSPOT_NAME":   "odd/id ü", "SWEETSPOT_FAMILY_KIND": "mlp", "SWEETSPOT_SIZE": "4", "SWEETSPOT_KNOBS": "{}",
		"SWEETSPOT_LEAK": "", "PLUGIN_MIN_PORT": "", "SWEETSPOT_METRICS_FILE": "",
	} {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if filepath.Base(wd) != "odd_id__" || filepath.Base(filepath.Dir(wd)) != "r0" {
		t.Errorf("working directory %s, want .../r0/odd_id__", wd)
	}
	if !strings.Contains(env["TRACEPARENT"], parent.SpanContext().TraceID().String()) {
		t.Errorf("TRACEPARENT %q is not in trace %s", env["TRACEPARENT"], parent.SpanContext().TraceID())
	}
	var fromEnv map[string]any
	if err := json.Unmarshal([]byte(env["SWEETSPOT_CANDIDATE_JSON"]), &fromEnv); err != nil || !cmp.Equal(fromEnv, stdin) {
		t.Errorf("SWEETSPOT_CANDIDATE_JSON %q (%v), want the stdin object", env["SWEETSPOT_CANDIDATE_JSON"], err)
	}
	// The training rows and a header.
	if got, want := read(4, "train_lines.txt"), fmt.Sprint(splitCounts(t, ds)["train"]+1); got != want {
		t.Errorf("train.csv has %s lines, want %s", got, want)
	}
	if got := read(4, "test_header.txt"); got != "x0,x1,x2,x3,target" {
		t.Errorf("test.csv header %q", got)
	}
	if read(8, "pwd.txt") == wd {
		t.Error("two trials shared a working directory")
	}
}

// A resumed run gets back the journalled trials' rows, does not run their
// commands again, and writes them out unchanged.
func TestResume(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	done, todo := cand(4, 3, 1, 8), cand(4, 3, 1, 16)
	journalled := failedResult(done)
	journalled.Status, journalled.Accuracy, journalled.TraceID, journalled.TrainSeconds = "ok", 0.77, "0123", 1.5
	resume := tables.BuildResults(mem, []tables.Result{journalled})
	defer resume.Release()
	rs, err := run(t, context.Background(), Config{Command: sh(`touch "$OUT/$SWEETSPOT_CANDIDATE_ID"; echo '{"accuracy": 0.8}'`), Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: candidates(t, mem, done, todo), ResumePort: {resume}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d results, want 2", len(rs))
	}
	got := byID(rs)
	if r := got[done.ID]; r.Accuracy != 0.77 || r.TraceID != "0123" || r.TrainSeconds != 1.5 {
		t.Errorf("resumed row changed: %+v", r)
	}
	if r := got[todo.ID]; r.Status != "ok" || r.Accuracy != 0.8 {
		t.Errorf("new trial: %s %q %g", r.Status, r.Error, r.Accuracy)
	}
	ran, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(ran) != 1 || ran[0].Name() != todo.ID {
		t.Errorf("commands ran for %v, want only %s", ran, todo.ID)
	}
}

// Cancelling the stage kills running commands at once.
func TestCanceled(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the command has started its child.
		for ctx.Err() == nil {
			if _, err := os.Stat(filepath.Join(out, "pid")); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	start := time.Now()
	_, err := run(t, ctx, Config{Command: sh(`sleep 300 & echo $! > "$OUT/pid.tmp"; mv "$OUT/pid.tmp" "$OUT/pid"; wait`), Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: candidates(t, mem, cand(4, 3, 1, 8), cand(4, 3, 1, 16))})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancellation took %s", d)
	}
	b, err := os.ReadFile(filepath.Join(out, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, pid)
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script.sh"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := sh("true")
	cases := []struct {
		name    string
		cfg     Config
		path    []string
		summary string
	}{
		{"no command", Config{}, []string{"command"}, "Missing command"},
		{"not on PATH", Config{Command: []string{"no-such-program-sweetspot"}}, []string{"command"}, "Command not found"},
		{"missing file", Config{Command: []string{"./missing.sh"}, BaseDir: dir}, []string{"command"}, "Command not found"},
		{"not executable", Config{Command: []string{"./script.sh"}, BaseDir: dir}, []string{"command"}, "Command not executable"},
		{"reserved env", Config{Command: ok, Env: map[string]string{"SWEETSPOT_WIDTH": "3"}}, []string{"env", "SWEETSPOT_WIDTH"}, "Reserved environment variable"},
		{"env name", Config{Command: ok, Env: map[string]string{"A=B": "3"}}, []string{"env", "A=B"}, "Invalid environment variable name"},
		{"timeout", Config{Command: ok, TrialTimeout: ptr(time.Duration(0))}, []string{"trial_timeout"}, "Invalid trial timeout"},
		{"parallelism", Config{Command: ok, Parallelism: ptr(0)}, []string{"parallelism"}, "Invalid parallelism"},
		{"format", Config{Command: ok, DatasetFormat: "cvs"}, []string{"dataset_format"}, "Unknown dataset format"},
		{"output", Config{Command: ok, Output: "json"}, []string{"output"}, "Unknown output"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) || len(ds) != 1 || !cmp.Equal(ds[0].Path, tc.path) || ds[0].Summary != tc.summary {
				t.Errorf("got %v, want one %q on %v", err, tc.summary, tc.path)
			}
		})
	}
	_, err := New(Config{Command: ok, DatasetFormat: "cvs"})
	if err == nil || !strings.Contains(err.Error(), `Did you mean "csv"?`) {
		t.Errorf("got %v, want a hint", err)
	}
}

// Paths in command are the pipeline file's: a program with a slash and
// arguments naming existing files become absolute; other arguments and
// programs on PATH stay as written.
func TestResolveCommand(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"train.py", "run.sh"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := osexec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in       []string
		wantPath string
		want     []string
	}{
		{[]string{"sh", "train.py", "--epochs", "3", "missing.txt", "-v"}, sh, []string{"sh", filepath.Join(dir, "train.py"), "--epochs", "3", "missing.txt", "-v"}},
		{[]string{"./run.sh", "/abs/path"}, filepath.Join(dir, "run.sh"), []string{filepath.Join(dir, "run.sh"), "/abs/path"}},
	}
	for _, tc := range cases {
		path, got, cerr := resolveCommand(tc.in, dir)
		if cerr != nil {
			t.Fatalf("%v: %s: %s", tc.in, cerr.summary, cerr.detail)
		}
		if path != tc.wantPath {
			t.Errorf("%v: program %s, want %s", tc.in, path, tc.wantPath)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.in, diff)
		}
	}
}

// Over the real wire with checked allocators on both sides and the host's
// work directory: trials run in WORK/trials/r<round>/<id>, the dataset is
// written once to WORK/data, and the trial spans continue the host's trace.
func TestOverTheWire(t *testing.T) {
	mem := checked(t)
	set := sdk.NewSet(sdk.WithName("exectest"))
	Register(set)
	p := sdktest.Start(t, set, sdktest.WithTracerProvider(provider))
	work := t.TempDir()

	ds := data(t, mem, dataset.GenBlobs, 200, 10, 0.25, 0)
	c1, c2 := cand(4, 3, 1, 8), cand(4, 3, 1, 16)
	c1.Round, c2.Round = 2, 2
	cs := candidates(t, mem, c1, c2)
	dsr := sdktest.Table(ds[0].Schema(), ds...)
	defer dsr.Release()
	csr := sdktest.Table(cs[0].Schema(), cs...)
	defer csr.Release()
	coll := sdktest.NewCollector()
	defer coll.Release()
	ctx, root := provider.Tracer("host").Start(context.Background(), "run")
	_, err := p.Run(ctx, stagehost.RunRequest{
		Kind: Kind, Stage: "exec.wire", WorkDir: work, Round: 2,
		Config: cty.ObjectVal(map[string]cty.Value{
			"command":     cty.ListVal([]cty.Value{cty.StringVal("/bin/sh"), cty.StringVal("-c"), cty.StringVal(`echo "{\"accuracy\": 0.$SWEETSPOT_WIDTH}"`)}),
			"parallelism": cty.NumberIntVal(2),
		}),
		Inputs:  map[string]array.RecordReader{InputPort: csr, DatasetPort: dsr},
		Outputs: map[string]func(arrow.RecordBatch) error{OutputPort: coll.Port(OutputPort)},
	})
	root.End()
	if err != nil {
		t.Fatal(err)
	}
	var rs []tables.Result
	for _, b := range coll.Batches[OutputPort] {
		got, err := tables.ReadResults(b)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, got...)
	}
	got := byID(rs)
	if r := got[c1.ID]; r.Status != "ok" || r.Accuracy != 0.8 || r.TraceID != root.SpanContext().TraceID().String() {
		t.Errorf("%s: %s %q accuracy %g trace %s", r.ID, r.Status, r.Error, r.Accuracy, r.TraceID)
	}
	if r := got[c2.ID]; r.Status != "ok" || r.Accuracy != 0.16 {
		t.Errorf("%s: %s %q accuracy %g", r.ID, r.Status, r.Error, r.Accuracy)
	}
	for _, f := range []string{"data/train.arrow", "data/validation.arrow", "data/test.arrow", "trials/r2/mlp-d1-w8/candidate.json", "trials/r2/mlp-d1-w16/candidate.json"} {
		if _, err := os.Stat(filepath.Join(work, f)); err != nil {
			t.Errorf("work directory: %v", err)
		}
	}
}

// repeats = 3 runs the command three times per candidate, each with its
// own SWEETSPOT_REPEAT, repeat member and SWEETSPOT_SEED (repeat 0's the
// seed a stage without repeats gives), in a working directory of its
// own, one results row each; a resumed stage runs only the repeats not
// journalled.
func TestRepeats(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	c := cand(4, 3, 1, 8)
	script := `d="$OUT/$SWEETSPOT_REPEAT"; mkdir -p "$d"; echo "$SWEETSPOT_SEED" > "$d/seed"; cat > "$d/stdin.json"; pwd > "$d/pwd"
echo "{\"accuracy\": 0.$((SWEETSPOT_REPEAT + 5))}"`
	journalled := failedResult(c)
	journalled.Repeat, journalled.Status, journalled.Accuracy, journalled.TraceID = 1, "ok", 0.123, "journalled"
	resume := tables.BuildResults(mem, []tables.Result{journalled})
	defer resume.Release()
	rs, err := run(t, context.Background(), Config{Command: sh(script), Seed: ptr(int64(5)), Repeats: ptr(3), Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: candidates(t, mem, c), ResumePort: {resume}})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rs, func(a, b tables.Result) int { return int(a.Repeat - b.Repeat) })
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s/%d %s %g repeatable=%t", r.ID, r.Repeat, r.Status, r.Accuracy, r.Repeatable))
	}
	// The journalled row comes back as it was written.
	want := []string{"mlp-d1-w8/0 ok 0.5 repeatable=true", "mlp-d1-w8/1 ok 0.123 repeatable=true", "mlp-d1-w8/2 ok 0.7 repeatable=true"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	ran, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var repeats []string
	for _, e := range ran {
		repeats = append(repeats, e.Name())
	}
	if diff := cmp.Diff([]string{"0", "2"}, repeats); diff != "" {
		t.Errorf("commands ran for repeats (-want +got):\n%s", diff)
	}
	read := func(r, name string) string {
		b, err := os.ReadFile(filepath.Join(out, r, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	key := evaluation.TrainingKey(c, 5)
	if s0, want := read("0", "seed"), strconv.FormatUint(evaluation.TrialSeed(5, key)%(1<<31), 10); s0 != want {
		t.Errorf("repeat 0's SWEETSPOT_SEED %s, want the seed without repeats %s", s0, want)
	}
	if read("0", "seed") == read("2", "seed") {
		t.Errorf("repeats 0 and 2 share SWEETSPOT_SEED %s", read("0", "seed"))
	}
	var stdin map[string]any
	if err := json.Unmarshal([]byte(read("2", "stdin.json")), &stdin); err != nil {
		t.Fatal(err)
	}
	if stdin["repeat"] != 2.0 {
		t.Errorf("repeat 2's candidate has repeat %v", stdin["repeat"])
	}
	if a, b := read("0", "pwd"), read("2", "pwd"); a == b || filepath.Base(b) != "mlp-d1-w8-repeat2" {
		t.Errorf("working directories %s and %s, want two, the second .../mlp-d1-w8-repeat2", a, b)
	}
}

func TestRepeatsConfig(t *testing.T) {
	_, err := New(Config{Command: sh("true"), Repeats: ptr(0)})
	if err == nil || !strings.Contains(err.Error(), "repeats must be between 1 and 100; found 0") {
		t.Errorf("repeats = 0: %v", err)
	}
}
