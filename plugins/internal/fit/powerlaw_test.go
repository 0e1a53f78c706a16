package fit

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// noisyCurve samples truth at n log-spaced sizes from 100 to 10^5 with
// Gaussian noise of standard deviation sigma, capped at cap.
func noisyCurve(truth PowerLaw, n int, sigma, cap float64, seed uint64) (sizes, q []float64) {
	rng := rand.New(rand.NewPCG(seed, 99))
	for i := range n {
		N := 100 * math.Pow(1000, float64(i)/float64(n-1))
		sizes = append(sizes, N)
		q = append(q, math.Min(truth.At(N)+sigma*rng.NormFloat64(), cap))
	}
	return sizes, q
}

func ptr[T any](v T) *T { return &v }

func TestFitPowerLawExact(t *testing.T) {
	truth := PowerLaw{QInf: 0.97, A: 3.7, Alpha: 0.5}
	n, q := noisyCurve(truth, 8, 0, 1, 1)
	f, err := FitPowerLaw(n, q, Options{QMax: ptr(1.0), Bootstrap: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"q_inf", f.QInf, truth.QInf}, {"a", f.A, truth.A}, {"alpha", f.Alpha, truth.Alpha}} {
		if math.Abs(c.got-c.want) > 1e-3*math.Abs(c.want) {
			t.Errorf("%s = %.6g, want %.6g", c.name, c.got, c.want)
		}
	}
	if !f.Converged {
		t.Error("not converged on exact data")
	}
	if f.RMSE > 1e-6 {
		t.Errorf("RMSE %g on exact data", f.RMSE)
	}
	if f.R2 < 1-1e-9 {
		t.Errorf("R² %g on exact data", f.R2)
	}
	// The size at which the lower band reaches 0.95 is the exact inverse.
	want, _ := truth.SizeFor(0.95)
	got, ok := f.FirstLowerAtLeast(0.95, 100, 1e5)
	if !ok || math.Abs(got-want) > 1e-2*want {
		t.Errorf("FirstLowerAtLeast(0.95) = %g, %t; want %g", got, ok, want)
	}
	if _, ok := f.FirstLowerAtLeast(0.99, 100, 1e5); ok {
		t.Error("FirstLowerAtLeast(0.99) found a size above the asymptote 0.97")
	}
}

// The true parameters must fall inside the fitted 95% intervals in most of
// 20 independent noisy samples (a correct 95% interval misses about one in
// twenty), and the intervals must stay narrow enough to mean something.
func TestFitPowerLawCoverage(t *testing.T) {
	truth := PowerLaw{QInf: 0.97, A: 3.7, Alpha: 0.5}
	const seeds = 20
	var hitQ, hitA, hitAlpha, hitBand int
	for seed := range uint64(seeds) {
		n, q := noisyCurve(truth, 12, 0.01, 1, seed)
		f, err := FitPowerLaw(n, q, Options{Confidence: 0.95, Seed: seed, QMax: ptr(1.0)})
		if err != nil {
			t.Fatal(err)
		}
		if f.QInfCI.Contains(truth.QInf) {
			hitQ++
		}
		if f.ACI.Contains(truth.A) {
			hitA++
		}
		if f.AlphaCI.Contains(truth.Alpha) {
			hitAlpha++
		}
		if f.Band(3000).Contains(truth.At(3000)) {
			hitBand++
		}
		if w := f.QInfCI.Hi - f.QInfCI.Lo; w > 0.06 {
			t.Errorf("seed %d: q_inf interval %v is %.3f wide", seed, f.QInfCI, w)
		}
		if w := f.AlphaCI.Hi - f.AlphaCI.Lo; w > 0.4 {
			t.Errorf("seed %d: alpha interval %v is %.3f wide", seed, f.AlphaCI, w)
		}
		if !(f.QInfCI.Lo <= f.QInf && f.QInf <= f.QInfCI.Hi) {
			t.Errorf("seed %d: estimate %g outside its interval %v", seed, f.QInf, f.QInfCI)
		}
		if len(f.Replicates) < 190 {
			t.Errorf("seed %d: only %d of 200 bootstrap refits succeeded", seed, len(f.Replicates))
		}
	}
	t.Logf("95%% intervals containing the truth over %d seeds: q_inf %d, A %d, alpha %d, q(3000) %d", seeds, hitQ, hitA, hitAlpha, hitBand)
	for name, hits := range map[string]int{"q_inf": hitQ, "A": hitA, "alpha": hitAlpha, "q(3000)": hitBand} {
		if hits < 16 {
			t.Errorf("%s: the truth is inside the 95%% interval in %d of %d seeds, want at least 16", name, hits, seeds)
		}
	}
}

