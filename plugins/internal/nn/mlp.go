package nn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Gonum trains MLPs with gonum's blas32. The zero value is ready to use.
type Gonum struct{}

var _ Trainer = Gonum{}

// PCG streams, so that initialization, shuffling and the hold-out draw use
// unrelated numbers from one seed.
const (
	initStream    = 0x1417_0001
	shuffleStream = 0x1417_0002
	holdoutStream = 0x1417_0003
)

// Adam's constants (Kingma & Ba 2015, the defaults of every framework).
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// evalBatch is the batch of forward passes over validation rows.
const evalBatch = 256

const defaultHoldout = 0.1

// MLP is a trained float32 perceptron.
type MLP struct {
	spec  Spec
	sizes []int
	// theta holds every parameter; layer l (1-based) has its in×out
	// weights, row-major (one row per input), at wOff[l] and its out
	// biases at bOff[l].
	theta      []float32
	wOff, bOff []int
	// Regression predicts (target-yMean)/yStd; Predict undoes it.
	yMean, yStd float32
}

var (
	_ Model      = (*MLP)(nil)
	_ Compressor = (*MLP)(nil)
)

func newMLP(spec Spec) *MLP {
	m := &MLP{spec: spec, sizes: spec.Sizes(), yStd: 1}
	L := len(m.sizes) - 1
	m.wOff, m.bOff = make([]int, L+1), make([]int, L+1)
	n := 0
	for l := 1; l <= L; l++ {
		m.wOff[l] = n
		n += m.sizes[l-1] * m.sizes[l]
		m.bOff[l] = n
		n += m.sizes[l]
	}
	m.theta = make([]float32, n)
	return m
}

// init draws the weights: He normal for the ReLU layers, Glorot uniform for
// the output layer.
func (m *MLP) init(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, initStream))
	L := len(m.sizes) - 1
	for l := 1; l <= L; l++ {
		in, out := m.sizes[l-1], m.sizes[l]
		w := m.weights(l)
		if l < L {
			sd := math.Sqrt(2 / float64(in))
			for i := range w {
				w[i] = float32(rng.NormFloat64() * sd)
			}
		} else {
			lim := math.Sqrt(6 / float64(in+out))
			for i := range w {
				w[i] = float32((2*rng.Float64() - 1) * lim)
			}
		}
	}
}

func (m *MLP) layers() int { return len(m.sizes) - 1 }

func (m *MLP) weights(l int) []float32 {
	return m.theta[m.wOff[l] : m.wOff[l]+m.sizes[l-1]*m.sizes[l]]
}

func (m *MLP) biases(l int) []float32 { return m.theta[m.bOff[l] : m.bOff[l]+m.sizes[l]] }

// Spec implements Model.
func (m *MLP) Spec() Spec { return m.spec }

// Params implements Model.
func (m *MLP) Params() int64 { return int64(len(m.theta)) }

// FLOPs implements Model.
func (m *MLP) FLOPs() int64 { return m.spec.FLOPs() }

// NonZero implements Model.
func (m *MLP) NonZero() int64 {
	var n int64
	for _, v := range m.theta {
		if v != 0 {
			n++
		}
	}
	return n
}

// Bytes implements Model: an MLP is stored as float32 dense layers.
func (m *MLP) Bytes() int64 { return m.compact().Bytes() }

// MarshalBinary implements Model (see Compact for the format).
func (m *MLP) MarshalBinary() ([]byte, error) { return m.compact().MarshalBinary() }

// Weights returns a copy of every parameter, layer after layer (weights
// input-major, then biases), for tests of determinism.
func (m *MLP) Weights() []float32 { return slices.Clone(m.theta) }

// NewPredictor implements Model.
func (m *MLP) NewPredictor(maxBatch int) Predictor {
	maxBatch = max(maxBatch, 1)
	p := &mlpPredictor{m: m, maxBatch: maxBatch, acts: make([][]float32, len(m.sizes))}
	for l := 1; l < len(m.sizes); l++ {
		p.acts[l] = make([]float32, maxBatch*m.sizes[l])
	}
	return p
}

type mlpPredictor struct {
	m        *MLP
	maxBatch int
	acts     [][]float32
}

