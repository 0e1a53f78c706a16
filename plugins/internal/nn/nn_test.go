package nn

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
)

// toData splits a dataset table as the dataset stage does and converts the
// parts, dividing every feature by scale.
func toData(t testing.TB, tab *dataset.Table, testFraction float64, seed uint64, scale float64) (train, test *Data) {
	t.Helper()
	strata, n := tab.Strata()
	parts := dataset.StratifiedSplit(strata, n, testFraction, 0, seed)
	var tr, te []int
	for i, p := range parts {
		if p == dataset.Test {
			te = append(te, i)
		} else {
			tr = append(tr, i)
		}
	}
	conv := func(idx []int) *Data {
		d := &Data{Rows: len(idx), Cols: len(tab.Features)}
		for _, i := range idx {
			for j := range tab.Features {
				d.X = append(d.X, float32(tab.Features[j][i]/scale))
			}
			if tab.Task == dataset.Classification {
				d.Labels = append(d.Labels, int32(tab.Labels[i]))
			} else {
				d.Targets = append(d.Targets, float32(tab.Values[i]))
			}
		}
		return d
	}
	return conv(tr), conv(te)
}

func generate(t testing.TB, kind string, rows int, seed uint64) *dataset.Table {
	t.Helper()
	o := dataset.GenDefaults(kind)
	o.Rows, o.Seed = rows, seed
	tab, err := dataset.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func digits(t testing.TB) *dataset.Table {
	t.Helper()
	tab, err := dataset.LoadFile(filepath.Join("..", "..", "..", "testdata", "datasets", "sklearn", "digits.csv.gz"), dataset.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func fit(t testing.TB, spec Spec, train *Data, cfg Config) (Model, Report) {
	t.Helper()
	m, rep, err := Gonum{}.Fit(context.Background(), spec, train, nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, rep
}

func evalOn(t testing.TB, m Model, d *Data) Metrics {
	t.Helper()
	met, err := Evaluate(m, d)
	if err != nil {
		t.Fatal(err)
	}
	return met
}

// The counts are model_choice's, layer for layer.
func TestCountsAgreeWithModelChoice(t *testing.T) {
	for _, c := range []struct{ in, depth, width, out int }{
		{4, 0, 0, 3}, {64, 1, 32, 10}, {10, 3, 8, 1}, {2, 2, 512, 2}, {30, 0, 0, 2},
	} {
		hidden := make([]int, c.depth)
		for i := range hidden {
			hidden[i] = c.width
		}
		s := Spec{Inputs: c.in, Hidden: hidden, Outputs: c.out}
		if c.out == 1 {
			s.Task = Regression
		}
		p, f := mlp.Count(mlp.LayerSizes(int64(c.in), int64(c.depth), int64(c.width), int64(c.out)))
		if s.Params() != p || s.FLOPs() != f {
			t.Errorf("%+v: params %d flops %d, model_choice says %d and %d", c, s.Params(), s.FLOPs(), p, f)
		}
		m := newMLP(s)
		if m.Params() != p {
			t.Errorf("%+v: the MLP holds %d parameters, want %d", c, m.Params(), p)
		}
	}
}

func TestSpecValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
	}{
		{"no inputs", Spec{Inputs: 0, Outputs: 2}},
		{"width 0", Spec{Inputs: 2, Hidden: []int{0}, Outputs: 2}},
		{"one class", Spec{Inputs: 2, Outputs: 1}},
		{"regression with 2 outputs", Spec{Inputs: 2, Outputs: 2, Task: Regression}},
		{"huge", Spec{Inputs: 2, Hidden: []int{1 << 30}, Outputs: 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.spec.Validate(); err == nil {
				t.Error("no error")
			}
			train := &Data{Rows: 1, Cols: 2, X: []float32{1, 2}, Labels: []int32{0}, Targets: []float32{1}}
			if _, _, err := (Gonum{}).Fit(context.Background(), c.spec, train, nil, Config{LearningRate: 1e-3, BatchSize: 1, Epochs: 1}); err == nil {
				t.Error("Fit accepted the spec")
			}
		})
	}
}

func TestLossDecreases(t *testing.T) {
	for _, c := range []struct {
		name string
		kind string
		spec Spec
	}{
		{"classification", dataset.GenBlobs, Spec{Inputs: 4, Hidden: []int{16}, Outputs: 3}},
		{"regression", dataset.GenRegression, Spec{Inputs: 4, Hidden: []int{16}, Outputs: 1, Task: Regression}},
	} {
		t.Run(c.name, func(t *testing.T) {
			train, _ := toData(t, generate(t, c.kind, 400, 1), 0.2, 1, 1)
			_, rep := fit(t, c.spec, train, Config{LearningRate: 1e-2, BatchSize: 32, Epochs: 10, Seed: 1})
			first, last := rep.History[0], rep.History[len(rep.History)-1]
			if !(last.Loss < 0.8*first.Loss) || !(last.ValLoss < first.ValLoss) {
				t.Errorf("loss %g → %g, validation loss %g → %g: want both to fall", first.Loss, last.Loss, first.ValLoss, last.ValLoss)
			}
		})
	}
}

// The analytic gradient matches central finite differences of the loss, for
// every parameter of small nets with each loss.
func TestGradientCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		spec Spec
	}{
		{"softmax two hidden", Spec{Inputs: 3, Hidden: []int{5, 4}, Outputs: 3}},
		{"softmax linear", Spec{Inputs: 3, Outputs: 2}},
		{"mse one hidden", Spec{Inputs: 3, Hidden: []int{6}, Outputs: 1, Task: Regression}},
	} {
		t.Run(c.name, func(t *testing.T) {
			const rows = 7
			rng := rand.New(rand.NewPCG(3, 4))
			m := newMLP(c.spec)
			m.init(11)
			// Biases away from zero, so that no ReLU sits at its kink.
			for l := 1; l <= m.layers(); l++ {
				for i := range m.biases(l) {
					m.biases(l)[i] = float32(0.3 * rng.NormFloat64())
				}
			}
			ws := m.newWorkspace(rows)
			for i := range ws.xb {
				ws.xb[i] = float32(rng.NormFloat64())
			}
			for r := range rows {
				ws.lb[r] = int32(rng.IntN(max(c.spec.Outputs, 1)))
				ws.yb[r] = float32(rng.NormFloat64())
			}
			// pattern is which ReLUs pass after the last lossGrad: a step
			// that flips one crosses a kink, where differences mean nothing.
			pattern := func() []bool {
				var p []bool
				for l := 1; l < m.layers(); l++ {
					for _, a := range ws.acts[l][:rows*m.sizes[l]] {
						p = append(p, a > 0)
					}
				}
				return p
			}
			m.lossGrad(ws, rows)
			analytic := slices.Clone(ws.grad)
			at := pattern()
			const h = 1e-3
			skipped := 0
			for i := range m.theta {
				orig := m.theta[i]
				m.theta[i] = orig + h
				up := m.lossGrad(ws, rows)
				upPattern := pattern()
				m.theta[i] = orig - h
				down := m.lossGrad(ws, rows)
				downPattern := pattern()
				m.theta[i] = orig
				if !slices.Equal(at, upPattern) || !slices.Equal(at, downPattern) {
					skipped++
					continue
				}
				num := (up - down) / (2 * h)
				if diff := math.Abs(num - float64(analytic[i])); diff > 1e-3+1e-2*math.Abs(num) {
					t.Errorf("parameter %d: analytic %g, numeric %g", i, analytic[i], num)
				}
			}
			if skipped > len(m.theta)/10 {
				t.Errorf("%d of %d parameters sit at a ReLU kink", skipped, len(m.theta))
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	train, test := toData(t, generate(t, dataset.GenSpirals, 300, 2), 0.2, 2, 1)
	spec := Spec{Inputs: 2, Hidden: []int{16, 16}, Outputs: 2}
	cfg := Config{LearningRate: 1e-2, BatchSize: 16, Epochs: 8, Patience: 3, Seed: 9}
	m1, r1 := fit(t, spec, train, cfg)
	m2, r2 := fit(t, spec, train, cfg)
	if diff := cmp.Diff(m1.(*MLP).Weights(), m2.(*MLP).Weights()); diff != "" {
		t.Errorf("weights differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(r1, r2, cmp.Comparer(sameFloat)); diff != "" {
		t.Errorf("reports differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(evalOn(t, m1, test), evalOn(t, m2, test), cmp.Comparer(sameFloat)); diff != "" {
		t.Errorf("metrics differ (-first +second):\n%s", diff)
	}
	// Another seed is another model.
	cfg.Seed = 10
	m3, _ := fit(t, spec, train, cfg)
	if cmp.Equal(m1.(*MLP).Weights(), m3.(*MLP).Weights()) {
		t.Error("seeds 9 and 10 gave the same weights")
	}
}

// sameFloat compares bit patterns, so that NaN equals NaN.
func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// On scikit-learn's digits, one hidden layer of 64 units beats the linear
// model trained alike, by a margin no seed's luck explains: both are
// averaged over three seeds.
func TestDigitsMLPBeatsLinear(t *testing.T) {
	tab := digits(t)
	train, test := toData(t, tab, 0.2, 1, 16)
	accuracy := func(hidden []int) float64 {
		var sum float64
		for seed := range uint64(3) {
			m, _ := fit(t, Spec{Inputs: 64, Hidden: hidden, Outputs: 10}, train,
				Config{LearningRate: 3e-3, BatchSize: 32, Epochs: 12, Patience: 3, Seed: seed})
			sum += evalOn(t, m, test).Accuracy
		}
		return sum / 3
	}
	linear := accuracy(nil)
	mlp := accuracy([]int{64})
	t.Logf("digits test accuracy: linear %.4f, d1-w64 %.4f", linear, mlp)
	if !(mlp > 0.95 && mlp > linear+0.015) {
		t.Errorf("d1-w64 accuracy %.4f, linear %.4f: want above 0.95 and 0.015 above linear", mlp, linear)
	}
}

// On two spirals, 64 units per layer separate the arms and 2 cannot.
func TestSpiralsWiderBeatsNarrow(t *testing.T) {
	train, test := toData(t, generate(t, dataset.GenSpirals, 1000, 3), 0.25, 3, 1)
	accuracy := func(width int) float64 {
		m, _ := fit(t, Spec{Inputs: 2, Hidden: []int{width, width}, Outputs: 2}, train,
			Config{LearningRate: 1e-2, BatchSize: 32, Epochs: 60, Patience: 10, Seed: 1})
		return evalOn(t, m, test).Accuracy
	}
	narrow, wide := accuracy(2), accuracy(64)
	t.Logf("spirals test accuracy: d2-w2 %.4f, d2-w64 %.4f", narrow, wide)
	if !(wide > 0.9 && wide > narrow+0.15) {
		t.Errorf("d2-w64 accuracy %.4f, d2-w2 %.4f: want above 0.9 and 0.15 above", wide, narrow)
	}
}

func TestEarlyStopping(t *testing.T) {
	// Few rows and many epochs: the validation loss bottoms out early.
	train, _ := toData(t, generate(t, dataset.GenBlobs, 120, 4), 0.2, 4, 1)
	_, rep := fit(t, Spec{Inputs: 4, Hidden: []int{128}, Outputs: 3}, train,
		Config{LearningRate: 3e-2, BatchSize: 8, Epochs: 200, Patience: 3, Seed: 1})
	if rep.StoppedBy != StoppedEarly || rep.EpochsRun >= 200 || rep.EpochsRun != rep.BestEpoch+3 {
		t.Errorf("stopped by %s after %d epochs, best %d: want early stopping 3 epochs after the best", rep.StoppedBy, rep.EpochsRun, rep.BestEpoch)
	}
	if rep.ValidationRows != 10 {
		t.Errorf("%d validation rows held out of 96, want 10", rep.ValidationRows)
	}
	best := math.Inf(1)
	for _, h := range rep.History {
		best = min(best, h.ValLoss)
	}
	if rep.BestValLoss != best {
		t.Errorf("best validation loss %g, lowest in history %g", rep.BestValLoss, best)
	}
}

func TestDiverged(t *testing.T) {
	train, _ := toData(t, generate(t, dataset.GenRegression, 200, 5), 0.2, 5, 1)
	_, _, err := Gonum{}.Fit(context.Background(), Spec{Inputs: 4, Hidden: []int{32, 32}, Outputs: 1, Task: Regression}, train, nil,
		Config{LearningRate: 1e30, BatchSize: 16, Epochs: 5, Seed: 1})
	if !errors.Is(err, ErrDiverged) {
		t.Errorf("got %v, want ErrDiverged", err)
	}
}

func TestCanceled(t *testing.T) {
	train, _ := toData(t, generate(t, dataset.GenBlobs, 200, 5), 0.2, 5, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, rep, err := Gonum{}.Fit(ctx, Spec{Inputs: 4, Outputs: 3}, train, nil, Config{LearningRate: 1e-3, BatchSize: 16, Epochs: 5})
	if !errors.Is(err, context.Canceled) || rep.StoppedBy != StoppedCanceled {
		t.Errorf("got %v, stopped by %q; want context.Canceled", err, rep.StoppedBy)
	}
}

func TestMaxTime(t *testing.T) {
	train, _ := toData(t, generate(t, dataset.GenBlobs, 400, 5), 0.2, 5, 1)
	_, rep := fit(t, Spec{Inputs: 4, Hidden: []int{64}, Outputs: 3}, train,
		Config{LearningRate: 1e-3, BatchSize: 1, Epochs: 1000, Seed: 1, MaxTime: 1})
	if rep.StoppedBy != StoppedMaxTime || rep.EpochsRun != 1 || len(rep.History) != 1 {
		t.Errorf("stopped by %s after %d epochs: want max_train_time after 1", rep.StoppedBy, rep.EpochsRun)
	}
}

// A regression model predicts in the target's units, and learns alike
// whatever their scale: the target is standardized inside.
func TestRegressionTargetScale(t *testing.T) {
	train, test := toData(t, generate(t, dataset.GenRegression, 2000, 6), 0.2, 6, 1)
	cfg := Config{LearningRate: 1e-2, BatchSize: 32, Epochs: 30, Patience: 5, Seed: 1}
	spec := Spec{Inputs: 4, Hidden: []int{64}, Outputs: 1, Task: Regression}
	m, _ := fit(t, spec, train, cfg)
	plain := evalOn(t, m, test)
	for _, d := range []*Data{train, test} {
		for i := range d.Targets {
			d.Targets[i] = 1000 + 500*d.Targets[i]
		}
	}
	m, _ = fit(t, spec, train, cfg)
	scaled := evalOn(t, m, test)
	t.Logf("R² %.4f, on targets 1000+500y %.4f", plain.R2, scaled.R2)
	if !(plain.R2 > 0.8) || math.Abs(plain.R2-scaled.R2) > 0.01 {
		t.Errorf("R² %g, scaled targets %g: want above 0.8 and alike", plain.R2, scaled.R2)
	}
	if math.Abs(scaled.RMSE*scaled.RMSE-scaled.Loss) > 1e-6*scaled.Loss || math.Abs(scaled.RMSE/plain.RMSE-500) > 10 {
		t.Errorf("RMSE %g (unscaled %g), loss %g: want loss = RMSE² and RMSE 500 times the unscaled one", scaled.RMSE, plain.RMSE, scaled.Loss)
	}
}

func trainedDigits(t testing.TB) (Model, *Data) {
	train, test := toData(t, digits(t), 0.2, 1, 16)
	m, _ := fit(t, Spec{Inputs: 64, Hidden: []int{128}, Outputs: 10}, train,
		Config{LearningRate: 3e-3, BatchSize: 32, Epochs: 10, Patience: 3, Seed: 1})
	return m, test
}

func TestQuantizeInt8(t *testing.T) {
	m, test := trainedDigits(t)
	q, err := Compress(m, Compression{Int8: true})
	if err != nil {
		t.Fatal(err)
	}
	before, after := evalOn(t, m, test), evalOn(t, q, test)
	ratio := float64(m.Bytes()) / float64(q.Bytes())
	t.Logf("int8: accuracy %.4f → %.4f, bytes %d → %d (%.2fx)", before.Accuracy, after.Accuracy, m.Bytes(), q.Bytes(), ratio)
	if after.Accuracy < before.Accuracy-0.01 {
		t.Errorf("int8 accuracy %.4f, float %.4f: want a drop of at most 0.01", after.Accuracy, before.Accuracy)
	}
	// Weights shrink 4x; biases and one scale per unit stay float32.
	if !(ratio > 3.6 && ratio < 4) {
		t.Errorf("float32 %d bytes, int8 %d: ratio %.2f, want 3.6 to 4", m.Bytes(), q.Bytes(), ratio)
	}
	if q.Params() != m.Params() || q.FLOPs() != m.FLOPs() {
		t.Errorf("int8 params %d flops %d, float %d %d", q.Params(), q.FLOPs(), m.Params(), m.FLOPs())
	}
	if !q.(*Compact).Int8() {
		t.Error("the quantized model does not say it is int8")
	}
	// Logits stay close to the float model's, row by row: 8-bit weights
	// and activations carry about two significant digits.
	rows := min(test.Rows, 64)
	fl := slices.Clone(m.NewPredictor(rows).Predict(test.X, rows))
	ql := q.NewPredictor(rows).Predict(test.X, rows)
	var worst, scale float64
	for i := range fl {
		worst = max(worst, math.Abs(float64(fl[i]-ql[i])))
		scale = max(scale, math.Abs(float64(fl[i])))
	}
	if worst > 0.03*scale {
		t.Errorf("int8 logits differ from float ones by up to %g (largest logit %g)", worst, scale)
	}
	// And the two models pick the same class for nearly every test row.
	fp, qp := m.NewPredictor(1), q.NewPredictor(1)
	agree := 0
	for r := range test.Rows {
		x := test.X[r*test.Cols : (r+1)*test.Cols]
		if argmax(fp.Predict(x, 1)) == argmax(qp.Predict(x, 1)) {
			agree++
		}
	}
	if share := float64(agree) / float64(test.Rows); share < 0.98 {
		t.Errorf("int8 and float32 agree on the class of %.3f of the test rows, want at least 0.98", share)
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func TestPrune(t *testing.T) {
	m, test := trainedDigits(t)
	before := evalOn(t, m, test)
	weights := m.Params() - int64(128+10)
	for _, c := range []struct {
		fraction float64
		int8     bool
		sparse   bool
	}{
		// A mask costs an eighth of a byte per weight, plus each kept value.
		{0.5, false, true},  // 2.125 bytes per weight against 4
		{0.5, true, true},   // 0.625 against 1
		{0.8, true, true},   // 0.325 against 1
		{0.25, false, true}, // 3.125 against 4
		{0.1, true, false},  // 1.025 against 1: pruning saves no bytes
	} {
		p, err := Compress(m, Compression{PruneFraction: c.fraction, Int8: c.int8})
		if err != nil {
			t.Fatal(err)
		}
		after := evalOn(t, p, test)
		zeroed := int64(math.Round(c.fraction*float64(64*128))) + int64(math.Round(c.fraction*float64(128*10)))
		t.Logf("prune %.2f int8 %t: accuracy %.4f → %.4f, %d bytes, %d non-zero", c.fraction, c.int8, before.Accuracy, after.Accuracy, p.Bytes(), p.NonZero())
		// Quantization may round a few more small weights to zero.
		if nz := p.NonZero(); nz > m.NonZero()-zeroed || nz < m.NonZero()-zeroed-weights/50 {
			t.Errorf("prune %g: %d non-zero, want about %d", c.fraction, nz, m.NonZero()-zeroed)
		}
		for _, L := range p.(*Compact).layers {
			if L.sparse != c.sparse {
				t.Errorf("prune %g int8 %t: layer %dx%d sparse %t, want %t", c.fraction, c.int8, L.in, L.out, L.sparse, c.sparse)
			}
		}
		// A sparse model's params are the weights pruning kept and the
		// biases; a dense one's all of them. The bytes follow: a mask bit
		// per weight and each kept value, or every value.
		vb := map[bool]float64{false: 4, true: 1}[c.int8]
		wantParams, wantBytes := m.Params(), float64(m.Params()-weights)*4+(4+1+1+2)+(4+4)+4*3+2 // biases; magic, version, task, layers; target; sizes; kinds
		if c.int8 {
			wantBytes += 4 * float64(128+10) // scales
		}
		if c.sparse {
			wantParams -= zeroed
			wantBytes += math.Ceil(float64(64*128)/8) + math.Ceil(float64(128*10)/8) + vb*float64(weights-zeroed)
		} else {
			wantBytes += vb * float64(weights)
		}
		if got := p.Params(); got != wantParams || got != m.Spec().StoredParams(Compression{PruneFraction: c.fraction, Int8: c.int8}) {
			t.Errorf("prune %g int8 %t: params %d, want %d (StoredParams %d)", c.fraction, c.int8, got, wantParams, m.Spec().StoredParams(Compression{PruneFraction: c.fraction, Int8: c.int8}))
		}
		if got := p.Bytes(); float64(got) != wantBytes {
			t.Errorf("prune %g int8 %t: %d bytes, want %g", c.fraction, c.int8, got, wantBytes)
		}
		// Without retraining, pruning costs accuracy as it grows.
		if most := map[float64]float64{0.25: 0.01, 0.5: 0.05}[c.fraction]; most > 0 && after.Accuracy < before.Accuracy-most {
			t.Errorf("prune %g: accuracy %.4f from %.4f, want a drop of at most %g", c.fraction, after.Accuracy, before.Accuracy, most)
		}
	}
	if _, err := Compress(m, Compression{PruneFraction: 1}); err == nil {
		t.Error("pruning every weight was accepted")
	}
}

// The serialized form is as long as Bytes says, and reads back into a model
// that predicts bit for bit alike, in each storage.
func TestMarshalRoundTrip(t *testing.T) {
	m, test := trainedDigits(t)
	for _, c := range []Compression{{}, {Int8: true}, {PruneFraction: 0.7}, {PruneFraction: 0.8, Int8: true}} {
		cm, err := Compress(m, c)
		if err != nil {
			t.Fatal(err)
		}
		b, err := cm.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != cm.Bytes() {
			t.Errorf("%+v: %d bytes serialized, Bytes says %d", c, len(b), cm.Bytes())
		}
		back, err := UnmarshalCompact(b)
		if err != nil {
			t.Fatal(err)
		}
		p1, p2 := cm.NewPredictor(64), back.NewPredictor(64)
		if diff := cmp.Diff(slices.Clone(p1.Predict(test.X, 64)), p2.Predict(test.X, 64)); diff != "" {
			t.Errorf("%+v: predictions differ after a round trip:\n%s", c, diff)
		}
	}
	// The float32 dense form predicts as the trained MLP does (up to the
	// order of its sums).
	cm, _ := Compress(m, Compression{})
	want, got := m.NewPredictor(8).Predict(test.X, 8), cm.NewPredictor(8).Predict(test.X, 8)
	for i := range want {
		if math.Abs(float64(want[i]-got[i])) > 1e-4*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("output %d: MLP %g, compact %g", i, want[i], got[i])
		}
	}
	if m.Bytes() != cm.Bytes() {
		t.Errorf("MLP %d bytes, its dense form %d", m.Bytes(), cm.Bytes())
	}
}

// Models written in format version 1 (testdata, written before masks
// existed) read back, write back the same bytes, and predict as the same
// MLP compressed today does.
func TestReadFormatVersion1(t *testing.T) {
	m := newMLP(Spec{Inputs: 16, Hidden: []int{8}, Outputs: 3})
	m.init(1)
	x := make([]float32, 16*5)
	for i := range x {
		x[i] = float32(i%11) - 5
	}
	for name, c := range map[string]Compression{"dense": {}, "int8": {Int8: true}, "prune90": {PruneFraction: 0.9}, "prune90-int8": {PruneFraction: 0.9, Int8: true}} {
		b, err := os.ReadFile(filepath.Join("testdata", "v1-"+name+".ssnn"))
		if err != nil {
			t.Fatal(err)
		}
		old, err := UnmarshalCompact(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if out, err := old.MarshalBinary(); err != nil || !slices.Equal(out, b) {
			t.Errorf("%s: version-1 model writes back differently (%v)", name, err)
		}
		now, _ := m.compress(c)
		if diff := cmp.Diff(slices.Clone(now.NewPredictor(5).Predict(x, 5)), old.NewPredictor(5).Predict(x, 5)); diff != "" {
			t.Errorf("%s: the version-1 model predicts otherwise (-now +v1):\n%s", name, diff)
		}
	}
}

func FuzzUnmarshalCompact(f *testing.F) {
	m := newMLP(Spec{Inputs: 3, Hidden: []int{4}, Outputs: 2})
	m.init(1)
	for _, c := range []Compression{{}, {Int8: true}, {PruneFraction: 0.7}, {PruneFraction: 0.9, Int8: true}} {
		cm, _ := m.compress(c)
		b, _ := cm.MarshalBinary()
		f.Add(b)
	}
	for _, name := range []string{"prune90", "prune90-int8"} {
		b, err := os.ReadFile(filepath.Join("testdata", "v1-"+name+".ssnn"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("SSNN"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := UnmarshalCompact(b)
		if err != nil {
			return
		}
		// Whatever reads back must predict without panicking and write back
		// the same bytes.
		x := make([]float32, c.spec.Inputs)
		c.NewPredictor(1).Predict(x, 1)
		out, err := c.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out, b) {
			t.Errorf("re-serialized %d bytes differ from the %d read", len(out), len(b))
		}
	})
}

func TestDataCheck(t *testing.T) {
	s := Spec{Inputs: 2, Outputs: 3}
	for _, c := range []struct {
		name string
		d    *Data
	}{
		{"wrong width", &Data{Rows: 1, Cols: 3, X: []float32{1, 2, 3}, Labels: []int32{0}}},
		{"short X", &Data{Rows: 2, Cols: 2, X: []float32{1, 2}, Labels: []int32{0, 1}}},
		{"label out of range", &Data{Rows: 1, Cols: 2, X: []float32{1, 2}, Labels: []int32{3}}},
		{"no labels", &Data{Rows: 1, Cols: 2, X: []float32{1, 2}}},
	} {
		if err := c.d.Check(s); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}
