package fit

import (
	"math"
	"math/rand/v2"
	"testing"
)

// grid measures law at every pair of sizes and resources, each its own
// run, with multiplicative log-normal noise of standard deviation sigma.
func grid(law ScalingLaw, ns, ds []float64, sigma float64, rng *rand.Rand) (n, d, y []float64) {
	for _, a := range ns {
		for _, b := range ds {
			n = append(n, a)
			d = append(d, b)
			y = append(y, law.At(a, b)*math.Exp(sigma*rng.NormFloat64()))
		}
	}
	return n, d, y
}

func TestFitScalingExact(t *testing.T) {
	for _, c := range []struct {
		name string
		law  ScalingLaw
		ns   []float64
		ds   []float64
	}{
		{"large sizes", ScalingLaw{E: 0.8, A: 900, Alpha: 0.45, B: 120, Beta: 0.22}, logSpaced(1e6, 1e9, 5), logSpaced(1e8, 1e11, 5)},
		{"small mlp", ScalingLaw{E: 0.25, A: 30, Alpha: 0.6, B: 8, Beta: 0.35}, logSpaced(1e3, 1e5, 6), logSpaced(2e3, 6e5, 4)},
		{"steep", ScalingLaw{E: 0.05, A: 2, Alpha: 1.2, B: 50, Beta: 0.9}, logSpaced(10, 1e4, 5), logSpaced(100, 1e5, 5)},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, d, y := grid(c.law, c.ns, c.ds, 0, rand.New(rand.NewPCG(1, 1)))
			f, err := FitScaling(n, d, y, ScalingOptions{Bootstrap: -1})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []struct {
				name      string
				got, want float64
			}{{"E", f.E, c.law.E}, {"A", f.A, c.law.A}, {"alpha", f.Alpha, c.law.Alpha}, {"B", f.B, c.law.B}, {"beta", f.Beta, c.law.Beta}} {
				if math.Abs(p.got-p.want) > 1e-3*p.want {
					t.Errorf("%s = %.6g, want %.6g", p.name, p.got, p.want)
				}
			}
			if f.RMSLE > 1e-5 {
				t.Errorf("RMSLE %g on exact data", f.RMSLE)
			}
		})
	}
}

