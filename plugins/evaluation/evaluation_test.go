package evaluation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/zclconf/go-cty/cty"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
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

func TestMain(m *testing.M) {
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

// cand is a candidate for a dataset of `in` features and `out` outputs,
// counted as model_choice counts.
func cand(in, out int64, depth, width int32, lr float64, epochs int32) tables.Candidate {
	family := tables.FamilyMLP
	if depth == 0 {
		family = tables.FamilyLinear
	}
	p, f := mlp.Count(mlp.LayerSizes(in, int64(depth), int64(width), out))
	c := tables.Candidate{
		ID: fmt.Sprintf("%s-d%d-w%d", family, depth, width), Family: family, Depth: depth, Width: width,
		Params: p, FLOPs: f, LearningRate: lr, BatchSize: 32, Epochs: epochs, Preprocess: "standardize", Quantize: "none",
	}
	return c.WithDefaults()
}

func candidates(t *testing.T, mem memory.Allocator, cs ...tables.Candidate) []arrow.RecordBatch {
	t.Helper()
	b := tables.BuildCandidates(mem, cs)
	t.Cleanup(b.Release)
	return []arrow.RecordBatch{b}
}

// run runs the stage in process and returns its results.
func run(t *testing.T, ctx context.Context, cfg Config, cands, ds []arrow.RecordBatch) ([]tables.Result, arrow.RecordBatch, error) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(t, ctx, Info(), st, stagetest.Inputs{InputPort: cands, DatasetPort: ds})
	if err != nil {
		return nil, nil, err
	}
	// One batch per finished trial (so the host can journal them): read
	// them as one table.
	all := concatBatches(t, out.Batches(OutputPort))
	rs, err := tables.ReadResults(all)
	if err != nil {
		t.Fatal(err)
	}
	// Trials finish in any order when several run at once.
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].ID < rs[j].ID })
	return rs, all, nil
}

// concatBatches joins batches of one schema into one, released at the
// end of the test.
func concatBatches(t *testing.T, bs []arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	if len(bs) == 0 {
		t.Fatal("no batches")
	}
	cols := make([]arrow.Array, bs[0].NumCols())
	var rows int64
	for _, b := range bs {
		rows += b.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(bs))
		for k, b := range bs {
			parts[k] = b.Column(i)
		}
		col, err := array.Concatenate(parts, memory.NewGoAllocator())
		if err != nil {
			t.Fatal(err)
		}
		defer col.Release()
		cols[i] = col
	}
	rec := array.NewRecordBatch(bs[0].Schema(), cols, rows)
	t.Cleanup(rec.Release)
	return rec
}

func byID(rs []tables.Result) map[string]tables.Result {
	m := map[string]tables.Result{}
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}

