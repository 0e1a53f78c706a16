package modelchoice

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func ptr[T any](v T) *T { return &v }

// Hand-computed, layer by layer, as in the package documentation.
func TestCount(t *testing.T) {
	cases := []struct {
		name          string
		sizes         []int64
		params, flops int64
	}{
		// 4→3: 4*3+3 = 15 params; 2*4*3+3 = 27 FLOPs.
		{"iris linear", []int64{4, 3}, 15, 27},
		// 4→64: 320 / 576; 64→64: 4160 / 8256; 64→3: 195 / 387.
		{"iris d2 w64", []int64{4, 64, 64, 3}, 4675, 9219},
		// 64→32: 2080 / 4128; 32→10: 330 / 650.
		{"digits d1 w32", []int64{64, 32, 10}, 2410, 4778},
		// 10→8: 88 / 168; 8→8 twice: 72 / 136 each; 8→1: 9 / 17.
		{"regression d3 w8", []int64{10, 8, 8, 8, 1}, 241, 457},
		// A binary task has two logits: 30→2 is 62 params, 122 FLOPs.
		{"breast cancer linear", []int64{30, 2}, 62, 122},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, f := mlp.Count(c.sizes)
			if p != c.params || f != c.flops {
				t.Errorf("mlp.Count(%v) = %d params, %d FLOPs; want %d, %d", c.sizes, p, f, c.params, c.flops)
			}
		})
	}
	if diff := cmp.Diff([]int64{4, 64, 64, 3}, mlp.LayerSizes(4, 2, 64, 3)); diff != "" {
		t.Errorf("LayerSizes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{4, 3}, mlp.LayerSizes(4, 0, 0, 3)); diff != "" {
		t.Errorf("LayerSizes of the baseline (-want +got):\n%s", diff)
	}
}

