package fit

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/optimize"
)

// numericOptimum minimises the law along the budget C = k·N·D by
// Nelder-Mead over log N, independently of the closed form.
func numericOptimum(t *testing.T, l ScalingLaw, c, k float64) (n, d float64) {
	t.Helper()
	f := func(x []float64) float64 {
		n := math.Exp(x[0])
		return l.At(n, c/k/n)
	}
	x0 := []float64{math.Log(math.Sqrt(c / k))}
	res, err := optimize.Minimize(optimize.Problem{Func: f}, x0, &optimize.Settings{
		Converger: &optimize.FunctionConverge{Absolute: 1e-15, Relative: 1e-15, Iterations: 100},
	}, &optimize.NelderMead{})
	if err != nil && res == nil {
		t.Fatal(err)
	}
	n = math.Exp(res.X[0])
	return n, c / k / n
}

func TestComputeOptimalClosedForm(t *testing.T) {
	for _, c := range []struct {
		name string
		law  ScalingLaw
		k    float64
	}{
		{"balanced", ScalingLaw{E: 0.5, A: 100, Alpha: 0.4, B: 100, Beta: 0.4}, 6},
		{"size-hungry", ScalingLaw{E: 0.2, A: 30, Alpha: 0.25, B: 400, Beta: 0.6}, 6},
		{"data-hungry", ScalingLaw{E: 1.1, A: 500, Alpha: 0.7, B: 20, Beta: 0.3}, 6},
		{"seconds", ScalingLaw{E: 0.3, A: 40, Alpha: 0.5, B: 25, Beta: 0.4}, 3e-9},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, budget := range []float64{1e9, 1e12, 1e15, 1e18} {
				o, ok := c.law.ComputeOptimal(budget, c.k)
				if !ok {
					t.Fatalf("C = %g: no optimum", budget)
				}
				n, d := numericOptimum(t, c.law, budget, c.k)
				if math.Abs(o.N/n-1) > 1e-4 || math.Abs(o.D/d-1) > 1e-4 {
					t.Errorf("C = %g: closed form N %.6g D %.6g, numeric N %.6g D %.6g", budget, o.N, o.D, n, d)
				}
				if got := c.k * o.N * o.D; math.Abs(got/budget-1) > 1e-9 {
					t.Errorf("C = %g: k·N·D = %g", budget, got)
				}
				// The inverse: the least compute reaching the optimum's loss
				// is the budget itself, at the same N and D.
				inv, ok := c.law.ComputeFor(o.Loss, c.k)
				if !ok || math.Abs(inv.C/budget-1) > 1e-6 || math.Abs(inv.N/o.N-1) > 1e-6 || math.Abs(inv.D/o.D-1) > 1e-6 {
					t.Errorf("C = %g: ComputeFor(%g) = %+v, %t; want C %g N %g D %g", budget, o.Loss, inv, ok, budget, o.N, o.D)
				}
			}
			// N* grows as C^(beta/(alpha+beta)).
			lo, _ := c.law.ComputeOptimal(1e10, c.k)
			hi, _ := c.law.ComputeOptimal(1e16, c.k)
			want := c.law.Beta / (c.law.Alpha + c.law.Beta)
			if got := math.Log(hi.N/lo.N) / math.Log(1e6); math.Abs(got-want) > 1e-9 {
				t.Errorf("N* exponent %.9f, want %.9f", got, want)
			}
		})
	}
	if _, ok := (ScalingLaw{E: 1, A: 1, Alpha: 0.5, B: 1, Beta: 0.5}).ComputeFor(0.9, 6); ok {
		t.Error("a loss below E was reached")
	}
	if _, ok := (ScalingLaw{E: 1, A: 1, Alpha: 0, B: 1, Beta: 0.5}).ComputeOptimal(1e9, 6); ok {
		t.Error("a zero exponent has an optimum")
	}
}

// On a fit, the optimum's intervals hold the law's own optimum, and the
// inverse is open above for a target the replicates may not reach.
func TestScalingFitComputeOptimal(t *testing.T) {
	law := ScalingLaw{E: 0.3, A: 40, Alpha: 0.5, B: 25, Beta: 0.4}
	n, d, y := grid(law, logSpaced(1e3, 1e6, 6), logSpaced(1e3, 1e6, 6), 0.01, rand.New(rand.NewPCG(8, 8)))
	f, err := FitScaling(n, d, y, ScalingOptions{Bootstrap: 150, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	const c = 6e10
	want, _ := law.ComputeOptimal(c, 6)
	got, err := f.ComputeOptimal(c, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !got.NCI.Contains(want.N) || !got.DCI.Contains(want.D) || !got.LossCI.Contains(want.Loss) {
		t.Errorf("optimum %+v; the law's N %g D %g loss %g", got, want.N, want.D, want.Loss)
	}
	if got.Replicates < 140 {
		t.Errorf("%d replicates with an optimum, want nearly all 150", got.Replicates)
	}
	inv, err := f.ComputeFor(want.Loss, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.CCI.Contains(c) {
		t.Errorf("least compute for loss %g: %v, want it to hold %g", want.Loss, inv.CCI, c)
	}
	near, err := f.ComputeFor(f.E*1.0005, 6)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsInf(near.CCI.Hi, 1) {
		t.Errorf("a target just above the floor: compute interval %v, want it open above", near.CCI)
	}
	if _, err := f.ComputeFor(f.E*0.9, 6); err == nil {
		t.Error("a target below the floor: no error")
	}
}
