package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
)

var update = flag.Bool("update", false, "rewrite golden files")

var numbersSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "name", Type: arrow.BinaryTypes.String},
}, nil)

type emitConfig struct {
	Rows      int64 `hcl:"rows" doc:"How many rows to emit."`
	BatchRows int64 `hcl:"batch_rows,optional"`
}

type emit struct{ cfg emitConfig }

func newEmit(c emitConfig) (sdk.Stage, error) {
	if c.Rows < 0 {
		return nil, sdk.AttrError("rows", "Invalid row count", "rows must not be negative.")
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 1000
	}
	return &emit{cfg: c}, nil
}

func (e *emit) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("numbers")
	if err != nil {
		return err
	}
	mem := sdk.Allocator(ctx)
	for off := int64(0); off < e.cfg.Rows; off += e.cfg.BatchRows {
		n := min(e.cfg.BatchRows, e.cfg.Rows-off)
		b := array.NewRecordBuilder(mem, numbersSchema)
		ids := b.Field(0).(*array.Int64Builder)
		names := b.Field(1).(*array.StringBuilder)
		for i := off; i < off+n; i++ {
			ids.Append(i)
			names.Append(fmt.Sprintf("row-%d", i))
		}
		rec := b.NewRecordBatch()
		b.Release()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
		sdk.ReportProgress(ctx, sdk.Progress{Done: off + n, Total: e.cfg.Rows})
	}
	return nil
}

type passthrough struct{}

func (passthrough) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	w, err := out.Writer("output")
	if err != nil {
		return err
	}
	for r.Next() {
		if err := w.Write(r.RecordBatch()); err != nil {
			return err
		}
	}
	return r.Err()
}

type funcStage func(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error

func (f funcStage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	return f(ctx, in, out)
}

type noConfig struct{}

func testSet() *sdk.Set {
	set := sdk.NewSet(sdk.WithName("test"), sdk.WithVersion("1.2.3"))
	sdk.Register(set, "emit", sdk.StageInfo{
		Description: "Emits numbered rows.",
		Outputs:     []sdk.Port{{Name: "numbers", Schema: numbersSchema}},
	}, newEmit)
	sdk.Register(set, "passthrough", sdk.StageInfo{
		Inputs:  []sdk.Port{{Name: "input"}},
		Outputs: []sdk.Port{{Name: "output"}},
	}, func(noConfig) (sdk.Stage, error) { return passthrough{}, nil })
	sdk.Register(set, "badschema", sdk.StageInfo{
		Outputs: []sdk.Port{{Name: "out", Schema: arrow.NewSchema([]arrow.Field{
			{Name: "x", Type: arrow.PrimitiveTypes.Int64},
			{Name: "y", Type: arrow.BinaryTypes.String},
		}, nil)}},
	}, func(noConfig) (sdk.Stage, error) {
		return funcStage(func(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
			w, err := out.Writer("out")
			if err != nil {
				return err
			}
			b := array.NewRecordBuilder(sdk.Allocator(ctx), arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil))
			defer b.Release()
			b.Field(0).(*array.Float64Builder).Append(1.5)
			rec := b.NewRecordBatch()
			defer rec.Release()
			return w.Write(rec)
		}), nil
	})
	sdk.Register(set, "fail", sdk.StageInfo{
		Inputs:  []sdk.Port{{Name: "input", Optional: true}},
		Outputs: []sdk.Port{{Name: "out"}},
	}, func(c struct {
		Mode string `hcl:"mode"`
	}) (sdk.Stage, error) {
		return funcStage(func(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
			switch c.Mode {
			case "panic":
				var m map[string]int
				m["boom"] = 1
			case "retry":
				return &sdk.RetryAfter{Wait: 3 * time.Second, Err: errors.New("GPU busy")}
			case "input":
				return &sdk.InputError{Port: "input", Row: 4, Column: "x", Err: errors.New("NaN")}
			case "block":
				<-ctx.Done()
				return ctx.Err()
			case "unconnected":
				_, err := in.Reader("input")
				return err
			case "info":
				ri := sdk.Info(ctx)
				return fmt.Errorf("run %s stage %s round %d dir %s", ri.RunID, ri.Stage, ri.Round, ri.WorkDir)
			case "drift":
				return writeDrift(ctx, out)
			case "undeclared":
				_, err := out.Writer("nope")
				return err
			}
			return errors.New("plain failure")
		}), nil
	})
	sdk.Register(set, "zip", sdk.StageInfo{
		Inputs:  []sdk.Port{{Name: "a"}, {Name: "b"}},
		Outputs: []sdk.Port{{Name: "counts"}},
	}, func(noConfig) (sdk.Stage, error) { return zip{}, nil })
	return set
}