func TestLadder(t *testing.T) {
	cases := []struct {
		lo, hi, steps int
		want          []int
	}{
		{4, 2048, 6, []int{4, 14, 49, 169, 588, 2048}},
		{4, 1024, 6, []int{4, 12, 37, 111, 338, 1024}},
		{8, 512, 4, []int{8, 32, 128, 512}},
		{16, 4096, 8, []int{16, 35, 78, 172, 380, 840, 1855, 4096}},
		// 1.52, 2.30, 3.48, 5.28 round to 2, 2, 3, 5: the collisions are
		// nudged up to 3 and 4.
		{1, 8, 6, []int{1, 2, 3, 4, 5, 8}},
		// Fewer integers than steps: all of them.
		{1, 4, 6, []int{1, 2, 3, 4}},
		{10, 10, 3, []int{10}},
		{4, 1024, 1, []int{64}},
		{4, 1024, 2, []int{4, 1024}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-%d x%d", c.lo, c.hi, c.steps), func(t *testing.T) {
			if diff := cmp.Diff(c.want, Ladder(c.lo, c.hi, c.steps)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Any range and step count give distinct, increasing widths spanning the
// range, as many as asked or as the range holds.
func TestLadderProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		lo := 1 + rng.IntN(100)
		hi := lo + rng.IntN(5000)
		steps := 1 + rng.IntN(maxSteps)
		got := Ladder(lo, hi, steps)
		if want := min(steps, hi-lo+1); len(got) != want {
			t.Fatalf("Ladder(%d, %d, %d) has %d widths, want %d: %v", lo, hi, steps, len(got), want, got)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("Ladder(%d, %d, %d) not increasing: %v", lo, hi, steps, got)
			}
		}
		if got[0] < lo || got[len(got)-1] > hi || (len(got) > 1 && (got[0] != lo || got[len(got)-1] != hi)) {
			t.Fatalf("Ladder(%d, %d, %d) = %v does not span the range", lo, hi, steps, got)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	type diag struct{ Path, Summary string }
	cases := []struct {
		name string
		cfg  Config
		want []diag
	}{
		{"family kind", Config{Families: []FamilyBlock{{Kind: "tabel"}}}, []diag{{"family.0", "Unknown family kind"}}},
		{"family attributes of another kind", Config{Families: []FamilyBlock{{Kind: "axis", Path: "x.csv", Axis: &AxisBlock{Name: "s", Min: 1, Max: 2}}}},
			[]diag{{"family.0.path", "Argument of another family kind"}}},
		{"table without path or size", Config{Families: []FamilyBlock{{Kind: "table"}}}, []diag{{"family.0", "Missing path"}, {"family.0", "Missing size column"}}},
		{"mlp twice", Config{Depth: []int{1}, Families: []FamilyBlock{{Kind: "mlp"}}}, []diag{{"depth", "MLP settings twice"}}},
		{"linear with mlp arguments", Config{LinearOnly: true, Depth: []int{2}, Steps: ptr(3)},
			[]diag{{"depth", "Argument only for the mlp family"}, {"steps", "Argument only for the mlp family"}}},
		{"depths", Config{Depth: []int{1, 0, 1, 99}},
			[]diag{{"depth.1", "Invalid depth"}, {"depth.2", "Duplicate depth"}, {"depth.3", "Invalid depth"}}},
		{"empty depth", Config{Depth: []int{}}, []diag{{"depth", "No depth to try"}}},
		{"width range", Config{Width: &WidthRange{Min: 64, Max: 8}}, []diag{{"width", "Empty width range"}}},
		{"width bounds", Config{Width: &WidthRange{Min: 0, Max: 1 << 30}},
			[]diag{{"width.min", "Invalid width"}, {"width.max", "Invalid width"}}},
		{"start", Config{Start: "narow"}, []diag{{"start", "Unknown start"}}},
		{"steps with a narrow start", Config{Start: "narrow", Steps: ptr(4)}, []diag{{"steps", "Steps without a ladder"}}},
		{"linear with a start", Config{LinearOnly: true, Start: "narrow"}, []diag{{"start", "Argument only for the mlp family"}}},
		{"training settings", Config{Steps: ptr(0), LearningRate: ptr(0.0), BatchSize: ptr(0), Epochs: ptr(-1)},
			[]diag{{"steps", "Invalid steps"}, {"learning_rate", "Invalid learning rate"}, {"batch_size", "Invalid batch size"}, {"epochs", "Invalid epochs"}}},
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
}

// reqBatch builds a requirements table the way the requirements stage does.
func reqBatch(t *testing.T, mem memory.Allocator, task string, features, classes *int32, maxParams *int64) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, tables.RequirementsSchema)
	defer b.Release()
	for i, f := range tables.RequirementsSchema.Fields() {
		fb := b.Field(i)
		switch f.Name {
		case "task":
			fb.(*array.StringBuilder).Append(task)
		case "metric":
			fb.(*array.StringBuilder).Append("accuracy")
		case "n_features":
			appendI32(fb, features)
		case "n_classes":
			appendI32(fb, classes)
		case "max_params":
			if maxParams == nil {
				fb.AppendNull()
			} else {
				fb.(*array.Int64Builder).Append(*maxParams)
			}
		case "cores":
			fb.(*array.Int32Builder).Append(2)
		default:
			fb.AppendNull()
		}
	}
	return b.NewRecordBatch()
}

func appendI32(b array.Builder, v *int32) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.(*array.Int32Builder).Append(*v)
}

func run(t *testing.T, cfg Config, req arrow.RecordBatch) ([]tables.Candidate, error) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(t, context.Background(), Info(), st, stagetest.Inputs{InputPort: {req}})
	if err != nil {
		return nil, err
	}
	bs := out.Batches(OutputPort)
	if len(bs) != 1 {
		t.Fatalf("%d batches, want 1", len(bs))
	}
	return tables.ReadCandidates(bs[0])
}

