package nn

import (
	"math"
	"slices"
)

// Early stopping ends training once the validation loss has gone
// Patience epochs without a new lowest. A validation loss is noisy: one
// lucky epoch can sit well below the curve's trend, and a fixed patience
// then stops a model that is still improving, only more slowly than its
// noise, while a quiet model that really stopped improving waits the same
// number of epochs.
//
// With Config.NoisePatience the patience follows the curve:
//
//  1. The noise σ is the spread of the epoch-to-epoch changes of the
//     validation loss: a change is the trend's step plus the difference
//     of two independent noise draws, so σ = 1.4826·MAD(Δ)/√2, where MAD is
//     the median absolute deviation of the changes Δ about their median
//     (the trend's step drops out; a spike moves it little).
//  2. The improvement rate r is minus the trend's slope over the last
//     2·Patience epochs (at least 5): the Theil–Sen slope, the median of
//     the slopes between every pair of those epochs.
//  3. If r is not above twice the standard error a least-squares slope
//     would have over that window, σ·√(12/(W(W²−1))), the curve shows no
//     improvement its noise cannot explain: the patience is Patience.
//  4. Otherwise the patience is ⌈3σ/r⌉ epochs, at least Patience and at
//     most 4·Patience (and the epochs asked): the best epoch so far may
//     sit 2σ below the trend (the lowest of a handful of noisy epochs
//     does), and a new epoch, noisy itself, beats it with good odds (5 in
//     6) only once the trend is a further σ below it; at rate r the trend
//     needs 3σ/r epochs for that. Stopping sooner stops a model whose
//     improvement is only hidden by its noise.
//
// Before 5 epochs there are too few changes to measure a noise, and the
// patience is Patience.

// Constants of the rule above.
const (
	noiseMinEpochs = 5
	noiseZ         = 2.0 // standard errors of a significant improvement
	noiseMargin    = 3.0 // noise deviations the trend must gain
	noiseMaxFactor = 4
)

// earlyStopping tracks a fit's validation losses and decides when to stop.
type earlyStopping struct {
	least, epochs int
	noise         bool
	losses        []float64
	best          float64
	since         int
	patience      int // in force after the last observed epoch
}

func newEarlyStopping(cfg Config) *earlyStopping {
	return &earlyStopping{least: cfg.Patience, epochs: cfg.Epochs, noise: cfg.NoisePatience, best: math.Inf(1), patience: cfg.Patience}
}

// observe records an epoch's validation loss and reports whether it is
// the lowest so far.
func (e *earlyStopping) observe(loss float64) bool {
	e.losses = append(e.losses, loss)
	improved := loss < e.best
	if improved {
		e.best, e.since = loss, 0
	} else {
		e.since++
	}
	if e.noise && e.least > 0 {
		e.patience = NoisePatience(e.losses, e.least, e.epochs)
	}
	return improved
}

// stop reports whether the epochs without a new lowest have reached the
// patience.
func (e *earlyStopping) stop() bool { return e.patience > 0 && e.since >= e.patience }

// NoisePatience is the patience the validation losses so far justify by
// the rule above: least unless the curve is still improving by more than
// its noise explains, then ⌈2σ/r⌉, at most 4·least and at most most.
func NoisePatience(losses []float64, least, most int) int {
	p, _, _ := noisePatience(losses, least, most)
	return p
}

// noisePatience is NoisePatience with the noise and rate it measured.
func noisePatience(losses []float64, least, most int) (patience int, sigma, rate float64) {
	n := len(losses)
	if least <= 0 || n < noiseMinEpochs {
		return least, math.NaN(), math.NaN()
	}
	deltas := make([]float64, n-1)
	for i := range deltas {
		deltas[i] = losses[i+1] - losses[i]
	}
	med := median(deltas)
	for i, d := range deltas {
		deltas[i] = math.Abs(d - med)
	}
	sigma = 1.4826 * median(deltas) / math.Sqrt2
	w := min(n, max(noiseMinEpochs, 2*least))
	rate = -theilSen(losses[n-w:])
	se := sigma * math.Sqrt(12/(float64(w)*(float64(w)*float64(w)-1)))
	if !(rate > noiseZ*se) || sigma == 0 {
		return least, sigma, rate
	}
	need := math.Ceil(noiseMargin * sigma / rate)
	hi := max(least, min(noiseMaxFactor*least, most))
	return int(max(float64(least), min(need, float64(hi)))), sigma, rate
}

// theilSen is the median of the slopes between every pair of points
// (x = index).
func theilSen(ys []float64) float64 {
	var slopes []float64
	for i := range ys {
		for j := i + 1; j < len(ys); j++ {
			slopes = append(slopes, (ys[j]-ys[i])/float64(j-i))
		}
	}
	return median(slopes)
}

// median is the middle value of vs (the mean of the middle two); it
// reorders vs.
func median(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}