func TestResultsColumns(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 300, 1, 0.25, 0)
	cs := candidates(t, mem, cand(4, 3, 0, 0, 1e-2, 5), cand(4, 3, 1, 8, 1e-2, 5))
	rs, rec, err := run(t, context.Background(), Config{LatencySamples: ptr(20), ThroughputBatch: ptr(32)}, cs, ds)
	if err != nil {
		t.Fatal(err)
	}
	// The schema is the declared one, column for column.
	type col struct {
		Name     string
		Type     string
		Nullable bool
	}
	var got, want []col
	for _, f := range rec.Schema().Fields() {
		got = append(got, col{f.Name, f.Type.String(), f.Nullable})
	}
	for _, f := range tables.ResultsSchema.Fields() {
		want = append(want, col{f.Name, f.Type.String(), f.Nullable})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("schema (-want +got):\n%s", diff)
	}
	for _, name := range []string{"candidate_id", "round", "family", "depth", "width", "params", "flops", "learning_rate", "batch_size",
		"epochs", "preprocess", "quantize", "prune_fraction", "accuracy", "loss", "latency_p50_ms", "latency_p95_ms", "throughput_per_s",
		"model_bytes", "peak_bytes", "train_seconds", "epochs_run", "status", "error", "trace_id", "rmse", "r2", "accuracy_before"} {
		if !rec.Schema().HasField(name) {
			t.Errorf("no column %s", name)
		}
	}
	if len(rs) != 2 {
		t.Fatalf("%d rows, want 2", len(rs))
	}
	for _, r := range rs {
		if r.Status != tables.StatusOK || r.Error != "" {
			t.Errorf("%s: status %s error %q", r.ID, r.Status, r.Error)
		}
		positive := map[string]float64{
			"accuracy": r.Accuracy, "loss": r.Loss, "latency_p50_ms": r.LatencyP50Ms, "latency_p95_ms": r.LatencyP95Ms,
			"throughput_per_s": r.ThroughputPerS, "model_bytes": float64(r.ModelBytes), "peak_bytes": float64(r.PeakBytes),
			"train_seconds": r.TrainSeconds, "epochs_run": float64(r.EpochsRun), "val_loss": r.ValLoss, "nonzero_params": float64(r.NonZeroParams),
		}
		for k, v := range positive {
			if !(v > 0) {
				t.Errorf("%s: %s = %g, want a positive value", r.ID, k, v)
			}
		}
		if r.LatencyP95Ms < r.LatencyP50Ms {
			t.Errorf("%s: p95 %g below p50 %g", r.ID, r.LatencyP95Ms, r.LatencyP50Ms)
		}
		if !math.IsNaN(r.RMSE) || !math.IsNaN(r.R2) || !math.IsNaN(r.AccuracyBefore) {
			t.Errorf("%s: rmse %g r2 %g accuracy_before %g, want null", r.ID, r.RMSE, r.R2, r.AccuracyBefore)
		}
		// model_bytes: a 17-byte header and 4 sizes, then per layer a kind
		// byte, float32 weights and biases.
		sizes := []int64{4, 3}
		if r.Depth == 1 {
			sizes = []int64{4, 8, 3}
		}
		wantBytes := 16 + 4*int64(len(sizes))
		for l := 1; l < len(sizes); l++ {
			wantBytes += 1 + 4*(sizes[l-1]*sizes[l]+sizes[l])
		}
		if r.ModelBytes != wantBytes {
			t.Errorf("%s: model_bytes %d, want %d", r.ID, r.ModelBytes, wantBytes)
		}
		if len(r.TraceID) != 32 || r.StoppedBy == "" {
			t.Errorf("%s: trace_id %q stopped_by %q", r.ID, r.TraceID, r.StoppedBy)
		}
	}
	// Nulls: accuracy of a regression, or of a failed trial, is null, not 0.
	if n := rec.Column(rec.Schema().FieldIndices("rmse")[0]).NullN(); n != 2 {
		t.Errorf("rmse has %d nulls, want 2", n)
	}
}

func TestRegression(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenRegression, 400, 2, 0.25, 0.1)
	rs, _, err := run(t, context.Background(), Config{LatencySamples: ptr(10)}, candidates(t, mem, cand(4, 1, 1, 16, 1e-2, 10)), ds)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Status != tables.StatusOK || !math.IsNaN(r.Accuracy) || !(r.RMSE > 0) || math.IsNaN(r.R2) || math.Abs(r.RMSE*r.RMSE-r.Loss) > 1e-9*r.Loss {
		t.Errorf("status %s accuracy %g rmse %g r2 %g loss %g: want rmse and r2 only, loss = rmse²", r.Status, r.Accuracy, r.RMSE, r.R2, r.Loss)
	}
}

// On two spirals, 48 units in two layers reach well above what 3 units
// can, with the budget this stage would give them.
func TestLargerModelBetterOnSpirals(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenSpirals, 800, 3, 0.25, 0)
	rs, _, err := run(t, context.Background(), Config{LatencySamples: ptr(10), Patience: ptr(8)},
		candidates(t, mem, cand(2, 2, 2, 3, 1e-2, 40), cand(2, 2, 2, 48, 1e-2, 40)), ds)
	if err != nil {
		t.Fatal(err)
	}
	small, large := rs[0], rs[1]
	t.Logf("spirals: %s accuracy %.3f, %s accuracy %.3f", small.ID, small.Accuracy, large.ID, large.Accuracy)
	if !(large.Accuracy > 0.9 && large.Accuracy > small.Accuracy+0.1) {
		t.Errorf("%s accuracy %.3f, %s %.3f: want the larger above 0.9 and 0.1 above", large.ID, large.Accuracy, small.ID, small.Accuracy)
	}
	if !(large.ModelBytes > small.ModelBytes && large.PeakBytes > small.PeakBytes) {
		t.Errorf("bytes %d vs %d, peak %d vs %d: want the larger model larger", large.ModelBytes, small.ModelBytes, large.PeakBytes, small.PeakBytes)
	}
}

