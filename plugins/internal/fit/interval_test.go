package fit

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFitPowerLawClusterIDs(t *testing.T) {
	truth := PowerLaw{QInf: 0.95, A: 2, Alpha: 0.4}
	n, q := noisyCurve(truth, 10, 0.01, 1, 5)
	opts := Options{Seed: 3, QMax: ptr(1.0), Bootstrap: 80}

	t.Run("one id per point is the default", func(t *testing.T) {
		plain, err := FitPowerLaw(n, q, opts)
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		for i := range n {
			o.Cluster = append(o.Cluster, 100-7*i)
		}
		ids, err := FitPowerLaw(n, q, o)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(plain, ids); diff != "" {
			t.Errorf("distinct ids changed the fit (-none +ids):\n%s", diff)
		}
		if plain.Clusters != len(n) {
			t.Errorf("Clusters = %d, want %d", plain.Clusters, len(n))
		}
	})

	t.Run("wrong length", func(t *testing.T) {
		o := opts
		o.Cluster = []int{1, 2, 3}
		if _, err := FitPowerLaw(n, q, o); err == nil {
			t.Error("3 ids for 10 points: no error")
		}
	})

	// Three measurements leave no degrees of freedom for the noise: no
	// replicates, and the intervals are the estimate, as with Bootstrap < 0.
	t.Run("three clusters", func(t *testing.T) {
		o := opts
		o.Cluster = []int{0, 0, 0, 1, 1, 1, 2, 2, 2, 2}
		f, err := FitPowerLaw(n, q, o)
		if err != nil {
			t.Fatal(err)
		}
		if f.Clusters != 3 || len(f.Replicates) != 0 || f.AlphaCI != (Interval{f.Alpha, f.Alpha}) {
			t.Errorf("Clusters %d, %d replicates, alpha interval %v; want 3, none, the estimate", f.Clusters, len(f.Replicates), f.AlphaCI)
		}
	})

	// Five copies of every point are still ten measurements. As clusters
	// they give the intervals of the ten points; as points they narrow
	// the parameters' intervals by about √5. (Not the band: copies at one
	// size look like measurements without noise, so the residuals look
	// like misfit, and the band widens by them.)
	t.Run("copies", func(t *testing.T) {
		once, err := FitPowerLaw(n, q, opts)
		if err != nil {
			t.Fatal(err)
		}
		var nn, qq []float64
		var ids []int
		for range 5 {
			nn = append(nn, n...)
			qq = append(qq, q...)
			for i := range n {
				ids = append(ids, i)
			}
		}
		asPoints, err := FitPowerLaw(nn, qq, opts)
		if err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Cluster = ids
		asClusters, err := FitPowerLaw(nn, qq, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name                 string
			once, points, clusts Interval
		}{
			{"q_inf", once.QInfCI, asPoints.QInfCI, asClusters.QInfCI},
			{"alpha", once.AlphaCI, asPoints.AlphaCI, asClusters.AlphaCI},
			{"q(1000)", once.Band(1000), asPoints.Band(1000), asClusters.Band(1000)},
		} {
			w := c.once.Hi - c.once.Lo
			if r := (c.clusts.Hi - c.clusts.Lo) / w; math.Abs(r-1) > 0.05 {
				t.Errorf("%s: copies as clusters %v, %.2f times as wide as the points once %v", c.name, c.clusts, r, c.once)
			}
			if r := (c.points.Hi - c.points.Lo) / w; c.name != "q(1000)" && r > 0.6 {
				t.Errorf("%s: copies as points %v, %.2f times as wide as the points once %v; want them narrowed", c.name, c.points, r, c.once)
			}
		}
	})
}

// The situation the ids exist for: ladders of lookups interpolated
// between 18 measurements. Counted as points, the lookups made the
// intervals narrower the more steps the ladder had (alpha 0.340
// [0.313, 0.364] at 6 steps, 0.365 [0.354, 0.374] at 64, from the same 18
// real measurements). Marked with the nearest measurement, intervals
// follow the measurements, not the steps: once the ladder reaches every
// measurement (18 steps and more), more steps do not narrow them, and
// they stay about as wide as the 18 measurements' own; a 6-step ladder
// reaches fewer measurements, and is wider.
func TestFitPowerLawLadderWidth(t *testing.T) {
	fam := families[0]
	steps := []int{6, 18, 36, 64}
	var direct float64
	clustered := make([]float64, len(steps))
	plain := make([]float64, len(steps))
	const seeds = 12
	width := func(n, q []float64, cluster []int, seed uint64) float64 {
		f, err := FitPowerLaw(n, q, Options{Seed: seed, QMax: ptr(1.0), Bootstrap: 100, Cluster: cluster})
		if err != nil {
			t.Fatal(err)
		}
		return f.AlphaCI.Hi - f.AlphaCI.Lo
	}
	for seed := range uint64(seeds) {
		// The same 18 measurements under every ladder: drawLadder draws
		// them first from the same seed.
		meas := drawLadder(rand.New(rand.NewPCG(seed, 1)), fam, 18, false)
		direct += width(meas.n, meas.q, nil, seed)
		for k, m := range steps {
			l := drawLadder(rand.New(rand.NewPCG(seed, 1)), fam, m, true)
			clustered[k] += width(l.n, l.q, l.cluster, seed)
			plain[k] += width(l.n, l.q, nil, seed)
		}
	}
	for k, m := range steps {
		t.Logf("%2d steps: alpha interval %.2f times as wide as the 18 measurements' with ids, %.2f without", m, clustered[k]/direct, plain[k]/direct)
	}
	// The old overconfidence, reproduced without ids.
	if plain[3] > 0.55*plain[1] {
		t.Errorf("64 lookups as points: %.2f times as wide as 18 lookups, expected the old narrowing (under 0.55)", plain[3]/plain[1])
	}
	for k := 1; k < len(steps); k++ {
		if r := clustered[k] / direct; r < 0.85 {
			t.Errorf("%d lookups in 18 clusters: intervals %.2f times as wide as the 18 measurements', want at least 0.85", steps[k], r)
		}
		if r := clustered[k] / clustered[1]; r < 0.85 {
			t.Errorf("%d lookups in 18 clusters: intervals %.2f times as wide as 18 lookups', want no narrowing (at least 0.85)", steps[k], r)
		}
	}
	if clustered[0] < clustered[3] {
		t.Errorf("6 lookups (reaching at most 12 measurements) gave narrower intervals than 64 (reaching all 18): %.3f < %.3f", clustered[0]/seeds, clustered[3]/seeds)
	}
}

