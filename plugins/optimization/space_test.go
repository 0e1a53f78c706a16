package optimization

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/space"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// scoredTrainer is a trainer whose validation loss is a known function of
// the settings and the width: for width 16 it is least at lr 0.01, for
// width 32 at lr 0.1; a larger batch costs a little, more epochs help. It
// records what it was asked, and the row counts it was given.
type scoredTrainer struct {
	mu      sync.Mutex
	configs []nn.Config
	valid   []int
}

func scoredLoss(lr float64, batch, epochs, width int) float64 {
	best := -2.0
	if width == 32 {
		best = -1
	}
	d := math.Log10(lr) - best
	return d*d + 0.001*float64(batch) + 1/float64(epochs)
}

func (f *scoredTrainer) Fit(_ context.Context, spec nn.Spec, train, valid *nn.Data, cfg nn.Config) (nn.Model, nn.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configs = append(f.configs, cfg)
	rows := -1
	if valid != nil {
		rows = valid.Rows
	}
	f.valid = append(f.valid, rows)
	return nil, nn.Report{BestValLoss: scoredLoss(cfg.LearningRate, cfg.BatchSize, cfg.Epochs, spec.Hidden[0])}, nil
}

type searchRow struct {
	candidate string
	rung      int32
	epochs    int32
	setting   string
	loss      float64
	promoted  bool
	chosen    bool
}

func runSearch(t *testing.T, cfg Config, f *scoredTrainer, cands, ds []arrow.RecordBatch) ([]tables.Candidate, []searchRow) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st.(*Stage).trainer = f
	out, err := stagetest.Run(t, context.Background(), Info(), st, stagetest.Inputs{InputPort: cands, DatasetPort: ds})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := tables.ReadCandidates(out.Batches(OutputPort)[0])
	if err != nil {
		t.Fatal(err)
	}
	tb := out.Batches(TuningPort)[0]
	var rows []searchRow
	for i := range int(tb.NumRows()) {
		rows = append(rows, searchRow{
			candidate: tb.Column(1).(*array.String).Value(i), rung: tb.Column(2).(*array.Int32).Value(i),
			epochs: tb.Column(3).(*array.Int32).Value(i), setting: tb.Column(10).(*array.String).Value(i),
			loss: tb.Column(6).(*array.Float64).Value(i), promoted: tb.Column(8).(*array.Boolean).Value(i), chosen: tb.Column(9).(*array.Boolean).Value(i),
		})
	}
	return cs, rows
}

func values(vs ...float64) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return out
}

// TestSearchPicksEachSizeOnValidation runs a grid over learning rate and
// batch size for two widths: each width gets the setting of least
// validation loss (found here by trying every setting of the known
// function), its columns carry it to the evaluation stage, every setting
// is a tuning row, and the trainer is only ever shown the validation rows
// to judge by (80 of them; the test split has 100).
func TestSearchPicksEachSizeOnValidation(t *testing.T) {
	mem := checked(t)
	o := dataset.GenDefaults(dataset.GenBlobs)
	o.Rows, o.Seed = 400, 3
	ds, err := dataset.GenerateBatches(mem, o, 0.25, 0.2, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, b := range ds {
			b.Release()
		}
	})
	f := &scoredTrainer{}
	cs := candidates(t, mem, cand(4, 3, 1, 16), cand(4, 3, 1, 32))
	got, rows := runSearch(t, Config{Search: &space.Block{Kind: space.KindGrid, Params: []space.ParamBlock{
		{Name: "learning_rate", Values: values(0.001, 0.01, 0.1)},
		{Name: "batch_size", Values: values(16, 64)},
	}}}, f, cs, ds)
	if len(rows) != 12 {
		t.Fatalf("%d tuning rows, want 2 sizes × 6 settings", len(rows))
	}
	for _, c := range got {
		best, bestLoss := [2]float64{}, math.Inf(1)
		for _, lr := range []float64{0.001, 0.01, 0.1} {
			for _, b := range []float64{16, 64} {
				if l := scoredLoss(lr, int(b), 20, int(c.Width)); l < bestLoss {
					best, bestLoss = [2]float64{lr, b}, l
				}
			}
		}
		if c.LearningRate != best[0] || float64(c.BatchSize) != best[1] {
			t.Errorf("%s: learning rate %g, batch %d; want %g and %g, the least validation loss", c.ID, c.LearningRate, c.BatchSize, best[0], best[1])
		}
		chosen := 0
		for _, r := range rows {
			if r.candidate != c.ID {
				continue
			}
			var set map[string]float64
			if err := json.Unmarshal([]byte(r.setting), &set); err != nil {
				t.Fatalf("setting %q: %v", r.setting, err)
			}
			if want := scoredLoss(set["learning_rate"], int(set["batch_size"]), 20, int(c.Width)); math.Abs(r.loss-want) > 1e-12 {
				t.Errorf("%s %s: val_loss %g, want %g", c.ID, r.setting, r.loss, want)
			}
			if r.chosen {
				chosen++
				if set["learning_rate"] != best[0] || set["batch_size"] != best[1] {
					t.Errorf("%s: the chosen row is %s", c.ID, r.setting)
				}
			}
		}
		if chosen != 1 {
			t.Errorf("%s: %d chosen rows, want 1", c.ID, chosen)
		}
	}
	if got[0].LearningRate == got[1].LearningRate {
		t.Error("both widths got one learning rate: the search is not per size")
	}
	for i, n := range f.valid {
		if n != 80 {
			t.Errorf("run %d judged on %d rows, want the 80 validation rows (never the 100 test rows)", i, n)
		}
	}
}

