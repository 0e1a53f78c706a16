package optimization

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func ptr[T any](v T) *T { return &v }

func checked(t *testing.T) *memory.CheckedAllocator {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	return mem
}

func data(t *testing.T, mem memory.Allocator, kind string, rows int, seed uint64) []arrow.RecordBatch {
	t.Helper()
	o := dataset.GenDefaults(kind)
	o.Rows, o.Seed = rows, seed
	out, err := dataset.GenerateBatches(mem, o, 0.25, 0, 0)
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

func cand(in, out int64, depth, width int32) tables.Candidate {
	family := tables.FamilyMLP
	if depth == 0 {
		family = tables.FamilyLinear
	}
	p, f := mlp.Count(mlp.LayerSizes(in, int64(depth), int64(width), out))
	c := tables.Candidate{
		ID: fmt.Sprintf("%s-d%d-w%d", family, depth, width), Family: family, Depth: depth, Width: width,
		Params: p, FLOPs: f, LearningRate: 1e-3, BatchSize: 32, Epochs: 20, Preprocess: "none", Quantize: "none",
	}
	return c.WithDefaults()
}

func candidates(t *testing.T, mem memory.Allocator, cs ...tables.Candidate) []arrow.RecordBatch {
	b := tables.BuildCandidates(mem, cs)
	t.Cleanup(b.Release)
	return []arrow.RecordBatch{b}
}

// tuningRow is a row of the tuning port.
type tuningRow struct {
	Band, Candidate  string
	Rung, Epochs     int32
	LR               float64
	Preprocess       string
	Failed           bool
	Promoted, Chosen bool
}

func runStage(t *testing.T, cfg Config, cands, ds []arrow.RecordBatch) ([]tables.Candidate, []tuningRow, []float64) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(t, context.Background(), Info(), st, stagetest.Inputs{InputPort: cands, DatasetPort: ds})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := tables.ReadCandidates(out.Batches(OutputPort)[0])
	if err != nil {
		t.Fatal(err)
	}
	tb := out.Batches(TuningPort)[0]
	var rows []tuningRow
	var losses []float64
	for i := range int(tb.NumRows()) {
		rows = append(rows, tuningRow{
			Band: tb.Column(0).(*array.String).Value(i), Candidate: tb.Column(1).(*array.String).Value(i),
			Rung: tb.Column(2).(*array.Int32).Value(i), Epochs: tb.Column(3).(*array.Int32).Value(i),
			LR: tb.Column(4).(*array.Float64).Value(i), Preprocess: tb.Column(5).(*array.String).Value(i),
			Failed:   tb.Column(6).IsNull(i),
			Promoted: tb.Column(8).(*array.Boolean).Value(i), Chosen: tb.Column(9).(*array.Boolean).Value(i),
		})
		losses = append(losses, tb.Column(6).(*array.Float64).Value(i))
	}
	return cs, rows, losses
}

// With a learning rate far too small to learn anything in a few epochs
// beside a workable one, successive halving keeps the workable one.
func TestHalvingPicksALearningRateThatLearns(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 400, 1)
	cs := candidates(t, mem, cand(4, 3, 1, 16), cand(4, 3, 1, 32))
	got, runs, losses := runStage(t, Config{LearningRate: []float64{1e-6, 1e-5, 1e-2}, HalvingEpochs: ptr(2)}, cs, ds)
	for _, c := range got {
		if c.LearningRate != 1e-2 || c.Preprocess != "standardize" {
			t.Errorf("%s: learning rate %g, preprocess %s; want 0.01 and standardize", c.ID, c.LearningRate, c.Preprocess)
		}
	}
	// One band (widths 16 and 32 share w16..63), tuned on its median
	// (lower) member: 3 runs of 2 epochs, then the best 2 for 4 epochs.
	band := "mlp-d1-w16..63"
	want := []tuningRow{
		{band, "mlp-d1-w16", 0, 2, 1e-6, "standardize", false, false, false},
		{band, "mlp-d1-w16", 0, 2, 1e-5, "standardize", false, true, false},
		{band, "mlp-d1-w16", 0, 2, 1e-2, "standardize", false, true, false},
		{band, "mlp-d1-w16", 1, 4, 1e-5, "standardize", false, false, false},
		{band, "mlp-d1-w16", 1, 4, 1e-2, "standardize", false, true, true},
	}
	if diff := cmp.Diff(want, runs); diff != "" {
		t.Errorf("tuning runs (-want +got):\n%s\nlosses %v", diff, losses)
	}
	if !(losses[2] < losses[1] && losses[1] < losses[0]) {
		t.Errorf("first-rung validation losses %v: want the larger rates ahead", losses[:3])
	}
}