// One wild point (a diverged training run) must not drag the robust fit the
// way it drags least squares.
func TestFitPowerLawRobust(t *testing.T) {
	truth := PowerLaw{QInf: 0.97, A: 3.7, Alpha: 0.5}
	n, q := noisyCurve(truth, 10, 0.003, 1, 4)
	q[7] = 0.55 // a large model that failed to train
	robust, err := FitPowerLaw(n, q, Options{QMax: ptr(1.0), Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	// A scale far above every residual turns soft-L1 into least squares.
	ls, err := FitPowerLaw(n, q, Options{QMax: ptr(1.0), Bootstrap: -1, Scale: 100})
	if err != nil {
		t.Fatal(err)
	}
	errRobust, errLS := math.Abs(robust.QInf-truth.QInf), math.Abs(ls.QInf-truth.QInf)
	t.Logf("q_inf error: robust %.4f, least squares %.4f", errRobust, errLS)
	if errRobust > 0.01 {
		t.Errorf("robust q_inf %.4f is %.4f from the truth %.2f", robust.QInf, errRobust, truth.QInf)
	}
	if errRobust > errLS/3 {
		t.Errorf("robust error %.4f is not well below the least-squares error %.4f", errRobust, errLS)
	}
}

func TestFitPowerLawUnbounded(t *testing.T) {
	// A loss falling towards 0.2, fitted as the rising quality −loss with
	// no upper bound on the asymptote.
	truth := PowerLaw{QInf: -0.2, A: 50, Alpha: 0.7}
	n, q := noisyCurve(truth, 9, 0, math.Inf(1), 0)
	f, err := FitPowerLaw(n, q, Options{Bootstrap: -1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.QInf-truth.QInf) > 1e-3 || math.Abs(f.Alpha-truth.Alpha) > 1e-3 {
		t.Errorf("fit %+v, want %+v", f.PowerLaw, truth)
	}
	if f.QInfCI != (Interval{f.QInf, f.QInf}) {
		t.Errorf("without bootstrap the interval is %v, want the estimate", f.QInfCI)
	}
}

func TestFitPowerLawDeterministic(t *testing.T) {
	n, q := noisyCurve(PowerLaw{QInf: 0.9, A: 2, Alpha: 0.4}, 7, 0.01, 1, 3)
	a, err := FitPowerLaw(n, q, Options{Seed: 11, QMax: ptr(1.0), Bootstrap: 60})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := FitPowerLaw(n, q, Options{Seed: 11, QMax: ptr(1.0), Bootstrap: 60})
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different fits (-first +second):\n%s", diff)
	}
	c, _ := FitPowerLaw(n, q, Options{Seed: 12, QMax: ptr(1.0), Bootstrap: 60})
	if cmp.Equal(a.Replicates, c.Replicates) {
		t.Error("different seeds gave the same bootstrap replicates")
	}
}

func TestFitPowerLawErrors(t *testing.T) {
	cases := []struct {
		name string
		n, q []float64
		opts Options
		is   error
	}{
		{"mismatch", []float64{1, 2, 3}, []float64{1, 2}, Options{}, nil},
		{"two sizes", []float64{10, 10, 20, 20}, []float64{0.5, 0.6, 0.7, 0.7}, Options{}, ErrTooFewPoints},
		{"zero size", []float64{0, 10, 20}, []float64{0.5, 0.6, 0.7}, Options{}, nil},
		{"nan quality", []float64{5, 10, 20}, []float64{0.5, math.NaN(), 0.7}, Options{}, nil},
		{"above bound", []float64{5, 10, 20}, []float64{0.5, 0.6, 1.2}, Options{QMax: ptr(1.0)}, nil},
		{"bad confidence", []float64{5, 10, 20}, []float64{0.5, 0.6, 0.7}, Options{Confidence: 1.5}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := FitPowerLaw(c.n, c.q, c.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %v, want %v", err, c.is)
			}
		})
	}
}

func TestPowerLawSizeFor(t *testing.T) {
	p := PowerLaw{QInf: 0.97, A: 3.7, Alpha: 0.5}
	n, ok := p.SizeFor(0.95)
	if !ok || math.Abs(p.At(n)-0.95) > 1e-12 {
		t.Errorf("SizeFor(0.95) = %g, %t; q there %g", n, ok, p.At(n))
	}
	for _, q := range []float64{0.97, 0.99} {
		if _, ok := p.SizeFor(q); ok {
			t.Errorf("SizeFor(%g) found a size at or above the asymptote", q)
		}
	}
}

func TestQuantile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5}
	for _, c := range []struct{ p, want float64 }{{0, 1}, {0.5, 3}, {0.25, 2}, {0.1, 1.4}, {1, 5}} {
		if got := Quantile(v, c.p); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("Quantile(%g) = %g, want %g", c.p, got, c.want)
		}
	}
}