// TestSearchHalvingRungs checks halving's plan on a candidate of 9 epochs:
// 9 settings at 1 epoch, 3 at 3, 1 at 9; the kept ones are the least
// validation losses of the rung before.
func TestSearchHalvingRungs(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 200, 1)
	c := cand(4, 3, 1, 16)
	c.Epochs = 9
	f := &scoredTrainer{}
	block := space.Block{Kind: space.KindHalving, Trials: ptr(9), Seed: ptr[int64](2), Params: []space.ParamBlock{
		{Name: "learning_rate", LogUniform: []float64{1e-4, 1}},
	}}
	got, rows := runSearch(t, Config{Search: &block}, f, candidates(t, mem, c), ds)
	if len(rows) != 13 {
		t.Fatalf("%d rows, want 13", len(rows))
	}
	sp, _ := space.Check("search", block)
	alive := sp.Settings()
	for rung, epochs := range []int32{1, 3, 9} {
		var want, tried []string
		for _, s := range alive {
			want = append(want, s.JSON())
		}
		for _, r := range rows {
			if r.rung == int32(rung) {
				tried = append(tried, r.setting)
				if r.epochs != epochs {
					t.Errorf("rung %d trained %d epochs, want %d", rung, r.epochs, epochs)
				}
			}
		}
		slices.Sort(want)
		slices.Sort(tried)
		if !cmp.Equal(want, tried) {
			t.Errorf("rung %d tried %v, want %v", rung, tried, want)
		}
		slices.SortStableFunc(alive, func(a, b space.Setting) int {
			la := scoredLoss(a.Map()["learning_rate"].(float64), 32, int(epochs), 16)
			lb := scoredLoss(b.Map()["learning_rate"].(float64), 32, int(epochs), 16)
			return cmpFloat(la, lb)
		})
		alive = alive[:len(alive)/3]
	}
	if last := rows[len(rows)-1]; !last.chosen || got[0].Epochs != 9 {
		t.Errorf("last run %+v, candidate epochs %d; want the last rung chosen and the candidate's 9 epochs kept", last, got[0].Epochs)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestSearchConfigErrors(t *testing.T) {
	lr := space.ParamBlock{Name: "learning_rate", LogUniform: []float64{1e-4, 1e-1}}
	for _, tc := range []struct {
		name string
		cfg  Config
		path []string
		msg  string
	}{
		{"unknown param", Config{Search: &space.Block{Kind: "random", Params: []space.ParamBlock{{Name: "learning_rat", Values: values(0.1)}}}}, []string{"search", "param", "0", "name"}, "Unknown param"},
		{"tuning twice", Config{LearningRate: []float64{0.1}, Search: &space.Block{Kind: "random", Params: []space.ParamBlock{lr}}}, []string{"learning_rate"}, "Tuning twice"},
		{"validation accuracy", Config{Search: &space.Block{Kind: "random", Metric: "val_accuracy", Params: []space.ParamBlock{lr}}}, []string{"search", "metric"}, "Unknown validation metric"},
		{"bad preprocessing", Config{Search: &space.Block{Kind: "random", Params: []space.ParamBlock{{Name: "preprocess", Values: []string{"pca:2"}}}}}, []string{"search", "param", "0", "values"}, "Invalid preprocessing"},
		{"fractional batch", Config{Search: &space.Block{Kind: "random", Params: []space.ParamBlock{{Name: "batch_size", Uniform: []float64{8, 64}}}}}, []string{"search", "param", "0", "uniform"}, "Invalid batch_size param"},
		{"unknown kind", Config{Search: &space.Block{Kind: "randm", Params: []space.ParamBlock{lr}}}, []string{"search", "kind"}, "Unknown search"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("got %v", err)
			}
			for _, d := range ds {
				if cmp.Equal(d.Path, tc.path) && d.Summary == tc.msg {
					return
				}
			}
			t.Errorf("got %v, want %q on %v", ds, tc.msg, tc.path)
		})
	}
}
