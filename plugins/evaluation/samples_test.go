package evaluation

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func TestSubsampleRows(t *testing.T) {
	const n = 1000
	a, err := SubsampleRows(n, 300, 7)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := SubsampleRows(n, 300, 7)
	if !slices.Equal(a, again) {
		t.Fatal("the same rows, samples and seed drew two subsamples")
	}
	if len(a) != 300 || !slices.IsSorted(a) || len(slices.Compact(slices.Clone(a))) != 300 || a[0] < 0 || a[len(a)-1] >= n {
		t.Fatalf("want 300 distinct sorted rows in [0, %d), got %d: %v...", n, len(a), a[:5])
	}
	small, _ := SubsampleRows(n, 100, 7)
	for _, r := range small {
		if _, ok := slices.BinarySearch(a, r); !ok {
			t.Fatalf("row %d of the 100-row subsample is not in the 300-row one: subsamples must nest", r)
		}
	}
	other, _ := SubsampleRows(n, 300, 8)
	if slices.Equal(a, other) {
		t.Error("seeds 7 and 8 drew the same subsample")
	}
	// Uniform: over many seeds each row is drawn about samples/n of the
	// time (binomial: 2000 draws at p = 0.3, sd 20.5; 6 sd apart).
	counts := make([]int, n)
	for seed := range uint64(2000) {
		rows, _ := SubsampleRows(n, 300, seed)
		for _, r := range rows {
			counts[r]++
		}
	}
	lo, hi := slices.Min(counts), slices.Max(counts)
	if lo < 600-123 || hi > 600+123 {
		t.Errorf("rows drawn %d to %d times in 2000 subsamples of 30%%; want about 600 each", lo, hi)
	}
	for _, s := range []int64{0, -1, n + 1} {
		if _, err := SubsampleRows(n, s, 1); err == nil {
			t.Errorf("samples %d of %d rows: no error", s, n)
		}
	}
}

// recorder trains with the real trainer and keeps the training rows each
// fit was given, by learning rate (one per candidate here).
type recorder struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (r *recorder) Fit(ctx context.Context, spec nn.Spec, train, valid *nn.Data, cfg nn.Config) (nn.Model, nn.Report, error) {
	var rows []string
	for i := range train.Rows {
		rows = append(rows, rowKey32(train.X[i*train.Cols:(i+1)*train.Cols]))
	}
	r.mu.Lock()
	r.seen[fmt.Sprint(cfg.LearningRate)] = rows
	r.mu.Unlock()
	return nn.Gonum{}.Fit(ctx, spec, train, valid, cfg)
}

func rowKey32(x []float32) string {
	var b strings.Builder
	for _, v := range x {
		fmt.Fprintf(&b, "%.6g,", v)
	}
	return b.String()
}

// splitsOf reads which split each row of the dataset port is in, straight
// from its columns (the features as float32, as the trainer gets them
// without preprocessing).
func splitsOf(t *testing.T, ds []arrow.RecordBatch) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, b := range ds {
		var feats []*array.Float64
		var split *array.String
		for i, f := range b.Schema().Fields() {
			switch {
			case f.Name == tables.ColSplit:
				split = b.Column(i).(*array.String)
			case strings.HasPrefix(f.Name, "x"):
				feats = append(feats, b.Column(i).(*array.Float64))
			}
		}
		if split == nil || len(feats) == 0 {
			t.Fatalf("dataset batch %v has no split or x columns", b.Schema())
		}
		for r := range int(b.NumRows()) {
			x := make([]float32, len(feats))
			for j, f := range feats {
				x[j] = float32(f.Value(r))
			}
			k := rowKey32(x)
			if _, dup := out[k]; dup {
				t.Fatalf("two rows share features %s", k)
			}
			out[k] = split.Value(r)
		}
	}
	return out
}

// TestSamplesSubsample trains candidates on a subsample through the
// stage and checks, from the dataset's own split column, that the rows a
// fit was given are that many training rows, never validation or test
// rows; that two sizes at one samples get the same rows; and that a
// smaller samples gets some of them.
func TestSamplesSubsample(t *testing.T) {
	mem := checked(t)
	ds := data(t, mem, "blobs", 600, 3, 0.2, 0.2)
	splits := splitsOf(t, ds)
	var nTrain int
	for _, s := range splits {
		if s == tables.SplitTrain {
			nTrain++
		}
	}
	in, out := int64(len(ds[0].Schema().Fields())-2), int64(3)
	mk := func(width int32, lr float64, samples int64) tables.Candidate {
		c := cand(in, out, 1, width, lr, 3)
		c.Preprocess, c.Samples = "none", samples
		c.ID = fmt.Sprintf("%s-s%d", c.ID, samples)
		return c
	}
	cs := []tables.Candidate{mk(4, 0.011, 100), mk(8, 0.012, 100), mk(4, 0.013, 40), mk(4, 0.014, 0), mk(4, 0.015, int64(nTrain)+1)}
	rec := &recorder{seen: map[string][]string{}}
	runOnce := func() []tables.Result {
		st, err := New(Config{Seed: ptr[int64](5)})
		if err != nil {
			t.Fatal(err)
		}
		st.(*Stage).trainer = rec
		res, err := stagetest.Run(t, context.Background(), Info(), st, stagetest.Inputs{InputPort: candidates(t, mem, cs...), DatasetPort: ds})
		if err != nil {
			t.Fatal(err)
		}
		rs, err := tables.ReadResults(concatBatches(t, res.Batches(OutputPort)))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	rs := runOnce()
	first := map[string][]string{}
	for k, v := range rec.seen {
		first[k] = v
	}
	for _, lr := range []string{"0.011", "0.012", "0.013"} {
		for _, row := range first[lr] {
			if s, ok := splits[row]; !ok || s != tables.SplitTrain {
				t.Fatalf("candidate lr %s trained on a row of split %q", lr, s)
			}
		}
	}
	if got := len(first["0.011"]); got != 100 {
		t.Errorf("samples 100 trained on %d rows", got)
	}
	if got := len(first["0.013"]); got != 40 {
		t.Errorf("samples 40 trained on %d rows", got)
	}
	if got := len(first["0.014"]); got != nTrain {
		t.Errorf("no samples trained on %d rows, want all %d training rows", got, nTrain)
	}
	if !slices.Equal(first["0.011"], first["0.012"]) {
		t.Error("two widths at samples 100 trained on different rows")
	}
	for _, row := range first["0.013"] {
		if !slices.Contains(first["0.011"], row) {
			t.Fatal("a row of the 40-row subsample is not in the 100-row one")
		}
	}
	for _, r := range rs {
		switch r.LearningRate {
		case 0.011, 0.013:
			if r.Status != tables.StatusOK || r.Samples != map[float64]int64{0.011: 100, 0.013: 40}[r.LearningRate] {
				t.Errorf("%s: status %s, samples %d", r.ID, r.Status, r.Samples)
			}
		case 0.014:
			if r.Samples != int64(nTrain) {
				t.Errorf("%s: the results row says samples %d, want the %d training rows", r.ID, r.Samples, nTrain)
			}
		case 0.015:
			want := fmt.Sprintf("samples %d is more than the %d training rows", nTrain+1, nTrain)
			if r.Status != tables.StatusFailed || !strings.Contains(r.Error, want) {
				t.Errorf("%s: status %s, error %q; want failed with %q", r.ID, r.Status, r.Error, want)
			}
		}
	}
	// Deterministic: a second run draws the same rows.
	runOnce()
	for k, v := range first {
		if !slices.Equal(v, rec.seen[k]) {
			t.Errorf("lr %s: a second run trained on other rows", k)
		}
	}
}