func (p *mlpPredictor) Bytes() int64 {
	var n int64
	for _, a := range p.acts {
		n += 4 * int64(len(a))
	}
	return n
}

func (p *mlpPredictor) Predict(x []float32, rows int) []float32 {
	if rows > p.maxBatch {
		panic(fmt.Sprintf("nn: %d rows for a predictor of batch %d", rows, p.maxBatch))
	}
	p.acts[0] = x[:rows*p.m.sizes[0]]
	out := p.m.forward(p.acts, rows)
	if p.m.spec.Task == Regression {
		for i := range out {
			out[i] = out[i]*p.m.yStd + p.m.yMean
		}
	}
	return out
}

// forward runs rows rows of acts[0] through the layers, leaving each
// layer's activations (ReLU applied, except on the output) in acts[l], and
// returns the output layer's values (standardized for regression).
func (m *MLP) forward(acts [][]float32, rows int) []float32 {
	L := m.layers()
	for l := 1; l <= L; l++ {
		in, out := m.sizes[l-1], m.sizes[l]
		a := acts[l][:rows*out]
		gemm(false, false, rows, out, in, 1, acts[l-1], in, m.weights(l), out, 0, a, out)
		b := m.biases(l)
		for r := range rows {
			row := a[r*out : (r+1)*out]
			for j, bj := range b {
				row[j] += bj
			}
			if l < L {
				for j, v := range row {
					if v < 0 {
						row[j] = 0
					}
				}
			}
		}
	}
	return acts[L][:rows*m.sizes[L]]
}

// workspace holds a fit's buffers.
type workspace struct {
	grad, m1, m2 []float32
	acts, deltas [][]float32
	xb           []float32
	yb           []float32
	lb           []int32
	step         int
}

func (m *MLP) newWorkspace(batch int) *workspace {
	n := len(m.theta)
	ws := &workspace{
		grad: make([]float32, n), m1: make([]float32, n), m2: make([]float32, n),
		acts: make([][]float32, len(m.sizes)), deltas: make([][]float32, len(m.sizes)),
		xb: make([]float32, batch*m.sizes[0]), yb: make([]float32, batch), lb: make([]int32, batch),
	}
	for l := 1; l < len(m.sizes); l++ {
		ws.acts[l] = make([]float32, batch*m.sizes[l])
		ws.deltas[l] = make([]float32, batch*m.sizes[l])
	}
	return ws
}

func (ws *workspace) bytes() int64 {
	n := 4 * int64(len(ws.grad)+len(ws.m1)+len(ws.m2)+len(ws.xb)+len(ws.yb)+len(ws.lb))
	for l := range ws.acts {
		if l > 0 {
			n += 4 * int64(len(ws.acts[l])+len(ws.deltas[l]))
		}
	}
	return n
}

// lossGrad computes the mean loss of a batch (ws.xb with ws.lb or ws.yb,
// targets standardized) and leaves its gradient in ws.grad.
func (m *MLP) lossGrad(ws *workspace, rows int) float64 {
	L := m.layers()
	ws.acts[0] = ws.xb[:rows*m.sizes[0]]
	out := m.forward(ws.acts, rows)
	k := m.sizes[L]
	delta := ws.deltas[L][:rows*k]
	inv := 1 / float32(rows)
	var loss float64
	if m.spec.Task == Classification {
		for r := range rows {
			z := out[r*k : (r+1)*k]
			d := delta[r*k : (r+1)*k]
			mx := slices.Max(z)
			var sum float64
			for j, v := range z {
				e := math.Exp(float64(v - mx))
				d[j] = float32(e)
				sum += e
			}
			y := ws.lb[r]
			loss += math.Log(sum) - float64(z[y]-mx)
			for j := range d {
				d[j] = float32(float64(d[j])/sum) * inv
			}
			d[y] -= inv
		}
	} else {
		for r := range rows {
			diff := out[r] - ws.yb[r]
			loss += float64(diff) * float64(diff)
			delta[r] = 2 * diff * inv
		}
	}
	for l := L; l >= 1; l-- {
		in, out := m.sizes[l-1], m.sizes[l]
		d := ws.deltas[l][:rows*out]
		gw := ws.grad[m.wOff[l] : m.wOff[l]+in*out]
		gemm(true, false, in, out, rows, 1, ws.acts[l-1], in, d, out, 0, gw, out)
		gb := ws.grad[m.bOff[l] : m.bOff[l]+out]
		clear(gb)
		for r := range rows {
			for j, v := range d[r*out : (r+1)*out] {
				gb[j] += v
			}
		}
		if l > 1 {
			prev := ws.deltas[l-1][:rows*in]
			gemm(false, true, rows, in, out, 1, d, out, m.weights(l), out, 0, prev, in)
			// ReLU passes the gradient where its output was positive.
			for i, a := range ws.acts[l-1][:rows*in] {
				if a <= 0 {
					prev[i] = 0
				}
			}
		}
	}
	return loss / float64(rows)
}

