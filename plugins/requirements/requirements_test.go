package requirements

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func ptr[T any](v T) *T { return &v }

func TestConfigErrors(t *testing.T) {
	type diag struct{ Path, Summary string }
	cases := []struct {
		name string
		cfg  Config
		want []diag
	}{
		{"accuracy above 1", Config{MinAccuracy: ptr(95.0)}, []diag{{"min_accuracy", "Invalid min accuracy"}}},
		{"non-positive limits", Config{MaxLoss: ptr(0.0), MaxLatencyMs: ptr(-1.0), MaxParams: ptr(int64(0)), MaxModelBytes: ptr(int64(-5)), MaxTrainTime: ptr(time.Duration(0))},
			[]diag{{"max_loss", "Invalid max loss"}, {"max_latency_ms", "Invalid max latency ms"}, {"max_params", "Invalid max params"}, {"max_model_bytes", "Invalid max model bytes"}, {"max_train_time", "Invalid max train time"}}},
		{"unknown metric", Config{Metric: "acuracy"}, []diag{{"metric", "Unknown metric"}}},
		{"accuracy with a regression metric", Config{Metric: "rmse", MinAccuracy: ptr(0.9)}, []diag{{"min_accuracy", "Accuracy target on a regression metric"}}},
		{"budget", Config{Budget: &Budget{MaxTrials: ptr(0), MaxWall: ptr(-time.Second)}},
			[]diag{{"budget.max_trials", "Invalid max trials"}, {"budget.max_wall", "Invalid max wall time"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("got %v (%T), want sdk.Diagnostics", err, err)
			}
			var got []diag
			for _, d := range ds {
				got = append(got, diag{strings.Join(d.Path, "."), d.Summary})
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
	_, err := New(Config{Metric: "acuracy"})
	for _, part := range []string{"accuracy, log_loss, mae, r2, rmse", `Did you mean "accuracy"?`} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("unknown metric error %v does not say %q", err, part)
		}
	}
}

// fixedMachine keeps test results independent of the machine running them.
func fixedMachine() Machine { return Machine{Cores: 8, MemoryBytes: 16 << 30} }

func run(t *testing.T, cfg Config, in stagetest.Inputs) (tables.Requirements, arrow.RecordBatch, error) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.(*Stage).machine = fixedMachine
	out, err := stagetest.Run(t, context.Background(), Info(), st, in)
	if err != nil {
		return tables.Requirements{}, nil, err
	}
	batches := out.Batches(OutputPort)
	if len(batches) != 1 {
		t.Fatalf("%d batches, want 1", len(batches))
	}
	row, err := tables.ReadRequirements(batches[0])
	if err != nil {
		t.Fatal(err)
	}
	return row, batches[0], nil
}

// datasetBatches builds a dataset port's batches with mem, split into
// batches of 100 rows.
func datasetBatches(t *testing.T, mem memory.Allocator, o dataset.GenOptions) []arrow.RecordBatch {
	t.Helper()
	tab, err := dataset.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	var out []arrow.RecordBatch
	err = tab.WriteBatches(mem, make([]dataset.Part, tab.Rows()), 100, func(b arrow.RecordBatch) error {
		b.Retain()
		out = append(out, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func release(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

func TestRunWithoutDataset(t *testing.T) {
	cfg := Config{
		MinAccuracy: ptr(0.95), MaxLatencyMs: ptr(0.5), MaxParams: ptr(int64(200_000)),
		Budget: &Budget{MaxTrials: ptr(40), MaxWall: ptr(15 * time.Minute)},
	}
	got, rec, err := run(t, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := tables.Requirements{
		Task: "classification", Metric: "accuracy",
		MinAccuracy: ptr(0.95), MaxLatencyMs: ptr(0.5), MaxParams: ptr(int64(200_000)),
		MaxTrials: ptr(int32(40)), MaxWallSeconds: ptr(900.0),
		Cores: 8, MemoryBytes: ptr(int64(16 << 30)),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row (-want +got):\n%s", diff)
	}
	// Unset targets are nulls, not zeros.
	for _, name := range []string{"max_loss", "max_model_bytes", "max_train_seconds", "n_rows", "n_features", "n_classes"} {
		if c := rec.Column(rec.Schema().FieldIndices(name)[0]); c.IsValid(0) {
			t.Errorf("column %s is %v, want null", name, c)
		}
	}
	if !rec.Schema().Equal(tables.RequirementsSchema) {
		t.Errorf("schema %s, want %s", rec.Schema(), tables.RequirementsSchema)
	}
}

func TestRunWithDataset(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cases := []struct {
		name string
		cfg  Config
		gen  dataset.GenOptions
		want tables.Requirements
	}{
		{"classification", Config{MaxTrainTime: ptr(90 * time.Second)},
			dataset.GenOptions{Kind: dataset.GenBlobs, Rows: 250, Noise: 1, Classes: 4, Features: 6, Seed: 1},
			tables.Requirements{Task: "classification", Metric: "accuracy", MaxTrainSeconds: ptr(90.0),
				Rows: ptr(int64(250)), Features: ptr(int32(6)), Classes: ptr(int32(4)), Cores: 8, MemoryBytes: ptr(int64(16 << 30))}},
		{"regression", Config{MaxLoss: ptr(0.05), MaxModelBytes: ptr(int64(1 << 20))},
			dataset.GenOptions{Kind: dataset.GenRegression, Rows: 301, Noise: 0.1, Features: 3, Seed: 1},
			tables.Requirements{Task: "regression", Metric: "rmse", MaxLoss: ptr(0.05), MaxModelBytes: ptr(int64(1 << 20)),
				Rows: ptr(int64(301)), Features: ptr(int32(3)), Classes: ptr(int32(0)), Cores: 8, MemoryBytes: ptr(int64(16 << 30))}},
		{"explicit metric", Config{Metric: "log_loss"},
			dataset.GenOptions{Kind: dataset.GenSpirals, Rows: 10, Classes: 2, Features: 2, Seed: 1},
			tables.Requirements{Task: "classification", Metric: "log_loss",
				Rows: ptr(int64(10)), Features: ptr(int32(2)), Classes: ptr(int32(2)), Cores: 8, MemoryBytes: ptr(int64(16 << 30))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := datasetBatches(t, mem, c.gen)
			defer release(in)
			got, _, err := run(t, c.cfg, stagetest.Inputs{InputPort: in})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunTaskMismatch(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	in := datasetBatches(t, mem, dataset.GenOptions{Kind: dataset.GenRegression, Rows: 20, Features: 2, Seed: 1})
	defer release(in)
	cases := []struct {
		cfg  Config
		path string
	}{
		{Config{Metric: "accuracy"}, "metric"},
		{Config{MinAccuracy: ptr(0.9)}, "min_accuracy"},
	}
	for _, c := range cases {
		_, _, err := run(t, c.cfg, stagetest.Inputs{InputPort: in})
		var ds sdk.Diagnostics
		if !errors.As(err, &ds) || len(ds) != 1 || strings.Join(ds[0].Path, ".") != c.path {
			t.Errorf("config %+v: got %v, want one diagnostic on %s", c.cfg, err, c.path)
		}
	}
}

func TestRunBadDatasetMetadata(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	b.Field(0).(*array.Float64Builder).Append(1)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	_, _, err := run(t, Config{}, stagetest.Inputs{InputPort: {rec}})
	var ie *sdk.InputError
	if !errors.As(err, &ie) || ie.Port != InputPort || !strings.Contains(err.Error(), "sweetspot.task") {
		t.Errorf("got %v, want an InputError on port %s about sweetspot.task", err, InputPort)
	}
}

func TestMemoryBytes(t *testing.T) {
	meminfo := "MemTotal:       24683652 kB\nMemFree:         1000 kB\n"
	total := int64(24683652) * 1024
	cases := []struct {
		name string
		fs   fstest.MapFS
		want int64
	}{
		{"meminfo only", fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo)}}, total},
		{"nothing", fstest.MapFS{}, 0},
		{"cgroup v2 limit below MemTotal", fstest.MapFS{
			"proc/meminfo":     {Data: []byte(meminfo)},
			"proc/self/cgroup": {Data: []byte("0::/user.slice/job\n")},
			"sys/fs/cgroup/user.slice/job/memory.max": {Data: []byte("max\n")},
			"sys/fs/cgroup/user.slice/memory.max":     {Data: []byte("2147483648\n")},
		}, 2 << 30},
		{"cgroup v2 unlimited", fstest.MapFS{
			"proc/meminfo":             {Data: []byte(meminfo)},
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
		}, total},
		{"cgroup v1 limit", fstest.MapFS{
			"proc/meminfo":     {Data: []byte(meminfo)},
			"proc/self/cgroup": {Data: []byte("5:devices:/\n4:memory:/docker/abc\n0::/\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes":            {Data: []byte("9223372036854771712\n")},
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": {Data: []byte("536870912\n")},
		}, 512 << 20},
		{"cgroup limit above MemTotal", fstest.MapFS{
			"proc/meminfo":             {Data: []byte(meminfo)},
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("99999999999999\n")},
		}, total},
		{"garbled meminfo", fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: lots\n")}}, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := memoryBytes(c.fs); got != c.want {
				t.Errorf("memoryBytes = %d, want %d", got, c.want)
			}
		})
	}
}

func TestMeasureMachine(t *testing.T) {
	m := MeasureMachine()
	if m.Cores < 1 {
		t.Errorf("cores = %d", m.Cores)
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil && m.MemoryBytes <= 0 {
		t.Errorf("memory_bytes = %d on a machine with /proc/meminfo", m.MemoryBytes)
	}
}

func TestReadErrors(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "task", Type: arrow.PrimitiveTypes.Int32}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.Int32Builder).Append(1)
	rec := b.NewRecordBatch()
	defer rec.Release()
	_, err := tables.ReadRequirements(rec)
	if err == nil || !strings.Contains(err.Error(), "column task is int32, want utf8") || !strings.Contains(err.Error(), "column n_rows is missing") {
		t.Errorf("got %v", err)
	}
}