// A candidate that cannot be trained is a failed row with its reason; the
// stage goes on and succeeds.
func TestFailedTrials(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 200, 4, 0.25, 0)
	good := cand(4, 3, 1, 8, 1e-2, 3)
	width0 := cand(4, 3, 1, 8, 1e-2, 3)
	width0.ID, width0.Width, width0.Params = "width0", 0, 0
	family := cand(4, 3, 1, 8, 1e-2, 3)
	family.ID, family.Family = "family", "transformer"
	quant := cand(4, 3, 1, 8, 1e-2, 3)
	quant.ID, quant.Quantize = "quant", "int4"
	params := cand(4, 3, 1, 8, 1e-2, 3)
	params.ID, params.Params = "params", 12345
	prep := cand(4, 3, 1, 8, 1e-2, 3)
	prep.ID, prep.Preprocess = "prep", "standardise"
	lr := cand(4, 3, 1, 8, 1e-2, 3)
	lr.ID, lr.LearningRate = "lr", 0
	diverge := cand(4, 3, 2, 64, 1e30, 3)
	diverge.ID = "diverge"
	uncounted := cand(4, 3, 1, 8, 2e-2, 3)
	uncounted.ID, uncounted.Params, uncounted.FLOPs = "uncounted", 0, 0
	rs, _, err := run(t, context.Background(), Config{LatencySamples: ptr(5)},
		candidates(t, mem, width0, good, family, quant, params, prep, lr, diverge, uncounted), ds)
	if err != nil {
		t.Fatalf("the stage failed: %v", err)
	}
	want := map[string]string{
		"width0":  "need at least 1 unit, not width 0",
		"family":  `unknown model family "transformer"`,
		"quant":   `unknown quantize "int4"`,
		"params":  "the candidate has 12345 parameters but its model for this dataset (4 inputs, 3 outputs) has 67",
		"prep":    `Did you mean "standardize"?`,
		"lr":      "learning rate 0",
		"diverge": "training diverged",
	}
	got := byID(rs)
	for id, msg := range want {
		r := got[id]
		if r.Status != tables.StatusFailed || !strings.Contains(r.Error, msg) {
			t.Errorf("%s: status %s error %q, want failed with %q", id, r.Status, r.Error, msg)
		}
		if !math.IsNaN(r.Accuracy) || r.ModelBytes != -1 || r.StoppedBy != "" {
			t.Errorf("%s: failed but accuracy %g model_bytes %d stopped_by %q", id, r.Accuracy, r.ModelBytes, r.StoppedBy)
		}
	}
	if r := got[good.ID]; r.Status != tables.StatusOK {
		t.Errorf("the good candidate: %s %s", r.Status, r.Error)
	}
	// Params 0 is "count it for me", not a mismatch.
	if r := got["uncounted"]; r.Status != tables.StatusOK || r.Params != 67 || r.FLOPs != 2*(4*8+8*3)+8+3 {
		t.Errorf("uncounted candidate: %s %q, params %d flops %d; want ok, 67 and 123", r.Status, r.Error, r.Params, r.FLOPs)
	}
	// Each failed trial's span has error status and its error.
	for _, s := range spans.Ended() {
		if s.Name() == "trial diverge" && (s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "diverged")) {
			t.Errorf("span %s: status %v %q", s.Name(), s.Status().Code, s.Status().Description)
		}
	}
}

// timing columns differ between runs; everything else must not.
var timing = cmpopts.IgnoreFields(tables.Result{}, "LatencyP50Ms", "LatencyP95Ms", "ThroughputPerS", "TrainSeconds", "TraceID")

