package nn

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
)

// The synthetic curve: a validation loss whose trend falls by slope per
// epoch until epoch plateau and is flat after, plus Gaussian noise of
// deviation sigma. Its answer is known by construction: while it falls,
// the patience the rule must find is ⌈3·sigma/slope⌉ (23 epochs), and a
// model is still improving until epoch plateau.
const (
	synthSigma   = 0.03
	synthSlope   = 0.004
	synthPlateau = 60
	synthEpochs  = 150
	synthSeeds   = 201
)

func synthCurve(seed uint64, slope float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 99))
	out := make([]float64, synthEpochs)
	for i := range out {
		t := float64(min(i+1, synthPlateau))
		out[i] = 1 - slope*t + synthSigma*rng.NormFloat64()
	}
	return out
}

func medianOf(vs []float64) float64 { return median(slices.Clone(vs)) }

func TestNoisePatienceKnownAnswer(t *testing.T) {
	want := math.Ceil(3 * synthSigma / synthSlope) // 23, from the generator
	var ps, sigmas []float64
	for seed := range uint64(synthSeeds) {
		losses := synthCurve(seed, synthSlope)[:40] // well inside the fall
		p, sigma, _ := noisePatience(losses, 10, synthEpochs)
		ps, sigmas = append(ps, float64(p)), append(sigmas, sigma)
	}
	if got := medianOf(ps); math.Abs(got-want) > 0.15*want {
		t.Errorf("median patience %g over %d noisy curves, want %g ± 15%% (3σ/slope)", got, synthSeeds, want)
	}
	if got := medianOf(sigmas); math.Abs(got-synthSigma) > 0.1*synthSigma {
		t.Errorf("median measured noise %g, want %g ± 10%%", got, synthSigma)
	}

	// A flat noisy curve shows no improvement: the patience stays the
	// least in all but a few curves (a one-sided 2-SE test is wrong about
	// 2.3% of the time).
	flat := 0
	for seed := range uint64(synthSeeds) {
		if NoisePatience(synthCurve(seed, 0)[:40], 10, synthEpochs) == 10 {
			flat++
		}
	}
	if flat < synthSeeds*9/10 {
		t.Errorf("a flat curve got a longer patience in %d of %d curves", synthSeeds-flat, synthSeeds)
	}

	// Bounds: fewer than 5 epochs, no least patience, and the cap.
	if got := NoisePatience([]float64{1, 0.9, 0.8, 0.7}, 3, 100); got != 3 {
		t.Errorf("4 epochs: patience %d, want 3", got)
	}
	steep := []float64{1, 0.99, 0.98001, 0.97, 0.96002, 0.95, 0.94, 0.93003}
	if got := NoisePatience(steep, 0, 100); got != 0 {
		t.Errorf("patience 0 (train every epoch) became %d", got)
	}
	if got := NoisePatience(synthCurve(1, 0.0002)[:40], 2, 100); got > 8 {
		t.Errorf("patience %d over the cap 4·2", got)
	}
}

// Early stopping on the synthetic curves: a fixed patience of 10 cuts
// many of them while their trend still falls (10 epochs are fewer than
// the 23 needed to beat a lucky epoch), the measured patience far fewer;
// both stop once the curve is flat. Before 2·Patience epochs the rule
// has too few epochs to see an improvement through the noise and keeps
// the least patience, so the cuts counted are those after epoch 20 and
// before epoch 45, when the trend had still 2σ to fall.
func TestNoisePatienceStopsAfterThePlateau(t *testing.T) {
	const least = 10
	stopEpoch := func(losses []float64, noise bool) int {
		es := newEarlyStopping(Config{Patience: least, Epochs: len(losses), NoisePatience: noise})
		for i, l := range losses {
			es.observe(l)
			if es.stop() {
				return i + 1
			}
		}
		return len(losses)
	}
	early := synthPlateau - int(math.Ceil(2*synthSigma/synthSlope))
	cutEarly := func(e int) bool { return e > 2*least && e < early }
	var fixedEarly, noiseEarly, noiseNever int
	for seed := range uint64(synthSeeds) {
		c := synthCurve(seed, synthSlope)
		if cutEarly(stopEpoch(c, false)) {
			fixedEarly++
		}
		e := stopEpoch(c, true)
		if cutEarly(e) {
			noiseEarly++
		}
		if e == synthEpochs {
			noiseNever++
		}
	}
	t.Logf("cut between epochs %d and %d: fixed patience %d of %d curves, measured patience %d; never stopped %d", 2*least, early, fixedEarly, synthSeeds, noiseEarly, noiseNever)
	if fixedEarly < synthSeeds/5 {
		t.Errorf("fixed patience cut only %d curves early: the curve is not noisy enough to test the rule", fixedEarly)
	}
	if noiseEarly*2 > fixedEarly {
		t.Errorf("measured patience cut %d curves early, fixed patience %d: want at most half", noiseEarly, fixedEarly)
	}
	if noiseNever > synthSeeds/20 {
		t.Errorf("measured patience never stopped %d of %d curves flat for 90 epochs", noiseNever, synthSeeds)
	}
}

// In a real fit, Stop ends training at the epoch it says so, keeping the
// best weights so far, and NoisePatience's patience is at least Patience
// and follows the rule on the fit's own validation losses.
func TestFitStopAndNoisePatience(t *testing.T) {
	train, _ := toData(t, generate(t, dataset.GenBlobs, 300, 5), 0.2, 5, 1)
	spec := Spec{Inputs: 4, Hidden: []int{16}, Outputs: 3}
	var seen []EpochStats
	_, rep := fit(t, spec, train, Config{LearningRate: 1e-2, BatchSize: 16, Epochs: 30, Patience: 3, NoisePatience: true, Seed: 2,
		Stop: func(st EpochStats) bool { seen = append(seen, st); return st.Epoch == 6 }})
	if rep.StoppedBy != StoppedPruner || rep.EpochsRun != 6 || len(seen) != 6 || rep.BestEpoch > 6 {
		t.Errorf("stopped by %s after %d epochs (%d asked, best %d), want the pruner after 6", rep.StoppedBy, rep.EpochsRun, len(seen), rep.BestEpoch)
	}
	var losses []float64
	for i, st := range rep.History {
		losses = append(losses, st.ValLoss)
		if want := NoisePatience(losses, 3, 30); st.Patience != want || st.Patience < 3 {
			t.Errorf("epoch %d: patience %d, want %d by the rule on its losses (at least 3)", st.Epoch, st.Patience, want)
		}
		if math.IsNaN(st.ValAccuracy) || st.ValAccuracy != seen[i].ValAccuracy {
			t.Errorf("epoch %d: validation accuracy %g (Stop saw %g)", st.Epoch, st.ValAccuracy, seen[i].ValAccuracy)
		}
	}
}
