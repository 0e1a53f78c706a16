package fit

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// This file measures how often the 90% intervals of FitScaling contain
// the law the data came from. Each world draws a known law, a design of
// runs over sizes and resources, noise, and for some kinds a misfit the
// law cannot follow; the ground truth is always the known law.

// A world is one synthetic sweep: the points, their run ids, and the law.
type world struct {
	n, d, y []float64
	run     []int
	law     ScalingLaw
	// at are (size, resource) pairs inside the design where the band is
	// checked against the law.
	at [][2]float64
	// budget is a compute budget, 6·N·D at the design's middle, where
	// N*(C) is checked against the law's.
	budget float64
}

// drawLaw returns a law whose two terms are each 0.3 to 2 times E at the
// geometric middle (nm, dm) of the design.
func drawLaw(rng *rand.Rand, nm, dm float64) ScalingLaw {
	l := ScalingLaw{E: math.Exp(uniform(rng, math.Log(0.05), math.Log(2))), Alpha: uniform(rng, 0.2, 0.9), Beta: uniform(rng, 0.2, 0.9)}
	l.A = uniform(rng, 0.3, 2) * l.E * math.Pow(nm, l.Alpha)
	l.B = uniform(rng, 0.3, 2) * l.E * math.Pow(dm, l.Beta)
	return l
}

// worldKinds are the kinds of sweep measured:
//   - grid: every size at every resource, each point its own run, log-normal
//     noise of 0.5% to 3%;
//   - checkpoints: runs of each size to three lengths, each read at three
//     checkpoints on the way; a run's points share a run effect as large as
//     their own noise;
//   - misfit: the grid, times exp(m(N, D)) where m is a wave in log size
//     and log resource, 0.5 to 2 times the noise high, which no law of this
//     form follows.
var worldKinds = []struct {
	name string
	draw func(rng *rand.Rand) world
}{
	{"grid", func(rng *rand.Rand) world { return drawGrid(rng, nil) }},
	{"checkpoints", drawCheckpoints},
	{"sparse", func(rng *rand.Rand) world { return drawSparse(rng) }},
	{"misfit", func(rng *rand.Rand) world {
		amp := uniform(rng, 0.5, 2)
		pn, pd := uniform(rng, 1, 3), uniform(rng, 1, 3)
		phn, phd := uniform(rng, 0, 2*math.Pi), uniform(rng, 0, 2*math.Pi)
		return drawGrid(rng, func(n, d, sigma float64) float64 {
			return amp * sigma * math.Sin(2*math.Pi*math.Log10(n)/pn+phn) * math.Cos(2*math.Pi*math.Log10(d)/pd+phd)
		})
	}},
}

func drawDesign(rng *rand.Rand) (ns, ds []float64) {
	nlo := math.Pow(10, uniform(rng, 2, 5))
	dlo := math.Pow(10, uniform(rng, 2, 5))
	ns = logSpaced(nlo, nlo*math.Pow(10, uniform(rng, 1.5, 3)), 4+rng.IntN(3))
	ds = logSpaced(dlo, dlo*math.Pow(10, uniform(rng, 1.5, 3)), 3+rng.IntN(3))
	return ns, ds
}

func drawGrid(rng *rand.Rand, misfit func(n, d, sigma float64) float64) world {
	ns, ds := drawDesign(rng)
	w := world{law: drawLaw(rng, math.Sqrt(ns[0]*ns[len(ns)-1]), math.Sqrt(ds[0]*ds[len(ds)-1]))}
	sigma := 0.005 * math.Pow(6, rng.Float64())
	for _, n := range ns {
		for _, d := range ds {
			v := math.Log(w.law.At(n, d)) + sigma*rng.NormFloat64()
			if misfit != nil {
				v += misfit(n, d, sigma)
			}
			w.n, w.d, w.y = append(w.n, n), append(w.d, d), append(w.y, math.Exp(v))
			w.run = append(w.run, len(w.run))
		}
	}
	w.pick(rng, ns, ds)
	return w
}

// drawSparse is the smallest design the fit takes: three sizes at three
// resources, with the misfit wave.
func drawSparse(rng *rand.Rand) world {
	ns, ds := drawDesign(rng)
	ns = []float64{ns[0], math.Sqrt(ns[0] * ns[len(ns)-1]), ns[len(ns)-1]}
	ds = []float64{ds[0], math.Sqrt(ds[0] * ds[len(ds)-1]), ds[len(ds)-1]}
	w := world{law: drawLaw(rng, ns[1], ds[1])}
	sigma := 0.005 * math.Pow(6, rng.Float64())
	amp := uniform(rng, 0.5, 2)
	ph := uniform(rng, 0, 2*math.Pi)
	for _, n := range ns {
		for _, d := range ds {
			v := math.Log(w.law.At(n, d)) + sigma*rng.NormFloat64() + amp*sigma*math.Sin(math.Log(n*d)+ph)
			w.n, w.d, w.y = append(w.n, n), append(w.d, d), append(w.y, math.Exp(v))
			w.run = append(w.run, len(w.run))
		}
	}
	w.pick(rng, ns, ds)
	return w
}