func TestDeterministicAndParallel(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenSpirals, 300, 5, 0.25, 0.1)
	q := cand(2, 2, 2, 16, 1e-2, 6)
	q.ID, q.Quantize, q.PruneFraction = q.ID+"-int8-p50", "int8", 0.5
	cs := candidates(t, mem, cand(2, 2, 0, 0, 1e-2, 6), cand(2, 2, 1, 8, 1e-2, 6), cand(2, 2, 2, 16, 1e-2, 6), q, cand(2, 2, 1, 32, 3e-3, 6))
	cfg := Config{LatencySamples: ptr(5), Seed: ptr(int64(42))}
	first, _, err := run(t, context.Background(), cfg, cs, ds)
	if err != nil {
		t.Fatal(err)
	}
	second, _, err := run(t, context.Background(), cfg, cs, ds)
	if err != nil {
		t.Fatal(err)
	}
	eq := cmp.Comparer(func(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) })
	if diff := cmp.Diff(first, second, timing, eq); diff != "" {
		t.Errorf("two runs differ (-first +second):\n%s", diff)
	}
	cfg.Parallelism = ptr(2)
	parallel, _, err := run(t, context.Background(), cfg, cs, ds)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, parallel, timing, eq); diff != "" {
		t.Errorf("parallelism 2 differs from 1 (-1 +2):\n%s", diff)
	}
	cfg.Seed = ptr(int64(43))
	other, _, err := run(t, context.Background(), cfg, cs, ds)
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Equal(first, other, timing, eq) {
		t.Error("seeds 42 and 43 gave the same results")
	}
}

// A quantized and pruned candidate reports its float model's scores beside
// its own, and is smaller.
func TestCompressedCandidates(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 400, 6, 0.25, 0)
	base := cand(4, 3, 1, 64, 1e-2, 8)
	q := base
	q.ID, q.Quantize = base.ID+"-int8", "int8"
	p := base
	p.ID, p.PruneFraction = base.ID+"-p50", 0.5
	rs, _, err := run(t, context.Background(), Config{LatencySamples: ptr(5)}, candidates(t, mem, base, q, p), ds)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(rs)
	b, qr, pr := got[base.ID], got[q.ID], got[p.ID]
	if !math.IsNaN(b.AccuracyBefore) {
		t.Errorf("uncompressed accuracy_before %g, want null", b.AccuracyBefore)
	}
	for _, r := range []tables.Result{qr, pr} {
		// Same seed and data: the float model is the base candidate's.
		if r.Status != tables.StatusOK || r.AccuracyBefore != b.Accuracy || r.LossBefore != b.Loss {
			t.Errorf("%s: %s accuracy_before %g loss_before %g, want the base's %g and %g", r.ID, r.Status, r.AccuracyBefore, r.LossBefore, b.Accuracy, b.Loss)
		}
		if r.ModelBytes >= b.ModelBytes || math.Abs(r.Accuracy-r.AccuracyBefore) > 0.1 {
			t.Errorf("%s: %d bytes (base %d), accuracy %g from %g", r.ID, r.ModelBytes, b.ModelBytes, r.Accuracy, r.AccuracyBefore)
		}
	}
	// 4→64→3 in int8: a 28-byte header; per layer a kind byte, a float32
	// scale and bias per unit and a byte per weight: 1+8·64+256 and
	// 1+8·3+192. (With 4 inputs the scales weigh: large fan-ins near 4x.)
	if want := int64(28 + 769 + 217); qr.ModelBytes != want {
		t.Errorf("int8 model_bytes %d, want %d", qr.ModelBytes, want)
	}
	if pr.NonZeroParams > b.NonZeroParams*6/10 {
		t.Errorf("pruned half the weights but %d of %d non-zero", pr.NonZeroParams, b.NonZeroParams)
	}
	// The pruned model counts the weights it keeps (half of 4·64 and of
	// 64·3) and every bias; the dense count moves to dense_params. The
	// others keep their dense count, with dense_params null.
	if want := b.Params - 4*64/2 - 64*3/2; pr.Params != want || pr.DenseParams != b.Params {
		t.Errorf("pruned params %d dense_params %d, want %d and %d", pr.Params, pr.DenseParams, want, b.Params)
	}
	if qr.Params != b.Params || qr.DenseParams != 0 || b.DenseParams != 0 {
		t.Errorf("int8 params %d dense_params %d, base dense_params %d; want %d, 0 and 0", qr.Params, qr.DenseParams, b.DenseParams, b.Params)
	}
}

