package replay

import (
	"compress/gzip"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// spans records every span of the package's tests: the lookup spans use
// the global tracer provider, as in a plugin process.
var (
	spans    = tracetest.NewSpanRecorder()
	provider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
)

func TestMain(m *testing.M) {
	otel.SetTracerProvider(provider)
	os.Exit(m.Run())
}

// checked returns an allocator that must be empty when the test and its
// cleanups are done.
func checked(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

// writeFile writes a file into a fresh directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// cand is a candidate of a 16-feature, 4-class task, counted as
// model_choice counts.
func cand(family string, depth, width int32) tables.Candidate {
	p, f := mlp.Count(mlp.LayerSizes(16, int64(depth), int64(width), 4))
	c := tables.Candidate{
		ID: family + "-d" + itoa(depth) + "-w" + itoa(width), Family: family, Depth: depth, Width: width,
		Params: p, FLOPs: f, LearningRate: 0.003, BatchSize: 64, Epochs: 25, Preprocess: "standardize", Quantize: "none",
	}
	return c.WithDefaults()
}

func mlpCand(depth, width int32) tables.Candidate { return cand(tables.FamilyMLP, depth, width) }

func itoa(v int32) string { return canonical(float64(v), 64) }

// output is a run's results: the evaluation columns and the replay ones.
type output struct {
	results []tables.Result
	source  []string
	lo, hi  []int32 // -1 for null
}

// runStage runs the stage in process on the candidates.
func runStage(t *testing.T, mem memory.Allocator, cfg Config, cands ...tables.Candidate) (output, error) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	in := tables.BuildCandidates(mem, cands)
	defer in.Release()
	// The stage allocates through sdk.Allocator, which only the SDK sets:
	// TestConformance checks its releases, over the wire.
	out, err := stagetest.Run(t, context.Background(), Info(), st, stagetest.Inputs{InputPort: {in}})
	if err != nil {
		return output{}, err
	}
	bs := out.Batches(OutputPort)
	if len(bs) != 1 {
		t.Fatalf("%d result batches, want 1", len(bs))
	}
	return readOutput(t, bs[0]), nil
}

func readOutput(t testing.TB, b arrow.RecordBatch) output {
	t.Helper()
	if !b.Schema().Equal(Schema) {
		t.Fatalf("schema %s, want %s", b.Schema(), Schema)
	}
	rs, err := tables.ReadResults(b)
	if err != nil {
		t.Fatal(err)
	}
	o := output{results: rs}
	n := len(tables.ResultsSchema.Fields())
	src := b.Column(n).(*array.String)
	lo := b.Column(n + 1).(*array.Int32)
	hi := b.Column(n + 2).(*array.Int32)
	for i := range int(b.NumRows()) {
		o.source = append(o.source, src.Value(i))
		get := func(a *array.Int32) int32 {
			if a.IsNull(i) {
				return -1
			}
			return a.Value(i)
		}
		o.lo = append(o.lo, get(lo))
		o.hi = append(o.hi, get(hi))
	}
	return o
}

// measured is the part of a result a table provides.
type measured struct {
	ID                      string
	Accuracy, Loss, P95     float64
	Bytes                   int64
	TrainSeconds            float64
	EpochsRun, BestEpoch    int32
	StoppedBy, Status, Err  string
	Source                  string
	Lo, Hi                  int32
	ValLoss, Throughput, R2 float64
}

func (o output) measured() []measured {
	out := make([]measured, len(o.results))
	for i, r := range o.results {
		out[i] = measured{
			ID: r.ID, Accuracy: r.Accuracy, Loss: r.Loss, P95: r.LatencyP95Ms, Bytes: r.ModelBytes,
			TrainSeconds: r.TrainSeconds, EpochsRun: r.EpochsRun, BestEpoch: r.BestEpoch,
			StoppedBy: r.StoppedBy, Status: r.Status, Err: r.Error, Source: o.source[i], Lo: o.lo[i], Hi: o.hi[i],
			ValLoss: r.ValLoss, Throughput: r.ThroughputPerS, R2: r.R2,
		}
	}
	return out
}

var nan = math.NaN()

// approx compares floats to 1e-12 and NaN equal to NaN.
var approx = cmp.Options{cmpopts.EquateNaNs(), cmpopts.EquateApprox(0, 1e-12)}

const zoo = `family,depth,width,accuracy,loss,latency_p95_ms,model_bytes,train_seconds,epochs_run,stopped_by
linear,0,0,0.71,0.9,0.001,272,0.5,20,epochs
mlp,1,16,0.80,0.6,0.010,1000,1.0,10,early_stopping
mlp,1,32,0.85,0.5,0.020,2000,2.0,20,epochs
mlp,1,64,0.90,0.4,0.030,4000,4.0,30,epochs
mlp,2,16,0.82,0.55,0.015,1500,1.5,15,epochs
mlp,2,64,0.92,0.35,0.045,6000,6.0,25,epochs
`

// namedCSV is a zoo of named models, as model_choice's table family reads
// it: a comment, the header on line 2, the models on lines 3 to 7. s is
// an axis family's knob.
const namedCSV = `# four models of two families
name,family,param_count,accuracy,latency_p95_ms,s
small-a,a,100,0.80,0.1,1
mid-a,a,400,0.85,0.2,2
big-a,a,1600,0.90,0.4,4
small-b,b,150,0.82,0.15,1
mid-b,b,600,0.87,0.25,2
`

func TestExactLookups(t *testing.T) {
	mem := checked(t)
	path := writeFile(t, "zoo.csv", zoo)
	spans.Reset()
	out, err := runStage(t, mem, Config{Path: path},
		mlpCand(1, 64), cand(tables.FamilyLinear, 0, 0), mlpCand(2, 16), mlpCand(1, 16))
	if err != nil {
		t.Fatal(err)
	}
	want := []measured{
		{ID: "mlp-d1-w64", Accuracy: 0.90, Loss: 0.4, P95: 0.030, Bytes: 4000, TrainSeconds: 4, EpochsRun: 30, StoppedBy: "epochs", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "linear-d0-w0", Accuracy: 0.71, Loss: 0.9, P95: 0.001, Bytes: 272, TrainSeconds: 0.5, EpochsRun: 20, StoppedBy: "epochs", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "mlp-d2-w16", Accuracy: 0.82, Loss: 0.55, P95: 0.015, Bytes: 1500, TrainSeconds: 1.5, EpochsRun: 15, StoppedBy: "epochs", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "mlp-d1-w16", Accuracy: 0.80, Loss: 0.6, P95: 0.010, Bytes: 1000, TrainSeconds: 1, EpochsRun: 10, StoppedBy: "early_stopping", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
	}
	if diff := cmp.Diff(want, out.measured(), approx); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	// The candidates' own columns pass through untouched.
	if diff := cmp.Diff(mlpCand(1, 64), out.results[0].Candidate); diff != "" {
		t.Errorf("candidate columns (-want +got):\n%s", diff)
	}

	// One span per lookup, with the evaluation trial's attributes, and its
	// trace id in the row.
	var ended []sdktrace.ReadOnlySpan
	for _, sp := range spans.Ended() {
		if strings.HasPrefix(sp.Name(), "trial ") { // not the run's own span
			ended = append(ended, sp)
		}
	}
	if len(ended) != 4 {
		t.Fatalf("%d spans, want 4", len(ended))
	}
	sp := ended[0]
	if sp.Name() != "trial mlp-d1-w64" || sp.Status().Code != codes.Ok {
		t.Errorf("span %q status %v", sp.Name(), sp.Status())
	}
	attrs := map[attribute.Key]attribute.Value{}
	for _, kv := range sp.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	for k, v := range map[string]any{
		"candidate_id": "mlp-d1-w64", "family": "mlp", "width": int64(64), "depth": int64(1), "params": mlpCand(1, 64).Params,
		"learning_rate": 0.003, "batch_size": int64(64), "epochs": int64(25), "preprocess": "standardize", "quantize": "none",
		"status": "ok", "accuracy": 0.9, "latency_p95_ms": 0.03, "model_bytes": int64(4000), "train_seconds": 4.0,
		"epochs_run": int64(30), "replay.source": "exact", "replay.row": "line 5", "replay.table": path,
	} {
		if got, ok := attrs[attribute.Key(k)]; !ok || got.AsInterface() != v {
			t.Errorf("span attribute %s = %v, want %v", k, got.AsInterface(), v)
		}
	}
	if got, want := out.results[0].TraceID, sp.SpanContext().TraceID().String(); got != want {
		t.Errorf("trace_id %q, span's %q", got, want)
	}
}

func TestInterpolation(t *testing.T) {
	mem := checked(t)
	path := writeFile(t, "zoo.csv", zoo)
	out, err := runStage(t, mem, Config{Path: path, Interpolate: InterpolateLogWidth},
		mlpCand(1, 32), mlpCand(1, 20), mlpCand(2, 32), mlpCand(1, 16))
	if err != nil {
		t.Fatal(err)
	}
	// 20 lies log(20/16)/log(2) = 0.3219 of the way from 16 to 32.
	f := math.Log2(20.0 / 16)
	lerp := func(a, b float64) float64 { return a + f*(b-a) }
	want := []measured{
		{ID: "mlp-d1-w32", Accuracy: 0.85, Loss: 0.5, P95: 0.020, Bytes: 2000, TrainSeconds: 2, EpochsRun: 20, StoppedBy: "epochs", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "mlp-d1-w20", Accuracy: lerp(0.80, 0.85), Loss: lerp(0.6, 0.5), P95: lerp(0.010, 0.020), Bytes: int64(math.Round(lerp(1000, 2000))),
			TrainSeconds: lerp(1, 2), EpochsRun: int32(math.Round(lerp(10, 20))), StoppedBy: "early_stopping", Status: "ok",
			Source: "interpolated", Lo: 16, Hi: 32, ValLoss: nan, Throughput: nan, R2: nan},
		// Depth 2 has no width 32: halfway between 16 and 64 in log width.
		{ID: "mlp-d2-w32", Accuracy: 0.87, Loss: 0.45, P95: 0.030, Bytes: 3750, TrainSeconds: 3.75, EpochsRun: 20, StoppedBy: "epochs", Status: "ok",
			Source: "interpolated", Lo: 16, Hi: 64, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "mlp-d1-w16", Accuracy: 0.80, Loss: 0.6, P95: 0.010, Bytes: 1000, TrainSeconds: 1, EpochsRun: 10, StoppedBy: "early_stopping", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
	}
	if diff := cmp.Diff(want, out.measured(), approx); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}

	// No extrapolation: beyond the measured widths is still an error, saying why.
	_, err = runStage(t, mem, Config{Path: path, Interpolate: InterpolateLogWidth}, mlpCand(1, 128))
	var ie *sdk.InputError
	if !errors.As(err, &ie) || !strings.Contains(ie.Error(), "interpolation needs measured widths on both sides of 128, and with these other keys the table has widths 16..64 only") {
		t.Errorf("got %v", err)
	}
}

// A failed row replays as a failed trial, and is not interpolated from.
func TestFailedRows(t *testing.T) {
	mem := checked(t)
	path := writeFile(t, "zoo.csv", `family,depth,width,accuracy,status,error
mlp,1,8,0.7,ok,
mlp,1,16,,failed,loss turned NaN
mlp,1,64,0.9,,
`)
	out, err := runStage(t, mem, Config{Path: path, Interpolate: InterpolateLogWidth}, mlpCand(1, 16), mlpCand(1, 32), mlpCand(1, 64))
	if err != nil {
		t.Fatal(err)
	}
	got := out.measured()
	if got[0].Status != "failed" || got[0].Err != "loss turned NaN" || !math.IsNaN(got[0].Accuracy) {
		t.Errorf("failed row replayed as %+v", got[0])
	}
	// Width 32 is interpolated between 8 and 64, skipping the failed 16.
	if got[1].Lo != 8 || got[1].Hi != 64 || got[1].Status != "ok" || math.Abs(got[1].Accuracy-(0.7+0.2*2.0/3)) > 1e-12 {
		t.Errorf("width 32 replayed as %+v", got[1])
	}
	if got[2].Status != "ok" {
		t.Errorf("an empty status is ok, got %q", got[2].Status)
	}
}

func TestMissingKey(t *testing.T) {
	mem := checked(t)
	path := writeFile(t, "zoo.csv", zoo)
	cases := []struct {
		name   string
		cfg    Config
		cands  []tables.Candidate
		row    int64
		column string
		msg    string
	}{
		{
			name: "width between measured ones", cfg: Config{Path: path},
			cands: []tables.Candidate{mlpCand(1, 16), mlpCand(1, 40)}, row: 1, column: "width",
			msg: `no measured result for candidate mlp-d1-w40 (family="mlp", depth=1, width=40) in ` + path +
				`; nearest measured: (family="mlp", depth=1, width=32), (family="mlp", depth=1, width=64), (family="mlp", depth=1, width=16), ` +
				`(family="mlp", depth=2, width=64), (family="mlp", depth=2, width=16); set interpolate = "log_width" to interpolate between measured widths`,
		},
		{
			// Same depth first, however close another depth's width.
			name: "a depth the table lacks", cfg: Config{Path: path, Interpolate: InterpolateLogWidth},
			cands: []tables.Candidate{mlpCand(3, 16), mlpCand(1, 200), mlpCand(1, 100)}, row: 0, column: "depth",
			msg: `no measured result for candidate mlp-d3-w16 (family="mlp", depth=3, width=16) in ` + path +
				`; nearest measured: (family="mlp", depth=2, width=16), (family="mlp", depth=2, width=64), (family="mlp", depth=1, width=16), ` +
				`(family="mlp", depth=1, width=32), (family="mlp", depth=1, width=64) (2 more candidates are missing too: mlp-d1-w200, mlp-d1-w100)`,
		},
		{
			name: "beyond the measured widths", cfg: Config{Path: path},
			cands: []tables.Candidate{mlpCand(2, 8)}, row: 0, column: "width",
			msg: `no measured result for candidate mlp-d2-w8 (family="mlp", depth=2, width=8) in ` + path +
				`; nearest measured: (family="mlp", depth=2, width=16), (family="mlp", depth=2, width=64), (family="mlp", depth=1, width=16), ` +
				`(family="mlp", depth=1, width=32), (family="mlp", depth=1, width=64)`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			spans.Reset()
			_, err := runStage(t, mem, c.cfg, c.cands...)
			// The failed lookup's span says why (the error adds the others).
			found := false
			for _, sp := range spans.Ended() {
				if sp.Name() != "trial "+c.cands[c.row].ID {
					continue
				}
				found = true
				if d := sp.Status().Description; sp.Status().Code != codes.Error || d == "" || !strings.HasPrefix(c.msg, d) {
					t.Errorf("span %s: status %v", sp.Name(), sp.Status())
				}
			}
			if !found {
				t.Errorf("no span for the lookup of %s", c.cands[c.row].ID)
			}
			var ie *sdk.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an input error", err)
			}
			if ie.Port != InputPort || ie.Row != c.row || ie.Column != c.column {
				t.Errorf("port %q row %d column %q, want %q %d %q", ie.Port, ie.Row, ie.Column, InputPort, c.row, c.column)
			}
			if diff := cmp.Diff(c.msg, ie.Err.Error()); diff != "" {
				t.Errorf("message (-want +got):\n%s", diff)
			}
		})
	}
}