func writeDrift(ctx context.Context, out sdk.Outputs) error {
	w, err := out.Writer("out")
	if err != nil {
		return err
	}
	for _, typ := range []arrow.DataType{arrow.PrimitiveTypes.Int64, arrow.PrimitiveTypes.Float64} {
		b := array.NewRecordBuilder(sdk.Allocator(ctx), arrow.NewSchema([]arrow.Field{{Name: "x", Type: typ}, {Name: "z", Type: typ}}, nil))
		b.Field(0).AppendNull()
		b.Field(1).AppendNull()
		rec := b.NewRecordBatch()
		b.Release()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// zip reads all of port b before any of port a: with the host sending
// ports one after another, or sharing one window, it would deadlock.
type zip struct{}

func (zip) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	var counts [2]int64
	for i, port := range []string{"b", "a"} {
		r, err := in.Reader(port)
		if err != nil {
			return err
		}
		for r.Next() {
			counts[i] += r.RecordBatch().NumRows()
		}
		if err := r.Err(); err != nil {
			return err
		}
	}
	w, err := out.Writer("counts")
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(sdk.Allocator(ctx), arrow.NewSchema([]arrow.Field{{Name: "b", Type: arrow.PrimitiveTypes.Int64}, {Name: "a", Type: arrow.PrimitiveTypes.Int64}}, nil))
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(counts[0])
	b.Field(1).(*array.Int64Builder).Append(counts[1])
	rec := b.NewRecordBatch()
	defer rec.Release()
	return w.Write(rec)
}

func TestDescribeGolden(t *testing.T) {
	var buf bytes.Buffer
	js, err := json.MarshalIndent(testSet().Describe(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(js)
	buf.WriteByte('\n')
	golden := filepath.Join("testdata", "describe.golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("describe (-want +got):\n%s", diff)
	}

	// The Arrow schema in the description is the port's schema.
	d := testSet().Describe()
	got, err := d.Stage("emit").Outputs[0].PortSchema()
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(numbersSchema) {
		t.Errorf("port schema = %v, want %v", got, numbersSchema)
	}
}

func TestDescribeOverRPC(t *testing.T) {
	p := sdktest.Start(t, testSet())
	got, err := p.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(testSet().Describe(), got); diff != "" {
		t.Errorf("description (-in process +over RPC):\n%s", diff)
	}
}

func TestConfigure(t *testing.T) {
	p := sdktest.Start(t, testSet())
	tests := []struct {
		name   string
		kind   string
		config cty.Value
		want   []string
	}{
		{"valid", "emit", cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(3)}), nil},
		{"constructor error", "emit", cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(-1)}), []string{"rows: Invalid row count"}},
		{"decode errors", "emit", cty.ObjectVal(map[string]cty.Value{"batch_rows": cty.StringVal("many")}), []string{
			"rows: Missing required argument", "batch_rows: Incorrect attribute value type",
		}},
		{"unknown kind", "nope", cty.EmptyObjectVal, []string{": Unknown stage kind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags, err := p.Configure(context.Background(), tt.kind, tt.config)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range diags {
				got = append(got, strings.Join(d.Path, ".")+": "+d.Summary)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunEmitAndPassthrough(t *testing.T) {
	p := sdktest.Start(t, testSet(), sdktest.WithChunkBytes(16<<10))
	ctx := context.Background()
	col := sdktest.NewCollector()
	defer col.Release()
	var progress []sdk.Progress
	res, err := p.Run(ctx, stagehost.RunRequest{
		Kind: "emit", Stage: "emit.src",
		Config:     cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(50000), "batch_rows": cty.NumberIntVal(20000)}),
		Outputs:    map[string]func(arrow.RecordBatch) error{"numbers": col.Port("numbers")},
		OnProgress: func(pr sdk.Progress) { progress = append(progress, pr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsOut["numbers"] != 50000 || col.Rows("numbers") != 50000 {
		t.Fatalf("rows out = %v, collected %d", res.RowsOut, col.Rows("numbers"))
	}
	if len(col.Batches["numbers"]) <= 3 {
		t.Errorf("got %d batches: 20000-row batches should have been split under 16 KiB", len(col.Batches["numbers"]))
	}
	if len(progress) != 3 || progress[2].Done != 50000 {
		t.Errorf("progress = %+v", progress)
	}

	// Send the collected batches through passthrough and compare.
	in := sdktest.Table(numbersSchema, col.Batches["numbers"]...)
	defer in.Release()
	col2 := sdktest.NewCollector()
	defer col2.Release()
	res, err = p.Run(ctx, stagehost.RunRequest{
		Kind: "passthrough", Stage: "passthrough.copy",
		Inputs:  map[string]array.RecordReader{"input": in},
		Outputs: map[string]func(arrow.RecordBatch) error{"output": col2.Port("output")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsOut["output"] != 50000 {
		t.Fatalf("rows out = %v", res.RowsOut)
	}
	want := concat(t, col.Batches["numbers"])
	defer want.Release()
	got := concat(t, col2.Batches["output"])
	defer got.Release()
	if !array.RecordEqual(want, got) {
		t.Error("passthrough changed the data")
	}
}

func concat(t *testing.T, bs []arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	tbl := array.NewTableFromRecords(bs[0].Schema(), bs)
	defer tbl.Release()
	cols := make([]arrow.Array, tbl.NumCols())
	for i := range cols {
		c, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Release()
		cols[i] = c
	}
	return array.NewRecordBatch(tbl.Schema(), cols, tbl.NumRows())
}

func TestRunEmptyOutputKeepsSchema(t *testing.T) {
	p := sdktest.Start(t, testSet())
	var schemas []*arrow.Schema
	res, err := p.Run(context.Background(), stagehost.RunRequest{
		Kind: "emit", Stage: "emit.none",
		Config:  cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(0)}),
		Outputs: map[string]func(arrow.RecordBatch) error{"numbers": func(b arrow.RecordBatch) error { schemas = append(schemas, b.Schema()); return nil }},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsOut["numbers"] != 0 || len(schemas) != 0 {
		t.Errorf("rows = %v, batches = %d", res.RowsOut, len(schemas))
	}
}

func TestRunErrors(t *testing.T) {
	p := sdktest.Start(t, testSet())
	mode := func(m string) cty.Value { return cty.ObjectVal(map[string]cty.Value{"mode": cty.StringVal(m)}) }
	tests := []struct {
		name    string
		kind    string
		config  cty.Value
		want    stagehost.ErrorKind
		is      error
		message string
	}{
		{"schema mismatch", "badschema", cty.EmptyObjectVal, stagehost.KindSchemaMismatch, sdk.ErrSchemaMismatch,
			`stage t.bad (plugin test): output port "out": schema mismatch: batch does not match the declared schema: missing columns y (utf8); column x is float64, declared int64`},
		{"config", "emit", cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(-2)}), stagehost.KindConfig, nil,
			"stage t.bad (plugin test): rows: Invalid row count: rows must not be negative."},
		{"panic", "fail", mode("panic"), stagehost.KindInternal, nil,
			"stage t.bad (plugin test): stage panicked: assignment to entry in nil map"},
		{"retry", "fail", mode("retry"), stagehost.KindRetryAfter, nil,
			"stage t.bad (plugin test): retry after 3s: GPU busy"},
		{"input", "fail", mode("input"), stagehost.KindInput, nil,
			`stage t.bad (plugin test): input port input, row 4, column "x": NaN`},
		{"unconnected", "fail", mode("unconnected"), stagehost.KindInternal, nil,
			`stage t.bad (plugin test): input port "input": port not connected`},
		{"plain", "fail", mode("other"), stagehost.KindInternal, nil,
			"stage t.bad (plugin test): plain failure"},
		{"schema drift", "fail", mode("drift"), stagehost.KindSchemaMismatch, sdk.ErrSchemaMismatch,
			`stage t.bad (plugin test): output port "out": schema mismatch: batch schema differs from the port's first batch: column x is float64, was int64; column z is float64, was int64`},
		{"undeclared output", "fail", mode("undeclared"), stagehost.KindInternal, nil,
			`stage t.bad (plugin test): stage fail has no output port "nope" (ports: [out])`},
		{"run info", "fail", mode("info"), stagehost.KindInternal, nil,
			"stage t.bad (plugin test): run r-1 stage t.bad round 2 dir /tmp/w"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.Run(context.Background(), stagehost.RunRequest{Kind: tt.kind, Stage: "t.bad", Config: tt.config,
				RunID: "r-1", Round: 2, WorkDir: "/tmp/w"})
			var re *stagehost.RunError
			if !errors.As(err, &re) {
				t.Fatalf("error = %v (%T), want a *RunError", err, err)
			}
			if re.Kind != tt.want {
				t.Errorf("kind = %v, want %v", re.Kind, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(err, %v) = false", tt.is)
			}
			if err.Error() != tt.message {
				t.Errorf("message:\n got %s\nwant %s", err, tt.message)
			}
		})
	}

	t.Run("retry after is typed", func(t *testing.T) {
		_, err := p.Run(context.Background(), stagehost.RunRequest{Kind: "fail", Stage: "t.r", Config: mode("retry")})
		var ra *sdk.RetryAfter
		if !errors.As(err, &ra) || ra.Wait != 3*time.Second {
			t.Errorf("errors.As(RetryAfter) = %v, %+v", err, ra)
		}
	})
	t.Run("config diagnostics are typed", func(t *testing.T) {
		_, err := p.Run(context.Background(), stagehost.RunRequest{Kind: "emit", Stage: "t.c", Config: cty.ObjectVal(map[string]cty.Value{"rows": cty.StringVal("x")})})
		var ds sdk.Diagnostics
		if !errors.As(err, &ds) || len(ds) != 1 || strings.Join(ds[0].Path, ".") != "rows" {
			t.Errorf("errors.As(Diagnostics) = %v, %+v", err, ds)
		}
	})
}

func TestRunCancel(t *testing.T) {
	p := sdktest.Start(t, testSet())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := p.Run(ctx, stagehost.RunRequest{Kind: "fail", Stage: "t.block",
		Config: cty.ObjectVal(map[string]cty.Value{"mode": cty.StringVal("block")})})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want deadline exceeded", err)
	}
	var re *stagehost.RunError
	if !errors.As(err, &re) || re.Kind != stagehost.KindCanceled {
		t.Errorf("error = %#v, want kind canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// The plugin is still usable.
	if _, err := p.Run(context.Background(), stagehost.RunRequest{Kind: "emit", Stage: "t.after",
		Config: cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(1)})}); err != nil {
		t.Errorf("run after cancel: %v", err)
	}
}

// TestTraceCrossesTheBoundary checks that the plugin's stage span is in the
// host's trace, a direct child of the host span that made the call.
func TestTraceCrossesTheBoundary(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	p := sdktest.Start(t, testSet(), sdktest.WithTracerProvider(tp))

	ctx, host := tp.Tracer("host").Start(context.Background(), "stage emit.src")
	_, err := p.Run(ctx, stagehost.RunRequest{Kind: "emit", Stage: "emit.src",
		Config: cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(10)})})
	host.End()
	if err != nil {
		t.Fatal(err)
	}
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		spans[s.Name()] = s
	}
	stage, ok := spans["stage emit"]
	if !ok {
		t.Fatalf("no plugin stage span among %v", names(rec.Ended()))
	}
	hostSC := host.SpanContext()
	if stage.Parent().SpanID() != hostSC.SpanID() || stage.SpanContext().TraceID() != hostSC.TraceID() {
		t.Errorf("stage span parent = %v, want the host span %v", stage.Parent().SpanID(), hostSC.SpanID())
	}
	if !stage.Parent().IsRemote() {
		t.Error("the stage span's parent should come from across the wire")
	}
	attrs := map[string]string{}
	for _, a := range stage.Attributes() {
		attrs[string(a.Key)] = a.Value.Emit()
	}
	if attrs["plugin"] != "test" || attrs["kind"] != "emit" || attrs["pid"] != fmt.Sprint(os.Getpid()) {
		t.Errorf("stage span attributes = %v", attrs)
	}
}

func names(spans []sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name())
	}
	return out
}