// Every trial is a child span of the caller's, with its attributes, one
// event per epoch, and its trace id in the table.
func TestTrialSpans(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 200, 7, 0.25, 0)
	ctx, parent := provider.Tracer("test").Start(context.Background(), "stage evaluation.test")
	bad := cand(4, 3, 1, 8, 1e-2, 3)
	bad.ID, bad.Width, bad.Params = "spanbad", 0, 0
	rs, _, err := run(t, ctx, Config{LatencySamples: ptr(5)}, candidates(t, mem, cand(4, 3, 1, 8, 1e-2, 4), bad), ds)
	parent.End()
	if err != nil {
		t.Fatal(err)
	}
	trials := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Ended() {
		if s.Parent().SpanID() == parent.SpanContext().SpanID() {
			trials[s.Name()] = s
		}
	}
	ok, failed := trials["trial mlp-d1-w8"], trials["trial spanbad"]
	if ok == nil || failed == nil || len(trials) != 2 {
		t.Fatalf("child spans %v, want trial mlp-d1-w8 and trial spanbad", trials)
	}
	attrs := map[string]string{}
	for _, kv := range ok.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	for _, k := range []string{"width", "depth", "params", "flops", "learning_rate", "accuracy", "loss", "latency_p95_ms", "status"} {
		if _, found := attrs[k]; !found {
			t.Errorf("trial span has no attribute %s: %v", k, attrs)
		}
	}
	if attrs["width"] != "8" || attrs["depth"] != "1" || attrs["params"] != "67" || attrs["status"] != "ok" {
		t.Errorf("attributes %v", attrs)
	}
	r := byID(rs)["mlp-d1-w8"]
	if len(ok.Events()) != int(r.EpochsRun) {
		t.Errorf("%d events for %d epochs", len(ok.Events()), r.EpochsRun)
	}
	for i, e := range ok.Events() {
		got := map[string]bool{}
		for _, kv := range e.Attributes {
			got[string(kv.Key)] = true
		}
		if e.Name != "epoch" || !got["loss"] || !got["val_loss"] || !got["epoch"] {
			t.Errorf("event %d: %s %v", i, e.Name, e.Attributes)
		}
	}
	if r.TraceID != parent.SpanContext().TraceID().String() || ok.Status().Code != codes.Ok {
		t.Errorf("trace_id %s, parent's %s; status %v", r.TraceID, parent.SpanContext().TraceID(), ok.Status())
	}
	if failed.Status().Code != codes.Error || !strings.Contains(failed.Status().Description, "width 0") {
		t.Errorf("failed trial's span: %v %q", failed.Status().Code, failed.Status().Description)
	}
}

func TestMaxTrainTime(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 200, 8, 0.25, 0)
	rs, _, err := run(t, context.Background(), Config{LatencySamples: ptr(5), MaxTrainTime: ptr(time.Nanosecond)},
		candidates(t, mem, cand(4, 3, 1, 8, 1e-2, 50)), ds)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Status != tables.StatusOK || r.StoppedBy != "max_train_time" || r.EpochsRun != 1 || math.IsNaN(r.Accuracy) {
		t.Errorf("status %s stopped_by %s epochs_run %d accuracy %g: want ok, max_train_time, 1, measured", r.Status, r.StoppedBy, r.EpochsRun, r.Accuracy)
	}
}

func TestCanceled(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 200, 8, 0.25, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := run(t, ctx, Config{}, candidates(t, mem, cand(4, 3, 1, 8, 1e-2, 50)), ds)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestInputErrors(t *testing.T) {
	mem := checked(t)
	noTest := data(t, mem, dataset.GenBlobs, 100, 9, 0, 0)
	_, _, err := run(t, context.Background(), Config{}, candidates(t, mem, cand(4, 3, 0, 0, 1e-2, 1)), noTest)
	var ie *sdk.InputError
	if !errors.As(err, &ie) || ie.Port != DatasetPort || !strings.Contains(err.Error(), "no test rows") {
		t.Errorf("got %v, want an input error on the dataset port about test rows", err)
	}
	// The requirements table on the dataset port.
	cs := candidates(t, mem, cand(4, 3, 0, 0, 1e-2, 1))
	_, _, err = run(t, context.Background(), Config{}, cs, cs)
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "sweetspot.task") {
		t.Errorf("got %v, want an input error about the dataset metadata", err)
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		path string
	}{
		{"parallelism", Config{Parallelism: ptr(0)}, "parallelism"},
		{"epochs", Config{Epochs: ptr(0)}, "epochs"},
		{"patience", Config{Patience: ptr(-1)}, "patience"},
		{"latency", Config{LatencySamples: ptr(0)}, "latency_samples"},
		{"throughput", Config{ThroughputBatch: ptr(0)}, "throughput_batch"},
		{"time", Config{MaxTrainTime: ptr(-time.Second)}, "max_train_time"},
		{"holdout", Config{HoldoutFraction: ptr(1.0)}, "holdout_fraction"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) || len(ds) != 1 || !cmp.Equal(ds[0].Path, []string{c.path}) {
				t.Errorf("got %v, want one diagnostic on %s", err, c.path)
			}
		})
	}
}