func ids(cs []tables.Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func TestRun(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	req := reqBatch(t, mem, "classification", ptr(int32(4)), ptr(int32(3)), nil)
	defer req.Release()

	got, err := run(t, Config{Depth: []int{2, 1}, Width: &WidthRange{Min: 8, Max: 512}, Steps: ptr(4), LearningRate: ptr(0.01), BatchSize: ptr(64), Epochs: ptr(5)}, req)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"linear-d0-w0", "mlp-d1-w8", "mlp-d1-w32", "mlp-d1-w128", "mlp-d1-w512", "mlp-d2-w8", "mlp-d2-w32", "mlp-d2-w128", "mlp-d2-w512"}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("candidates (-want +got):\n%s", diff)
	}
	// Every row is counted by the documented formula and carries the
	// training settings.
	for _, c := range got {
		p, f := mlp.Count(mlp.LayerSizes(4, int64(c.Depth), int64(c.Width), 3))
		wantC := tables.Candidate{ID: c.ID, Family: c.Family, Depth: c.Depth, Width: c.Width, Params: p, FLOPs: f,
			LearningRate: 0.01, BatchSize: 64, Epochs: 5, Preprocess: "none", Quantize: "none",
			Name: c.ID, Kind: tables.KindMLP, Size: float64(c.Width), Knobs: tables.Knobs{"depth": float64(c.Depth), "width": float64(c.Width)}}
		if diff := cmp.Diff(wantC, c); diff != "" {
			t.Errorf("%s (-want +got):\n%s", c.ID, diff)
		}
	}
	if got[0].Params != 15 || got[0].Family != "linear" {
		t.Errorf("baseline %+v, want a linear model of 15 params", got[0])
	}
}

// A narrow start trains width.min and twice it at every depth, and
// nothing wider.
func TestRunNarrowStart(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	req := reqBatch(t, mem, "classification", ptr(int32(4)), ptr(int32(3)), nil)
	defer req.Release()
	cases := []struct {
		cfg  Config
		want []string
	}{
		{Config{Start: "narrow", Depth: []int{1, 2}, Width: &WidthRange{Min: 4, Max: 128}},
			[]string{"linear-d0-w0", "mlp-d1-w4", "mlp-d1-w8", "mlp-d2-w4", "mlp-d2-w8"}},
		{Config{Start: "narrow", IncludeBaseline: ptr(false), Width: &WidthRange{Min: 100, Max: 150}},
			[]string{"mlp-d1-w100", "mlp-d1-w150"}},
		{Config{Start: "narrow", IncludeBaseline: ptr(false), Width: &WidthRange{Min: 16, Max: 16}},
			[]string{"mlp-d1-w16"}},
		{Config{Start: "ladder", IncludeBaseline: ptr(false), Width: &WidthRange{Min: 4, Max: 64}, Steps: ptr(3)},
			[]string{"mlp-d1-w4", "mlp-d1-w16", "mlp-d1-w64"}},
	}
	for _, c := range cases {
		got, err := run(t, c.cfg, req)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(c.want, ids(got)); diff != "" {
			t.Errorf("%+v: candidates (-want +got):\n%s", c.cfg, diff)
		}
	}
}

func TestRunDefaultsAndFamilies(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	reg := reqBatch(t, mem, "regression", ptr(int32(10)), ptr(int32(0)), nil)
	defer reg.Release()

	got, err := run(t, Config{}, reg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"linear-d0-w0", "mlp-d1-w4", "mlp-d1-w12", "mlp-d1-w37", "mlp-d1-w111", "mlp-d1-w338", "mlp-d1-w1024"}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("default ladder (-want +got):\n%s", diff)
	}
	// Regression has one output: 10→1 is 11 params.
	if got[0].Params != 11 || got[0].LearningRate != 1e-3 || got[0].BatchSize != 32 || got[0].Epochs != 20 {
		t.Errorf("baseline %+v", got[0])
	}

	got, err = run(t, Config{IncludeBaseline: ptr(false), Steps: ptr(2)}, reg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"mlp-d1-w4", "mlp-d1-w1024"}, ids(got)); diff != "" {
		t.Errorf("without baseline (-want +got):\n%s", diff)
	}

	got, err = run(t, Config{LinearOnly: true}, reg)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"linear-d0-w0"}, ids(got)); diff != "" {
		t.Errorf("linear family (-want +got):\n%s", diff)
	}
}

func TestRunMaxParams(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	// 4 inputs, 3 classes, depth 1: width w has 4w+w + 3w+3 = 8w+3 params.
	// The ladder 8, 32, 128, 512 has 67, 259, 1027, 4099.
	cfg := Config{Width: &WidthRange{Min: 8, Max: 512}, Steps: ptr(4)}

	req := reqBatch(t, mem, "classification", ptr(int32(4)), ptr(int32(3)), ptr(int64(1027)))
	defer req.Release()
	got, err := run(t, cfg, req)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"linear-d0-w0", "mlp-d1-w8", "mlp-d1-w32", "mlp-d1-w128"}, ids(got)); diff != "" {
		t.Errorf("under max_params = 1027 (-want +got):\n%s", diff)
	}

	tiny := reqBatch(t, mem, "classification", ptr(int32(4)), ptr(int32(3)), ptr(int64(14)))
	defer tiny.Release()
	_, err = run(t, cfg, tiny)
	var ie *sdk.InputError
	if !errors.As(err, &ie) || ie.Column != "max_params" {
		t.Fatalf("got %v, want an InputError on max_params", err)
	}
	for _, part := range []string{"max_params = 14", "linear-d0-w0", "has 15"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("error %q does not say %q", err, part)
		}
	}
}