func TestFitScalingNoisy(t *testing.T) {
	law := ScalingLaw{E: 0.3, A: 40, Alpha: 0.5, B: 25, Beta: 0.4}
	ns, ds := logSpaced(1e3, 1e6, 8), logSpaced(1e3, 1e6, 8)
	n, d, y := grid(law, ns, ds, 0.01, rand.New(rand.NewPCG(4, 4)))
	f, err := FitScaling(n, d, y, ScalingOptions{Bootstrap: 100, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// 64 runs at 1% noise pin the exponents to a few hundredths; the
	// intervals must hold the law and be that narrow.
	for _, p := range []struct {
		name      string
		got, want float64
		ci        Interval
		tol       float64
	}{
		{"E", f.E, law.E, f.ECI, 0.02},
		{"alpha", f.Alpha, law.Alpha, f.AlphaCI, 0.05},
		{"beta", f.Beta, law.Beta, f.BetaCI, 0.05},
	} {
		if math.Abs(p.got-p.want) > p.tol {
			t.Errorf("%s = %.4f, want %.4f ± %g", p.name, p.got, p.want, p.tol)
		}
		if !p.ci.Contains(p.want) {
			t.Errorf("%s interval %v misses the law's %.4f", p.name, p.ci, p.want)
		}
		if p.ci.Hi-p.ci.Lo > 4*p.tol {
			t.Errorf("%s interval %v wider than %g", p.name, p.ci, 4*p.tol)
		}
	}
	if f.RMSLE > 0.015 || f.RMSLE < 0.005 {
		t.Errorf("RMSLE %.4f, want about the noise 0.01", f.RMSLE)
	}
	if f.Runs != 64 || f.SizesN != 8 || f.SizesD != 8 {
		t.Errorf("runs %d, sizes %d, resources %d; want 64, 8, 8", f.Runs, f.SizesN, f.SizesD)
	}
}

// A diverged run, its loss ten times the law's, moves a Huber fit on log
// residuals hardly at all.
func TestFitScalingOutlier(t *testing.T) {
	law := ScalingLaw{E: 0.3, A: 40, Alpha: 0.5, B: 25, Beta: 0.4}
	n, d, y := grid(law, logSpaced(1e3, 1e6, 5), logSpaced(1e3, 1e6, 5), 0.005, rand.New(rand.NewPCG(5, 5)))
	y[7] *= 10
	f, err := FitScaling(n, d, y, ScalingOptions{Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.Alpha-law.Alpha) > 0.03 || math.Abs(f.Beta-law.Beta) > 0.03 || math.Abs(f.E-law.E) > 0.01 {
		t.Errorf("with one diverged run: E %.4f alpha %.4f beta %.4f; want %.4f %.4f %.4f", f.E, f.Alpha, f.Beta, law.E, law.Alpha, law.Beta)
	}
}

// The saturating accuracy analogue: acc = QMax − L(N, D), fitted on the
// gap below QMax.
func TestFitScalingAccuracy(t *testing.T) {
	law := ScalingLaw{E: 0.04, A: 3, Alpha: 0.45, B: 6, Beta: 0.55}
	var n, d, acc []float64
	rng := rand.New(rand.NewPCG(6, 6))
	for _, a := range logSpaced(100, 1e5, 6) {
		for _, b := range logSpaced(500, 5e5, 5) {
			n, d = append(n, a), append(d, b)
			acc = append(acc, 1-law.At(a, b)*math.Exp(0.01*rng.NormFloat64()))
		}
	}
	f, err := FitScaling(n, d, acc, ScalingOptions{QMax: ptr(1.0), Bootstrap: 100, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !f.AlphaCI.Contains(law.Alpha) || !f.BetaCI.Contains(law.Beta) || !f.ECI.Contains(law.E) {
		t.Errorf("intervals E %v alpha %v beta %v miss the law %+v", f.ECI, f.AlphaCI, f.BetaCI, law)
	}
	want := 1 - law.At(3e4, 1e5)
	if got := f.Quality(3e4, 1e5); math.Abs(got-want) > 0.005 {
		t.Errorf("accuracy at (3e4, 1e5) = %.4f, want %.4f", got, want)
	}
	if b := f.Band(3e4, 1e5); !b.Contains(want) || b.Hi > 1 {
		t.Errorf("band at (3e4, 1e5) = %v, want it to hold %.4f below 1", b, want)
	}
	// An accuracy of exactly 1 is a gap at the floor, not an error.
	acc[len(acc)-1] = 1
	if _, err := FitScaling(n, d, acc, ScalingOptions{QMax: ptr(1.0), Bootstrap: -1}); err != nil {
		t.Errorf("accuracy 1: %v", err)
	}
}

func TestFitScalingBadInput(t *testing.T) {
	n, d, y := grid(ScalingLaw{E: 1, A: 1, Alpha: 0.5, B: 1, Beta: 0.5}, logSpaced(10, 1e3, 3), logSpaced(10, 1e3, 3), 0, rand.New(rand.NewPCG(1, 1)))
	for _, c := range []struct {
		name    string
		n, d, y []float64
		o       ScalingOptions
	}{
		{"lengths", n, d[:3], y, ScalingOptions{}},
		{"zero size", append([]float64{0}, n[1:]...), d, y, ScalingOptions{}},
		{"negative resource", n, append([]float64{-1}, d[1:]...), y, ScalingOptions{}},
		{"NaN", n, d, append([]float64{math.NaN()}, y[1:]...), ScalingOptions{}},
		{"zero loss", n, d, append([]float64{0}, y[1:]...), ScalingOptions{}},
		{"above QMax", n, d, y, ScalingOptions{QMax: ptr(0.5)}},
		{"run ids", n, d, y, ScalingOptions{Run: []int{1}}},
		{"two sizes", n[:6], d[:6], y[:6], ScalingOptions{}},
		{"five runs", n, d, y, ScalingOptions{Run: []int{0, 0, 1, 1, 2, 2, 3, 3, 4}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := FitScaling(c.n, c.d, c.y, c.o); err == nil {
				t.Error("no error")
			}
		})
	}
	if _, err := FitScaling(n, d, y, ScalingOptions{Bootstrap: -1}); err != nil {
		t.Errorf("3 sizes x 3 resources: %v", err)
	}
}

// Points read off one run share its luck: counted as runs, the intervals
// are wider than when every point is taken for a run of its own. The run
// effect lifts all of a run's checkpoints alike, so it blurs how loss
// falls with size (alpha), not how it falls along one run (beta).
func TestFitScalingRunsWiden(t *testing.T) {
	var wider int
	for seed := range uint64(10) {
		w := drawCheckpoints(rand.New(rand.NewPCG(seed, 11)))
		runs, err := FitScaling(w.n, w.d, w.y, ScalingOptions{Bootstrap: 100, Seed: seed, Run: w.run})
		if err != nil {
			t.Fatal(err)
		}
		points, err := FitScaling(w.n, w.d, w.y, ScalingOptions{Bootstrap: 100, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		if runs.Runs != len(w.n)/3 || points.Runs != len(w.n) {
			t.Fatalf("runs %d and %d, want %d and %d", runs.Runs, points.Runs, len(w.n)/3, len(w.n))
		}
		if runs.AlphaCI.Hi-runs.AlphaCI.Lo > points.AlphaCI.Hi-points.AlphaCI.Lo {
			wider++
		}
	}
	if wider < 8 {
		t.Errorf("the alpha interval over runs was wider than over points in %d of 10 sweeps, want at least 8", wider)
	}
}

// A new run lands inside RunBand at the promised rate: fit sweeps from a
// known law with noise, and measure one more run beyond them.
func TestScalingRunBandCoverage(t *testing.T) {
	law := ScalingLaw{E: 0.3, A: 40, Alpha: 0.5, B: 25, Beta: 0.4}
	const worlds = 60
	var inRun, inLaw int
	for i := range uint64(worlds) {
		rng := rand.New(rand.NewPCG(i, 21))
		sigma := 0.005 * math.Pow(6, rng.Float64())
		n, d, y := grid(law, logSpaced(1e3, 1e5, 5), logSpaced(1e3, 1e5, 4), sigma, rng)
		f, err := FitScaling(n, d, y, ScalingOptions{Bootstrap: 100, Seed: i})
		if err != nil {
			t.Fatal(err)
		}
		// The held-out run: twice the largest size, twice the longest.
		measured := law.At(2e5, 2e5) * math.Exp(sigma*rng.NormFloat64())
		if f.RunBand(2e5, 2e5).Contains(measured) {
			inRun++
		}
		if f.Band(2e5, 2e5).Contains(measured) {
			inLaw++
		}
	}
	t.Logf("a held-out run inside RunBand in %d of %d sweeps, inside Band in %d", inRun, worlds, inLaw)
	if inRun < worlds*80/100 {
		t.Errorf("a held-out run inside the 90%% RunBand in %d of %d sweeps, want at least 80%%", inRun, worlds)
	}
}