func drawCheckpoints(rng *rand.Rand) world {
	ns, ds := drawDesign(rng)
	w := world{law: drawLaw(rng, math.Sqrt(ns[0]*ns[len(ns)-1]), math.Sqrt(ds[0]*ds[len(ds)-1]))}
	sigma := 0.005 * math.Pow(6, rng.Float64())
	top := ds[len(ds)-1]
	lengths := []float64{top / 16, top / 4, top}
	id := 0
	for _, n := range ns {
		for _, l := range lengths {
			effect := sigma * rng.NormFloat64()
			for _, c := range []float64{l / 4, l / 2, l} {
				v := math.Log(w.law.At(n, c)) + effect + sigma*rng.NormFloat64()
				w.n, w.d, w.y = append(w.n, n), append(w.d, c), append(w.y, math.Exp(v))
				w.run = append(w.run, id)
			}
			id++
		}
	}
	w.pick(rng, ns, []float64{top / 64, top})
	return w
}

// pick draws three points inside the design for the band, and sets the
// budget at the design's middle.
func (w *world) pick(rng *rand.Rand, ns, ds []float64) {
	w.budget = 6 * math.Sqrt(ns[0]*ns[len(ns)-1]) * math.Sqrt(ds[0]*ds[len(ds)-1])
	for range 3 {
		n := ns[0] * math.Pow(ns[len(ns)-1]/ns[0], rng.Float64())
		d := ds[0] * math.Pow(ds[len(ds)-1]/ds[0], rng.Float64())
		w.at = append(w.at, [2]float64{n, d})
	}
}

// scalingCover counts intervals holding the truth.
type scalingCover struct {
	fits                            int
	e, alpha, beta, exp, band, nopt float64
	wAlpha, wBeta                   float64
}

func (c scalingCover) String() string {
	return fmt.Sprintf("%d fits, 90%% intervals holding the law: E %.3f  alpha %.3f  beta %.3f  beta/(alpha+beta) %.3f  L(N,D) %.3f  N*(C) %.3f;  mean widths alpha %.3f beta %.3f",
		c.fits, c.e, c.alpha, c.beta, c.exp, c.band, c.nopt, c.wAlpha, c.wBeta)
}

func measureScaling(draw func(*rand.Rand) world, fits, bootstrap int, seed uint64) scalingCover {
	type one struct {
		e, alpha, beta, exp, nopt bool
		band                      []bool
		wa, wb                    float64
	}
	res := make([]one, fits)
	var wg sync.WaitGroup
	work := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				w := draw(rand.New(rand.NewPCG(seed, uint64(i))))
				f, err := FitScaling(w.n, w.d, w.y, ScalingOptions{Bootstrap: bootstrap, Seed: uint64(i), Run: w.run})
				if err != nil {
					panic(err)
				}
				a := func(l ScalingLaw) float64 { return l.Beta / (l.Alpha + l.Beta) }
				r := one{
					e: f.ECI.Contains(w.law.E), alpha: f.AlphaCI.Contains(w.law.Alpha), beta: f.BetaCI.Contains(w.law.Beta),
					exp: f.Percentiles(a).Contains(a(w.law)),
					wa:  f.AlphaCI.Hi - f.AlphaCI.Lo, wb: f.BetaCI.Hi - f.BetaCI.Lo,
				}
				for _, p := range w.at {
					r.band = append(r.band, f.Band(p[0], p[1]).Contains(w.law.At(p[0], p[1])))
				}
				if o, err := f.ComputeOptimal(w.budget, 6); err == nil {
					want, _ := w.law.ComputeOptimal(w.budget, 6)
					r.nopt = o.NCI.Contains(want.N)
				}
				res[i] = r
			}
		}()
	}
	for i := range res {
		work <- i
	}
	close(work)
	wg.Wait()
	c := scalingCover{fits: fits}
	var bands float64
	for _, r := range res {
		c.e += b2f(r.e) / float64(fits)
		c.alpha += b2f(r.alpha) / float64(fits)
		c.beta += b2f(r.beta) / float64(fits)
		c.exp += b2f(r.exp) / float64(fits)
		c.nopt += b2f(r.nopt) / float64(fits)
		c.wAlpha += r.wa / float64(fits)
		c.wBeta += r.wb / float64(fits)
		for _, b := range r.band {
			c.band += b2f(b)
			bands++
		}
	}
	c.band /= bands
	return c
}

// TestScalingCoverage holds the 90% intervals to at least 80% coverage of
// the known law in every kind of world, misfit included. 80 worlds per
// kind put about four and a half points of sampling error on each share,
// so each share must reach 80% less five points and the mean over the
// six shares (the five above and N*(C) at a budget mid-design) 80%
// itself.
func TestScalingCoverage(t *testing.T) {
	fits := 80
	if testing.Short() {
		fits = 16
	}
	for _, k := range worldKinds {
		c := measureScaling(k.draw, fits, 100, 7)
		t.Logf("%-12s %s", k.name, c)
		if testing.Short() {
			continue
		}
		shares := []struct {
			name string
			v    float64
		}{{"E", c.e}, {"alpha", c.alpha}, {"beta", c.beta}, {"beta/(alpha+beta)", c.exp}, {"L(N,D)", c.band}, {"N*(C)", c.nopt}}
		var mean float64
		for _, s := range shares {
			mean += s.v / float64(len(shares))
			if s.v < 0.75 {
				t.Errorf("%s: %s inside the 90%% interval in %.0f%% of %d fits, want at least 75%%", k.name, s.name, 100*s.v, fits)
			}
		}
		if mean < 0.8 {
			t.Errorf("%s: the law inside the 90%% intervals in %.1f%% of them, want at least 80%%", k.name, 100*mean)
		}
	}
}