func TestRunNeedsProfile(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cases := []struct {
		name     string
		task     string
		features *int32
		classes  *int32
		column   string
	}{
		{"no dataset", "classification", nil, nil, "n_features"},
		{"no classes", "classification", ptr(int32(4)), nil, "n_classes"},
		{"one class", "classification", ptr(int32(4)), ptr(int32(1)), "n_classes"},
		{"unknown task", "ranking", ptr(int32(4)), ptr(int32(3)), "task"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := reqBatch(t, mem, c.task, c.features, c.classes, nil)
			defer req.Release()
			_, err := run(t, Config{}, req)
			var ie *sdk.InputError
			if !errors.As(err, &ie) || ie.Column != c.column || ie.Port != InputPort {
				t.Errorf("got %v, want an InputError on %s.%s", err, InputPort, c.column)
			}
		})
	}
}

func TestReadRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	in := []tables.Candidate{
		{ID: "mlp-d1-w8", Round: 2, Family: "mlp", Depth: 1, Width: 8, Params: 67, FLOPs: 123, LearningRate: 0.1, BatchSize: 16, Epochs: 3, Preprocess: "standardize", Quantize: "int8", PruneFraction: 0.5,
			Name: "mlp-d1-w8", Kind: tables.KindMLP, Size: 8, Knobs: tables.Knobs{"depth": 1.0, "width": 8.0, "act": "relu"}},
		{ID: "vit-s", Family: "vit", Kind: tables.KindTable, Name: "vit-s", Size: 22e6, Params: 22_050_664, Knobs: tables.Knobs{"patch": 16.0}},
	}
	rec := tables.BuildCandidates(mem, in)
	defer rec.Release()
	got, err := tables.ReadCandidates(rec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAxisFamily(t *testing.T) {
	knobs, err := sdk.ParseExpression("{ channels = 4 * s, layers = 1 + floor(log(s, 2)) }")
	if err != nil {
		t.Fatal(err)
	}
	params, err := sdk.ParseExpression("9 * channels * channels * layers")
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	st, err := New(Config{Families: []FamilyBlock{{Kind: "axis", Name: "convnet", Knobs: &knobs, Params: &params,
		Axis: &AxisBlock{Name: "s", Min: 1, Max: 16, Scale: "log", Integer: &yes}}}})
	if err != nil {
		t.Fatal(err)
	}
	space := st.(*Stage).catalogs[0].models
	if len(space) != 16 {
		t.Fatalf("%d models, want every integer 1..16", len(space))
	}
	// s = 8: channels 32, layers 1 + 3 = 4, params 9·32²·4 = 36864.
	c := space[7]
	if c.Name != "convnet-s8" || c.Family != "convnet" || c.Kind != tables.KindAxis || c.Size != 8 {
		t.Errorf("8th model %s (%s, %s, size %g), want convnet-s8 of family convnet, kind axis, size 8", c.Name, c.Family, c.Kind, c.Size)
	}
	if ch, _ := c.Knobs.Number("channels"); ch != 32 {
		t.Errorf("channels %g, want 32", ch)
	}
	if l, _ := c.Knobs.Number("layers"); l != 4 {
		t.Errorf("layers %g, want 4", l)
	}
	if c.Params != 36864 {
		t.Errorf("params %d, want 36864", c.Params)
	}
	// A ladder of 4 over log params from s=1 (36 params) to s=16
	// (9·64²·5 = 184320) picks both ends.
	got := pick(space, StartLadder, 4)
	if len(got) != 4 || got[0].Name != "convnet-s1" || got[3].Name != "convnet-s16" {
		t.Errorf("ladder %v, want 4 models from convnet-s1 to convnet-s16", names(got))
	}
}

func names(cs []tables.Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}