// A table that names things otherwise is mapped with columns, keys
// included.
func TestColumnMapping(t *testing.T) {
	mem := checked(t)
	path := writeFile(t, "zoo.csv", `arch,layers,hidden,top1,ms_p95,seconds
mlp,1,16,0.8,0.5,12
mlp,1,32,0.85,0.7,20
`)
	cfg := Config{Path: path, Columns: map[string]string{
		"family": "arch", "depth": "layers", "width": "hidden",
		"accuracy": "top1", "latency_p95_ms": "ms_p95", "train_seconds": "seconds",
	}}
	out, err := runStage(t, mem, cfg, mlpCand(1, 32), mlpCand(1, 16))
	if err != nil {
		t.Fatal(err)
	}
	want := []measured{
		{ID: "mlp-d1-w32", Accuracy: 0.85, Loss: nan, P95: 0.7, Bytes: -1, TrainSeconds: 20, Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "mlp-d1-w16", Accuracy: 0.8, Loss: nan, P95: 0.5, Bytes: -1, TrainSeconds: 12, Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
	}
	if diff := cmp.Diff(want, out.measured(), approx); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}

// typedTable is the zoo with typed columns, as Parquet and Arrow hold
// it: int32 sizes, a float32 learning rate in the key, a dictionary family.
func typedTable(mem memory.Allocator) arrow.RecordBatch {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "family", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}},
		{Name: "depth", Type: arrow.PrimitiveTypes.Int32},
		{Name: "width", Type: arrow.PrimitiveTypes.Int64},
		{Name: "learning_rate", Type: arrow.PrimitiveTypes.Float32},
		{Name: "accuracy", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "model_bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "stopped_by", Type: arrow.BinaryTypes.LargeString},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	rows := []struct {
		family          string
		depth, width    int
		lr              float32
		acc             float64
		bytes           int64
		stoppedBy       string
		accNull, byNull bool
	}{
		{"mlp", 1, 16, 0.003, 0.80, 1000, "epochs", false, false},
		{"mlp", 1, 16, 0.01, 0.83, 1000, "epochs", false, true},
		{"mlp", 1, 64, 0.003, 0.90, 4000, "early_stopping", true, false},
	}
	for _, r := range rows {
		if err := b.Field(0).(*array.BinaryDictionaryBuilder).AppendString(r.family); err != nil {
			panic(err)
		}
		b.Field(1).(*array.Int32Builder).Append(int32(r.depth))
		b.Field(2).(*array.Int64Builder).Append(int64(r.width))
		b.Field(3).(*array.Float32Builder).Append(r.lr)
		if r.accNull {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Float64Builder).Append(r.acc)
		}
		if r.byNull {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.Int64Builder).Append(r.bytes)
		}
		b.Field(6).(*array.LargeStringBuilder).Append(r.stoppedBy)
	}
	return b.NewRecordBatch()
}