func TestBuildReadRoundTrip(t *testing.T) {
	mem := checked(t)
	ok := tables.NewResult(cand(4, 3, 1, 8, 1e-2, 3))
	ok.Status, ok.Accuracy, ok.Loss, ok.ModelBytes, ok.PeakBytes, ok.EpochsRun, ok.StoppedBy = tables.StatusOK, 0.9, 0.3, 100, 2000, 3, "epochs"
	failed := tables.NewResult(cand(4, 3, 0, 0, 1e-2, 3))
	failed.Error = "boom"
	rec := tables.BuildResults(mem, []tables.Result{ok, failed})
	defer rec.Release()
	got, err := tables.ReadResults(rec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]tables.Result{ok, failed}, got, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := rec.Column(rec.Schema().FieldIndices("accuracy")[0]).NullN(); n != 1 {
		t.Errorf("accuracy has %d nulls, want 1", n)
	}
}

func TestNearestRank(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if got := []float64{NearestRank(v, 0.5), NearestRank(v, 0.95), NearestRank(v[:1], 0.95)}; !cmp.Equal(got, []float64{5, 10, 1}) {
		t.Errorf("got %v", got)
	}
}

// Over the real wire, with checked allocators on both sides: the trial
// spans continue the host's trace through the stage span, and progress
// arrives after each trial.
func TestOverTheWire(t *testing.T) {
	mem := checked(t)
	set := sdk.NewSet(sdk.WithName("evaltest"))
	Register(set)
	p := sdktest.Start(t, set, sdktest.WithTracerProvider(provider))

	ds := data(t, mem, dataset.GenBlobs, 200, 10, 0.25, 0)
	cs := candidates(t, mem, cand(4, 3, 0, 0, 1e-2, 3), cand(4, 3, 1, 8, 1e-2, 3))
	dsr := sdktest.Table(ds[0].Schema(), ds...)
	defer dsr.Release()
	csr := sdktest.Table(cs[0].Schema(), cs...)
	defer csr.Release()
	coll := sdktest.NewCollector()
	defer coll.Release()
	var mu sync.Mutex
	var progress []sdk.Progress
	ctx, root := provider.Tracer("host").Start(context.Background(), "run")
	_, err := p.Run(ctx, stagehost.RunRequest{
		Kind: Kind, Stage: "evaluation.wire",
		Config:  cty.ObjectVal(map[string]cty.Value{"latency_samples": cty.NumberIntVal(5), "parallelism": cty.NumberIntVal(2)}),
		Inputs:  map[string]array.RecordReader{InputPort: csr, DatasetPort: dsr},
		Outputs: map[string]func(arrow.RecordBatch) error{OutputPort: coll.Port(OutputPort)},
		OnProgress: func(pr sdk.Progress) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, pr)
		},
	})
	root.End()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := tables.ReadResults(coll.Batches[OutputPort][0])
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Status != tables.StatusOK || r.TraceID != root.SpanContext().TraceID().String() {
			t.Errorf("%s: %s, trace %s (host's %s)", r.ID, r.Status, r.TraceID, root.SpanContext().TraceID())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var last sdk.Progress
	for _, pr := range progress {
		if pr.Total == 2 {
			last = pr
		}
	}
	if last.Done != 2 || last.Metrics["accuracy"] == 0 {
		t.Errorf("progress events %+v, want the last at 2 of 2 with an accuracy", progress)
	}
}