// adam applies one Adam step of ws.grad to the parameters.
func (m *MLP) adam(ws *workspace, lr float64) {
	ws.step++
	t := float64(ws.step)
	a := float32(lr * math.Sqrt(1-math.Pow(adamBeta2, t)) / (1 - math.Pow(adamBeta1, t)))
	const b1, b2 = float32(adamBeta1), float32(adamBeta2)
	m1, m2, th := ws.m1, ws.m2, m.theta
	for i, g := range ws.grad {
		m1[i] = b1*m1[i] + (1-b1)*g
		m2[i] = b2*m2[i] + (1-b2)*g*g
		th[i] -= a * m1[i] / (float32(math.Sqrt(float64(m2[i]))) + adamEps)
	}
}

// Fit implements Trainer.
func (Gonum) Fit(ctx context.Context, spec Spec, train, valid *Data, cfg Config) (Model, Report, error) {
	rep := Report{BestValLoss: math.NaN()}
	if err := spec.Validate(); err != nil {
		return nil, rep, err
	}
	if err := checkConfig(cfg); err != nil {
		return nil, rep, err
	}
	if err := train.Check(spec); err != nil {
		return nil, rep, fmt.Errorf("training data: %w", err)
	}
	if train.Rows == 0 {
		return nil, rep, errors.New("nn: no training rows")
	}
	if valid != nil && valid.Rows == 0 {
		valid = nil
	}
	// order holds the training rows an epoch shuffles: all of train, or
	// those not held out for validation.
	order := make([]int, train.Rows)
	for i := range order {
		order[i] = i
	}
	var heldBytes int64
	if valid != nil {
		if err := valid.Check(spec); err != nil {
			return nil, rep, fmt.Errorf("validation data: %w", err)
		}
	} else if order, valid = holdOut(train, cfg); valid != nil {
		heldBytes = 4 * int64(len(valid.X)+len(valid.Labels)+len(valid.Targets))
	}
	if valid != nil {
		rep.ValidationRows = valid.Rows
	}

	m := newMLP(spec)
	m.init(cfg.Seed)
	if spec.Task == Regression {
		ys := make([]float32, len(order))
		for k, i := range order {
			ys[k] = train.Targets[i]
		}
		m.yMean, m.yStd = meanStd(ys)
	}
	batch := min(cfg.BatchSize, len(order))
	ws := m.newWorkspace(batch)
	var best []float32
	var pred Predictor
	if valid != nil {
		best = slices.Clone(m.theta)
		pred = m.NewPredictor(min(evalBatch, valid.Rows))
	}
	rep.PeakBytes = 4*int64(len(m.theta)+len(best)) + ws.bytes() + 8*int64(len(order)) + heldBytes
	if pred != nil {
		rep.PeakBytes += pred.Bytes()
	}

	rng := rand.New(rand.NewPCG(cfg.Seed, shuffleStream))
	start := time.Now()
	scale := float64(m.yStd) * float64(m.yStd) // standardized MSE → target units²
	es := newEarlyStopping(cfg)
	rep.StoppedBy = StoppedEpochs
	d := train.Cols
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		seen := 0
		outOfTime := false
		for lo := 0; lo < len(order); lo += batch {
			if err := ctx.Err(); err != nil {
				rep.StoppedBy = StoppedCanceled
				return nil, rep, err
			}
			rows := min(batch, len(order)-lo)
			for r, i := range order[lo : lo+rows] {
				copy(ws.xb[r*d:(r+1)*d], train.X[i*d:(i+1)*d])
				if spec.Task == Classification {
					ws.lb[r] = train.Labels[i]
				} else {
					ws.yb[r] = (train.Targets[i] - m.yMean) / m.yStd
				}
			}
			loss := m.lossGrad(ws, rows)
			if math.IsNaN(loss) || math.IsInf(loss, 0) {
				rep.EpochsRun = epoch
				return nil, rep, fmt.Errorf("%w: the training loss is %g at epoch %d", ErrDiverged, loss, epoch)
			}
			m.adam(ws, cfg.LearningRate)
			sum += loss * float64(rows)
			seen += rows
			if cfg.MaxTime > 0 && time.Since(start) > cfg.MaxTime {
				outOfTime = true
				break
			}
		}
		rep.EpochsRun = epoch
		st := EpochStats{Epoch: epoch, Loss: sum / float64(seen), ValLoss: math.NaN(), ValAccuracy: math.NaN(), Patience: cfg.Patience}
		if m.spec.Task == Regression {
			st.Loss *= scale
		}
		rep.TrainLoss = st.Loss
		if valid != nil {
			vm := evaluate(pred, spec, valid, evalBatch)
			st.ValLoss, st.ValAccuracy = vm.Loss, vm.Accuracy
			if math.IsNaN(st.ValLoss) || math.IsInf(st.ValLoss, 0) {
				return nil, rep, fmt.Errorf("%w: the validation loss is %g at epoch %d", ErrDiverged, st.ValLoss, epoch)
			}
			if es.observe(st.ValLoss) {
				copy(best, m.theta)
				rep.BestEpoch, rep.BestValLoss = epoch, st.ValLoss
			}
			st.Patience = es.patience
		} else {
			rep.BestEpoch = epoch
		}
		rep.History = append(rep.History, st)
		if cfg.OnEpoch != nil {
			cfg.OnEpoch(st)
		}
		if outOfTime {
			rep.StoppedBy = StoppedMaxTime
			break
		}
		if cfg.Stop != nil && cfg.Stop(st) {
			rep.StoppedBy = StoppedPruner
			break
		}
		if es.stop() && epoch < cfg.Epochs {
			rep.StoppedBy = StoppedEarly
			break
		}
	}
	if best != nil {
		copy(m.theta, best)
	}
	return m, rep, nil
}