// Noise and Misfit tell the two apart: on the law itself the misfit is
// small beside the noise; on a law with a wiggle of 0.01 and noise of
// 0.001 it is most of the residual, and the band widened by it holds the
// curve at most sizes.
func TestFitPowerLawNoiseAndMisfit(t *testing.T) {
	truth := PowerLaw{QInf: 0.95, A: 3, Alpha: 0.5}
	wiggle := func(n float64) float64 { return truth.At(n) + 0.01*math.Sin(2*math.Pi*math.Log10(n)/2) }
	const seeds = 10
	var lawNoise, lawMisfit, wigNoise, wigMisfit float64
	inside, checked := 0, 0
	for seed := range uint64(seeds) {
		n, q := noisyCurve(truth, 14, 0.01, 1, seed)
		f, err := FitPowerLaw(n, q, Options{Seed: seed, QMax: ptr(1.0), Bootstrap: 100})
		if err != nil {
			t.Fatal(err)
		}
		lawNoise += f.Noise / seeds
		lawMisfit += f.Misfit / seeds

		rng := rand.New(rand.NewPCG(seed, 2))
		for i := range q {
			q[i] = wiggle(n[i]) + 0.001*rng.NormFloat64()
		}
		f, err = FitPowerLaw(n, q, Options{Seed: seed, QMax: ptr(1.0), Bootstrap: 100})
		if err != nil {
			t.Fatal(err)
		}
		wigNoise += f.Noise / seeds
		wigMisfit += f.Misfit / seeds
		for k := range 20 {
			size := 100 * math.Pow(1000, (float64(k)+0.5)/20)
			checked++
			if f.Band(size).Contains(wiggle(size)) {
				inside++
			}
		}
	}
	t.Logf("law, noise 0.01: Noise %.4f, Misfit %.4f; wiggle 0.01, noise 0.001: Noise %.4f, Misfit %.4f, curve inside the band at %d of %d sizes",
		lawNoise, lawMisfit, wigNoise, wigMisfit, inside, checked)
	if lawNoise < 0.006 || lawNoise > 0.014 {
		t.Errorf("law: mean Noise %.4f, want about 0.01", lawNoise)
	}
	if lawMisfit > 0.5*lawNoise {
		t.Errorf("law: mean Misfit %.4f, want well below the noise %.4f", lawMisfit, lawNoise)
	}
	if wigMisfit < 0.004 || wigMisfit < 2*wigNoise {
		t.Errorf("wiggle: mean Misfit %.4f, Noise %.4f; want the misfit to dominate", wigMisfit, wigNoise)
	}
	if float64(inside) < 0.8*float64(checked) {
		t.Errorf("wiggle: the curve inside the 90%% band at %d of %d sizes, want at least 80%%", inside, checked)
	}
}

// The bootstrap refits with Levenberg–Marquardt; from the same start it
// must reach the optimum L-BFGS reaches, in least squares and in soft-L1.
func TestRefitMatchesMinimize(t *testing.T) {
	truth := PowerLaw{QInf: 0.93, A: 2.5, Alpha: 0.45}
	for seed := range uint64(8) {
		n, q := noisyCurve(truth, 9, 0.01, 1, seed)
		x := make([]float64, len(n))
		lx := make([]float64, len(n))
		for i := range n {
			x[i] = n[i] / 3000
			lx[i] = math.Log(x[i])
		}
		for _, scale := range []float64{0, 0.005} {
			p := &problem{x: x, lx: lx, y: q, qmax: ptr(1.0), maxAlpha: 4, spread: spread(q), scale: scale}
			start := p.theta(0.9, 0.1, 0.3)
			want, fw, _ := p.minimize(start)
			got, fg := p.refit(start)
			if got == nil || fg > fw*(1+1e-6)+1e-15 {
				t.Errorf("seed %d, scale %g: refit loss %g, L-BFGS %g", seed, scale, fg, fw)
				continue
			}
			a, b := p.curve(want, 3000), p.curve(got, 3000)
			if math.Abs(a.QInf-b.QInf) > 1e-4 || math.Abs(a.Alpha-b.Alpha) > 1e-3 {
				t.Errorf("seed %d, scale %g: refit %+v, L-BFGS %+v", seed, scale, b, a)
			}
		}
	}
}