// TestSDKDoesNotImportPipeline keeps the plugin-author API free of the host.
func TestSDKDoesNotImportPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/sweetspot-ml/sweetspot/pipeline") || strings.HasPrefix(pkg, "github.com/sweetspot-ml/sweetspot/cmd") {
			t.Errorf("sdk depends on %s", pkg)
		}
	}
}

func numbers(t *testing.T, mem memory.Allocator, batches, rows int) array.RecordReader {
	t.Helper()
	var bs []arrow.RecordBatch
	for i := 0; i < batches; i++ {
		b := array.NewRecordBuilder(mem, numbersSchema)
		for j := 0; j < rows; j++ {
			b.Field(0).(*array.Int64Builder).Append(int64(j))
			b.Field(1).(*array.StringBuilder).Append("n")
		}
		bs = append(bs, b.NewRecordBatch())
		b.Release()
	}
	r := sdktest.Table(numbersSchema, bs...)
	for _, b := range bs {
		b.Release()
	}
	return r
}

// TestPortsAreIndependent feeds two ports, each with many more messages
// than the credit window, to a stage that drains the second first.
func TestPortsAreIndependent(t *testing.T) {
	p := sdktest.Start(t, testSet())
	a := numbers(t, p.HostMem, 50, 10)
	defer a.Release()
	b := numbers(t, p.HostMem, 30, 7)
	defer b.Release()
	var got string
	_, err := p.Run(context.Background(), stagehost.RunRequest{
		Kind: "zip", Stage: "zip.z",
		Inputs:     map[string]array.RecordReader{"a": a, "b": b},
		InputOrder: []string{"a", "b"},
		Outputs: map[string]func(arrow.RecordBatch) error{"counts": func(r arrow.RecordBatch) error {
			got = fmt.Sprintf("b=%d a=%d", r.Column(0).(*array.Int64).Value(0), r.Column(1).(*array.Int64).Value(0))
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got != "b=210 a=500" {
		t.Errorf("counts = %q", got)
	}
}

type failingReader struct {
	array.RecordReader
	err error
}

func (r failingReader) Next() bool { return false }
func (r failingReader) Err() error { return r.err }

func TestHostSideFailures(t *testing.T) {
	p := sdktest.Start(t, testSet())
	t.Run("input reader fails", func(t *testing.T) {
		in := numbers(t, p.HostMem, 1, 1)
		defer in.Release()
		boom := errors.New("disk on fire")
		_, err := p.Run(context.Background(), stagehost.RunRequest{
			Kind: "passthrough", Stage: "p.in",
			Inputs: map[string]array.RecordReader{"input": failingReader{in, boom}},
		})
		var re *stagehost.RunError
		if !errors.As(err, &re) || re.Kind != stagehost.KindInput || re.Port != "input" || !errors.Is(err, boom) {
			t.Fatalf("error = %v", err)
		}
	})
	t.Run("output function fails", func(t *testing.T) {
		stop := errors.New("enough")
		calls := 0
		_, err := p.Run(context.Background(), stagehost.RunRequest{
			Kind: "emit", Stage: "e.out",
			Config: cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(100000), "batch_rows": cty.NumberIntVal(10)}),
			Outputs: map[string]func(arrow.RecordBatch) error{"numbers": func(arrow.RecordBatch) error {
				calls++
				if calls == 3 {
					return stop
				}
				return nil
			}},
		})
		if !errors.Is(err, stop) {
			t.Fatalf("error = %v, want the output function's", err)
		}
		if !strings.Contains(err.Error(), `stage e.out (plugin test): output port "numbers": enough`) {
			t.Errorf("message = %q", err)
		}
	})
	t.Run("unread input is discarded", func(t *testing.T) {
		in := numbers(t, p.HostMem, 100, 10)
		defer in.Release()
		res, err := p.Run(context.Background(), stagehost.RunRequest{Kind: "emit", Stage: "e.unread",
			Config: cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(5)}),
			Inputs: map[string]array.RecordReader{"ignored": in}})
		if err != nil || res.RowsOut["numbers"] != 5 {
			t.Fatalf("Run = %v, %v", res, err)
		}
	})
	t.Run("plugin still serves", func(t *testing.T) {
		res, err := p.Run(context.Background(), stagehost.RunRequest{Kind: "emit", Stage: "e.ok",
			Config: cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(3)})})
		if err != nil || res.RowsOut["numbers"] != 3 {
			t.Fatalf("Run = %v, %v", res, err)
		}
	})
}

func TestRunCommand(t *testing.T) {
	set := testSet()
	t.Run("describe", func(t *testing.T) {
		out := captureStdout(t, func() {
			if err := set.Run([]string{"describe"}); err != nil {
				t.Fatal(err)
			}
		})
		var d describe.PluginDescription
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			t.Fatalf("describe printed %q: %v", out, err)
		}
		if diff := cmp.Diff(set.Describe(), &d); diff != "" {
			t.Errorf("describe (-want +got):\n%s", diff)
		}
	})
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"serve", "-x"}, `serve: unknown argument "-x"`},
		{[]string{"describe", "x"}, "describe takes no arguments"},
		{nil, "test is a sweetspot plugin: sweetspot starts it"},
	} {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			err := set.Run(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() {
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(r)
		done <- buf.Bytes()
	}()
	func() {
		defer func() { os.Stdout = old }()
		f()
	}()
	w.Close()
	return string(<-done)
}