func TestExpand(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 200, 2)
	base := []tables.Candidate{cand(4, 3, 0, 0), cand(4, 3, 1, 8)}
	got, runs, _ := runStage(t, Config{LearningRate: []float64{3e-3}, Preprocess: []string{"minmax"}, Quantize: []string{"none", "int8"}, Prune: []float64{0, 0.5}},
		candidates(t, mem, base...), ds)
	if len(runs) != 0 {
		t.Errorf("%d tuning runs for a single choice, want none", len(runs))
	}
	var want []tables.Candidate
	for _, c := range base {
		c.LearningRate, c.Preprocess = 3e-3, "minmax"
		for _, v := range []struct {
			suffix string
			q      string
			p      float64
		}{{"", "none", 0}, {"-p50", "none", 0.5}, {"-int8", "int8", 0}, {"-int8-p50", "int8", 0.5}} {
			e := c
			e.ID, e.Quantize, e.PruneFraction = c.ID+v.suffix, v.q, v.p
			want = append(want, e)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSuffix(t *testing.T) {
	for _, c := range []struct {
		q    string
		p    float64
		want string
	}{{"none", 0, ""}, {"int8", 0, "-int8"}, {"none", 0.5, "-p50"}, {"int8", 0.3, "-int8-p30"}, {"none", 0.125, "-p12.5"}, {"", 0.9, "-p90"}} {
		if got := Suffix(c.q, c.p); got != c.want {
			t.Errorf("Suffix(%q, %g) = %q, want %q", c.q, c.p, got, c.want)
		}
	}
}

func TestBands(t *testing.T) {
	var cs []tables.Candidate
	cs = append(cs, cand(2, 2, 0, 0))
	for _, d := range []int32{1, 2} {
		for _, w := range []int32{4, 11, 28, 73, 190, 512} {
			cs = append(cs, cand(2, 2, d, w))
		}
	}
	type band struct {
		Name           string
		Members        []string
		Representative string
	}
	var got []band
	for _, b := range Bands(cs, 2) {
		var ids []string
		for _, i := range b.Members {
			ids = append(ids, cs[i].ID)
		}
		got = append(got, band{b.Name, ids, cs[b.Representative].ID})
	}
	// log2 of 4, 11, 28, 73, 190, 512: 2, 3.5, 4.8, 6.2, 7.6, 9; halved
	// and floored: bands 1, 1, 2, 3, 3, 4.
	want := []band{{"linear", []string{"linear-d0-w0"}, "linear-d0-w0"}}
	for _, d := range []int{1, 2} {
		id := func(w int) string { return fmt.Sprintf("mlp-d%d-w%d", d, w) }
		want = append(want,
			band{fmt.Sprintf("mlp-d%d-w4..15", d), []string{id(4), id(11)}, id(4)},
			band{fmt.Sprintf("mlp-d%d-w16..63", d), []string{id(28)}, id(28)},
			band{fmt.Sprintf("mlp-d%d-w64..255", d), []string{id(73), id(190)}, id(73)},
			band{fmt.Sprintf("mlp-d%d-w256..1023", d), []string{id(512)}, id(512)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Four octaves: w1..15 {4, 11}, w16..255 {28, 73, 190}, w256..4095 {512}.
	if n := len(Bands(cs, 4)); n != 7 {
		t.Errorf("%d bands of 4 octaves, want 7", n)
	}
}

// Two preprocessings and two rates with eta 3: four pairs, then two, then
// one; PCA changes the input count, and the counts follow.
func TestPreprocessChoiceAndCounts(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 300, 3)
	got, runs, _ := runStage(t, Config{LearningRate: []float64{1e-6, 1e-2}, Preprocess: []string{"standardize+pca:0.5", "standardize"}, Eta: ptr(3), HalvingEpochs: ptr(1)},
		candidates(t, mem, cand(4, 3, 1, 8)), ds)
	var epochs []int32
	for _, r := range runs {
		epochs = append(epochs, r.Epochs)
	}
	if diff := cmp.Diff([]int32{1, 1, 1, 1, 3, 3}, epochs); diff != "" {
		t.Errorf("epochs per run (-want +got):\n%s", diff)
	}
	c := got[0]
	if c.LearningRate != 1e-2 {
		t.Errorf("learning rate %g, want 0.01", c.LearningRate)
	}
	inputs := int64(4)
	if c.Preprocess != "standardize" {
		// Half the variance of 4 blob features takes fewer than 4 axes.
		inputs = (c.Params - 8*3 - 3 - 8) / 8
		if inputs >= 4 || inputs < 1 {
			t.Errorf("%s: %d params imply %d inputs", c.Preprocess, c.Params, inputs)
		}
	}
	p, f := mlp.Count(mlp.LayerSizes(inputs, 1, 8, 3))
	if c.Params != p || c.FLOPs != f {
		t.Errorf("%s: params %d flops %d, want %d and %d", c.Preprocess, c.Params, c.FLOPs, p, f)
	}
}

func TestDeterministic(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenSpirals, 300, 4)
	cs := candidates(t, mem, cand(2, 2, 0, 0), cand(2, 2, 1, 8), cand(2, 2, 1, 32), cand(2, 2, 2, 16))
	cfg := Config{Quantize: []string{"none", "int8"}, Seed: ptr(int64(5))}
	c1, r1, l1 := runStage(t, cfg, cs, ds)
	cfg.Parallelism = ptr(2)
	c2, r2, l2 := runStage(t, cfg, cs, ds)
	if diff := cmp.Diff(c1, c2); diff != "" {
		t.Errorf("candidates differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(r1, r2); diff != "" {
		t.Errorf("runs differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(l1, l2); diff != "" {
		t.Errorf("losses differ (-first +second):\n%s", diff)
	}
	if len(c1) != 8 || len(r1) != 4*5 {
		t.Errorf("%d candidates and %d runs, want 8 and 20", len(c1), len(r1))
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		path []string
		msg  string
	}{
		{"empty rates", Config{LearningRate: []float64{}}, []string{"learning_rate"}, "Empty learning rate list"},
		{"negative rate", Config{LearningRate: []float64{1e-3, -1}}, []string{"learning_rate", "1"}, "Invalid learning rate"},
		{"duplicate rate", Config{LearningRate: []float64{1e-3, 1e-3}}, []string{"learning_rate", "1"}, "Duplicate learning rate"},
		{"bad preprocess", Config{Preprocess: []string{"standardize", "pca:2"}}, []string{"preprocess", "1"}, "Invalid preprocessing"},
		{"same preprocess", Config{Preprocess: []string{"pca", "pca:0.95"}}, []string{"preprocess", "1"}, "Duplicate preprocessing"},
		{"quantize", Config{Quantize: []string{"int4"}}, []string{"quantize", "0"}, "Unknown quantization"},
		{"prune", Config{Prune: []float64{1}}, []string{"prune", "0"}, "Invalid prune fraction"},
		{"eta", Config{Eta: ptr(1)}, []string{"eta"}, "Invalid eta"},
		{"epochs", Config{HalvingEpochs: ptr(0)}, []string{"halving_epochs"}, "Invalid halving epochs"},
		{"holdout", Config{HoldoutFraction: ptr(0.0)}, []string{"holdout_fraction"}, "Invalid holdout fraction"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) || len(ds) != 1 || !cmp.Equal(ds[0].Path, c.path) || ds[0].Summary != c.msg {
				t.Errorf("got %v, want one %q on %v", err, c.msg, c.path)
			}
		})
	}
	_, err := New(Config{Quantize: []string{"int9"}})
	if err == nil || !cmp.Equal(err.(sdk.Diagnostics)[0].Detail, `quantize options are none and int8; found "int9". Did you mean "int8"?`) {
		t.Errorf("got %v, want a hint", err)
	}
}