func checkConfig(c Config) error {
	switch {
	case !(c.LearningRate > 0 && c.LearningRate < math.Inf(1)):
		return fmt.Errorf("nn: learning rate %g; want a positive number", c.LearningRate)
	case c.BatchSize < 1:
		return fmt.Errorf("nn: batch size %d; want at least 1", c.BatchSize)
	case c.Epochs < 1:
		return fmt.Errorf("nn: %d epochs; want at least 1", c.Epochs)
	case c.Patience < 0:
		return fmt.Errorf("nn: patience %d; want 0 or more", c.Patience)
	case !(c.HoldoutFraction < 1) || math.IsNaN(c.HoldoutFraction):
		return fmt.Errorf("nn: holdout fraction %g; want below 1", c.HoldoutFraction)
	}
	return nil
}

// holdOut draws a seeded share of train's rows for validation and returns
// the indices of the rest and a copy of the drawn rows; or every index and
// nil when train is too small to spare a row. The training rows are not
// copied: an epoch gathers its mini-batches by index anyway.
func holdOut(train *Data, cfg Config) ([]int, *Data) {
	f := cfg.HoldoutFraction
	if f == 0 {
		f = defaultHoldout
	}
	n := int(math.Round(f * float64(train.Rows)))
	if f < 0 || n < 1 || n >= train.Rows {
		all := make([]int, train.Rows)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	perm := rand.New(rand.NewPCG(cfg.Seed, holdoutStream)).Perm(train.Rows)
	held, kept := perm[:n], perm[n:]
	slices.Sort(held)
	slices.Sort(kept)
	return kept, train.Subset(held)
}

func meanStd(v []float32) (mean, std float32) {
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	mu := s / float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (float64(x) - mu) * (float64(x) - mu)
	}
	sd := math.Sqrt(ss / float64(len(v)))
	if !(sd > 0) || math.IsInf(sd, 0) {
		sd = 1
	}
	return float32(mu), float32(sd)
}