const typedCSV = `# The same table as typedTable, as text.
family,depth,width,learning_rate,accuracy,model_bytes,stopped_by
mlp,1,16,0.003,0.80,1000,epochs
mlp,1,16.0,0.01,0.83,,epochs
mlp,1,64,0.003,NA,4000,early_stopping
`

func TestFormats(t *testing.T) {
	mem := checked(t)
	dir := t.TempDir()
	rec := typedTable(mem)
	defer rec.Release()
	write := func(name string, f func(*os.File) error) string {
		p := filepath.Join(dir, name)
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := f(fh); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// pqarrow.WriteTable closes the file itself.
		if err := fh.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			t.Fatal(err)
		}
		return p
	}
	files := map[string]string{
		"csv": write("zoo.csv", func(f *os.File) error { _, err := f.WriteString(typedCSV); return err }),
		"csv.gz": write("zoo.csv.gz", func(f *os.File) error {
			zw := gzip.NewWriter(f)
			if _, err := zw.Write([]byte(typedCSV)); err != nil {
				return err
			}
			return zw.Close()
		}),
		"parquet": write("zoo.parquet", func(f *os.File) error {
			tbl := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
			defer tbl.Release()
			return pqarrow.WriteTable(tbl, f, 2, nil, pqarrow.DefaultWriterProps())
		}),
		"arrow file": write("zoo.arrow", func(f *os.File) error {
			w, err := ipc.NewFileWriter(f, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
			if err != nil {
				return err
			}
			// Two batches: the table is read whole.
			first, rest := rec.NewSlice(0, 1), rec.NewSlice(1, rec.NumRows())
			defer first.Release()
			defer rest.Release()
			if err := w.Write(first); err != nil {
				return err
			}
			if err := w.Write(rest); err != nil {
				return err
			}
			return w.Close()
		}),
		"arrow stream": write("zoo.arrows", func(f *os.File) error {
			w := ipc.NewWriter(f, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
			if err := w.Write(rec); err != nil {
				return err
			}
			return w.Close()
		}),
	}
	lr := func(c tables.Candidate, v float64) tables.Candidate { c.LearningRate = v; return c }
	cands := []tables.Candidate{lr(mlpCand(1, 16), 0.01), lr(mlpCand(1, 64), 0.003), lr(mlpCand(1, 16), 0.003)}
	want := []measured{
		{ID: "mlp-d1-w16", Accuracy: 0.83, Loss: nan, P95: nan, Bytes: -1, StoppedBy: "epochs", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "mlp-d1-w64", Accuracy: nan, Loss: nan, P95: nan, Bytes: 4000, StoppedBy: "early_stopping", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
		{ID: "mlp-d1-w16", Accuracy: 0.80, Loss: nan, P95: nan, Bytes: 1000, StoppedBy: "epochs", Status: "ok", Source: "exact", Lo: -1, Hi: -1, ValLoss: nan, Throughput: nan, R2: nan},
	}
	for name, p := range files {
		t.Run(name, func(t *testing.T) {
			// Rows differ only in learning_rate: it must be in the key, and
			// the float32 column must match the candidates' float64 0.003.
			out, err := runStage(t, mem, Config{Path: p, Key: []string{"family", "depth", "width", "learning_rate"}}, cands...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, out.measured(), approx); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
		})
	}
}

func diagPaths(err error) []string {
	var ds sdk.Diagnostics
	if !errors.As(err, &ds) {
		return []string{"not diagnostics: " + err.Error()}
	}
	var out []string
	for _, d := range ds {
		out = append(out, strings.Join(d.Path, ".")+": "+d.Summary+": "+d.Detail)
	}
	return out
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	csvPath := writeFile(t, "zoo.csv", zoo)
	odd := writeFile(t, "zoo.txt", zoo)
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"missing path", Config{}, []string{"path: Missing table path: path names the table of measured results: a CSV, TSV, Parquet or Arrow IPC file."}},
		{"relative path not found", Config{Path: "zoo.csv", BaseDir: dir}, []string{
			`path: Table file not found: No file at "` + filepath.Join(dir, "zoo.csv") + `" ("zoo.csv" relative to the pipeline's directory).`}},
		{"directory", Config{Path: dir}, []string{`path: Table path is a directory: "` + dir + `" is a directory; name a file.`}},
		{"format from an unknown extension", Config{Path: odd}, []string{
			`path: Unknown table format: The name "zoo.txt" does not say the format (.csv, .tsv (either with .gz), .parquet, .pq, .arrow, .arrows, .feather or .ipc); set format to one of csv, tsv, parquet, arrow.`}},
		{"unknown format", Config{Path: odd, Format: "parket"}, []string{`format: Unknown format: format must be one of csv, tsv, parquet, arrow; found "parket". Did you mean "parquet"?`}},
		{"bad key", Config{Path: csvPath, Key: []string{"family", "widht", "family"}}, []string{
			`key.1: Unknown candidates column: A key is a column of the candidates table (candidate_id, round, family, depth, width, params, flops, learning_rate, batch_size, epochs, preprocess, quantize, prune_fraction, name, family_kind, size, knobs, repeat, samples); found "widht". Did you mean "width"?`,
			`key.2: Duplicate key column: family is listed twice.`}},
		{"empty key", Config{Path: csvPath, Key: []string{}}, []string{
			`key: Empty key: key lists the candidates columns a table row must match, such as ["family", "depth", "width"].`}},
		{"bad columns", Config{Path: csvPath, Columns: map[string]string{"acuracy": "top1", "loss": " "}}, []string{
			`columns.acuracy: Unknown results column: columns maps a results or candidates column to the table's name for it; "acuracy" is neither. Did you mean "accuracy"? The results columns are: ` + strings.Join(resultNames(), ", ") + ".",
			`columns.loss: Empty column name: columns.loss names no table column.`}},
		// The table is checked against the key too: family and depth do not
		// tell its rows apart (lines 3 and 4 hold mlp, 1).
		{"interpolation without width", Config{Path: csvPath, Key: []string{"family", "depth"}, Interpolate: "log_width"}, []string{
			`interpolate: Interpolation needs width in the key: log_width interpolates between measured widths, so key must include width.`,
			`key: Duplicate key: ` + csvPath + `:4: family="mlp", depth=1 on line 4 is already on line 3. Add the candidates columns that tell them apart to key: width. Also on lines 5 and 7.`}},
		{"unknown interpolation", Config{Path: csvPath, Interpolate: "log-width"}, []string{
			`interpolate: Unknown interpolation: interpolate must be one of none, log_width; found "log-width". Did you mean "log_width"?`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if diff := cmp.Diff(c.want, diagPaths(err)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := New(Config{Path: "zoo.csv", BaseDir: filepath.Dir(csvPath)}); err != nil {
		t.Errorf("a path relative to base_dir: %v", err)
	}
}

// Problems of the table itself are found when the stage is configured
// (so validate reports them), each a diagnostic on the attribute to fix,
// naming the file, the line and the column.
func TestTableProblems(t *testing.T) {
	cases := []struct {
		name, file, content string
		cfg                 Config
		want                []string // diagnostics
	}{
		{name: "key column missing", file: "a.csv", content: "family,depth,hidden,accuracy\nmlp,1,16,0.8\n", want: []string{
			`key.2: No such table column: PATH:1: the header has no column "width" for the candidates' width; if the table names it otherwise, map it: columns = { width = "TABLE_COLUMN" }. ` +
				`A table of named models (model_choice's table families) needs a name column instead: map it, columns = { name = "TABLE_COLUMN" }. Its columns are: family, depth, hidden, accuracy.`}},
		{name: "key column missing, explicit key", file: "a.csv", content: "# a comment\nfamily,depth,hidden,accuracy\nmlp,1,16,0.8\n", cfg: Config{Key: []string{"family", "width"}}, want: []string{
			`key.1: No such table column: PATH:2: the header has no column "width" for the candidates' width; if the table names it otherwise, map it: columns = { width = "TABLE_COLUMN" }. Its columns are: family, depth, hidden, accuracy.`}},
		{name: "mapped column missing", file: "a.csv", content: "family,depth,width,top_1\nmlp,1,16,0.8\n", cfg: Config{Columns: map[string]string{"accuracy": "top1"}}, want: []string{
			`columns.accuracy: No such table column: PATH:1: the header has no column "top1". Did you mean "top_1"? Its columns are: family, depth, width, top_1.`}},
		{name: "no quality column", file: "a.csv", content: "family,depth,width,latency_p95_ms\nmlp,1,16,0.8\n", want: []string{
			`path: No quality column: PATH has none of accuracy, loss and rmse, so a lookup would measure nothing. If it names its metric otherwise, map it, e.g. columns = { accuracy = "top1" }. Its columns are: family, depth, width, latency_p95_ms.`}},
		{name: "duplicate key", file: "a.csv", content: "family,depth,width,learning_rate,accuracy\nmlp,1,16,0.01,0.8\nmlp,1,32,0.01,0.8\nmlp,1,16,0.1,0.7\n", want: []string{
			`key: Duplicate key: PATH:4: family="mlp", depth=1, width=16 on line 4 is already on line 2. Add the candidates columns that tell them apart to key: learning_rate.`}},
		{name: "not a number", file: "a.csv", content: "family,depth,width,accuracy\n# a comment line\nmlp,1,16,0.8\nmlp,1,3x,0.8\nmlp,2,4,0.8\nmlp,2,8,NA\n", want: []string{
			`key.2: Not a number: PATH:4: column "width": "3x" is not a number.`}},
		{name: "missing key value", file: "a.csv", content: "family,depth,width,accuracy\nmlp,1,16,0.8\nmlp,,32,0.8\nmlp,n/a,64,0.8\n", want: []string{
			`key.1: Missing key value: PATH:3: column "depth": the row has no value here: every row needs one in each key column. Also on line 4.`}},
		{name: "unknown status", file: "a.csv", content: "family,depth,width,accuracy,status\nmlp,1,16,0.8,done\n", want: []string{
			`path: Unknown trial status: PATH:2: column "status": the status is "done"; a status is one of ok, failed, pruned, infeasible.`}},
		{name: "ragged lines", file: "a.csv", content: "family,depth,width,accuracy\nmlp,1,16\nmlp,1,32,0.8\nmlp,1,64,1,014.5\n", want: []string{
			`path: Ragged line: PATH:2: the line has 3 fields, the header 4. Also on line 4.`}},
		{name: "a number split at its thousands separator", file: "a.csv", content: "family,depth,width,accuracy,latency_p95_ms\nmlp,1,64,0.8,1,014.5\n", want: []string{
			`path: Ragged line: PATH:2: the line has 6 fields, the header 5. A number written with thousands separators, such as 1,014.45, is split at its commas: write it without them (1014.45), or quote it ("1,014.45").`}},
		{name: "non-finite numbers", file: "a.csv", content: "family,depth,width,accuracy,loss\nmlp,1,16,0.8,inf\nmlp,1,32,0.8,-Infinity\n", want: []string{
			`path: Not a finite number: PATH:2: column "loss": "inf" is not a finite number. Also on line 3.`}},
		{name: "params not positive", file: "a.csv", content: "family,depth,width,accuracy,params\nmlp,1,16,0.8,0\nmlp,1,32,0.8,-5\nmlp,1,64,0.8,100\n", want: []string{
			`path: Value not positive: PATH:2: column "params": the value is 0, and a parameter count must be positive. Also on line 3.`}},
		{name: "params mapped, as a number with separators", file: "a.csv", content: "family,depth,width,accuracy,n\nmlp,1,16,0.8,\"12,000\"\n", cfg: Config{Columns: map[string]string{"params": "n"}}, want: []string{
			`columns.params: Thousands separators in a number: PATH:2: column "n": "12,000" is written with thousands separators, which a number in a table must not have: remove them (12000).`}},
		{name: "accuracy out of range", file: "a.csv", content: "family,depth,width,accuracy\nmlp,1,16,0.8\nmlp,1,32,180\nmlp,1,64,-0.1\n", want: []string{
			`path: Accuracy out of range: PATH:3: column "accuracy": accuracy is 180: accuracy is a fraction in 0..1. Also on line 4.`}},
		{name: "empty file", file: "a.csv", content: "", want: []string{
			`path: Unreadable table: PATH: the file is empty: a table needs a header line naming its columns.`}},
		{name: "bare quote", file: "a.csv", content: "family,depth,width,accuracy\nmlp,1,1\"6,0.8\n", want: []string{
			`path: Unreadable table: PATH:2:8: bare " in non-quoted-field.`}},
		{name: "not parquet", file: "a.parquet", content: "family,depth,width,accuracy\n", want: []string{
			`path: Unreadable table: PATH: not a readable Parquet file: ...`}},
		{name: "not arrow", file: "a.arrow", content: "ARROW1\x00\x00garbage", want: []string{
			`path: Unreadable table: PATH: not a readable Arrow IPC file: ...`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, c.file, c.content)
			cfg := c.cfg
			cfg.Path = p
			_, err := New(cfg)
			if err == nil {
				t.Fatal("no error")
			}
			got := diagPaths(err)
			for i := range got {
				got[i] = strings.ReplaceAll(got[i], p, "PATH")
				// arrow-go's own words may change: only the start is ours.
				if prefix, ok := strings.CutSuffix(c.want[min(i, len(c.want)-1)], "..."); ok && strings.HasPrefix(got[i], prefix) {
					got[i] = prefix + "..."
				}
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Every results column but trace_id can come from a table: a new column
// of the evaluation stage must be taught to this one.
func TestEveryResultColumn(t *testing.T) {
	mem := checked(t)
	names := resultNames()
	var header, row []string
	header = append(header, "family", "depth", "width")
	row = append(row, "mlp", "1", "16")
	for i, n := range names {
		header = append(header, n)
		switch n {
		case "status":
			row = append(row, "ok")
		case "error", "stopped_by":
			row = append(row, "text-"+n)
		case "accuracy", "accuracy_before":
			row = append(row, canonical(float64(i+1)/100, 64))
		default:
			row = append(row, canonical(float64(i+1), 64))
		}
	}
	p := writeFile(t, "all.csv", strings.Join(header, ",")+"\n"+strings.Join(row, ",")+"\n")
	st, err := New(Config{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	in := tables.BuildCandidates(mem, []tables.Candidate{mlpCand(1, 16)})
	defer in.Release()
	out, err := stagetest.Run(t, context.Background(), Info(), st, stagetest.Inputs{InputPort: {in}})
	if err != nil {
		t.Fatal(err)
	}
	b := out.Batches(OutputPort)[0]
	for i, n := range names {
		c := b.Column(b.Schema().FieldIndices(n)[0])
		var got string
		switch a := c.(type) {
		case *array.Float64:
			got = canonical(a.Value(0), 64)
		case *array.Int64:
			got = canonical(float64(a.Value(0)), 64)
		case *array.Int32:
			got = canonical(float64(a.Value(0)), 64)
		case *array.String:
			got = a.Value(0)
		}
		if c.IsNull(0) || got != row[i+3] {
			t.Errorf("column %s = %q (null %t), the table has %q", n, got, c.IsNull(0), row[i+3])
		}
	}
}

// The stage over the real protocol: the conformance suite, with the
// config as HCL, columns map included.
func TestConformance(t *testing.T) {
	mem := memory.NewGoAllocator()
	path := writeFile(t, "zoo.csv", zoo)
	in := tables.BuildCandidates(mem, []tables.Candidate{mlpCand(1, 16), mlpCand(1, 20), cand(tables.FamilyLinear, 0, 0)})
	defer in.Release()
	set := sdk.NewSet(sdk.WithName("replay-test"))
	Register(set)
	sdktest.TestStage(t, set, Kind,
		sdktest.Case{
			Name:   "interpolated",
			Config: `path = "` + path + `"` + "\n" + `interpolate = "log_width"` + "\n" + `columns = { accuracy = "accuracy" }`,
			Inputs: map[string][]arrow.RecordBatch{InputPort: {in}},
		},
		sdktest.Case{
			Name:         "missing key",
			Config:       Config{Path: path},
			Inputs:       map[string][]arrow.RecordBatch{InputPort: {in}},
			WantRunError: true,
		},
		sdktest.Case{
			Name:           "bad config",
			Config:         `path = "` + path + `"` + "\n" + `key = ["family", "depht"]` + "\n" + `interpolate = "cubic"`,
			WantErrorPaths: []string{"key.1", "interpolate"},
		},
	)
}
