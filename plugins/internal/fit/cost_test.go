package fit

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFitLogLog(t *testing.T) {
	n := []float64{100, 400, 1600, 6400, 25600}
	y := make([]float64, len(n))
	for i := range n {
		y[i] = 0.002 * math.Pow(n[i], 0.8)
	}
	f, err := FitLogLog(n, y)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(f.Exp-0.8) > 1e-9 || math.Abs(f.Coef-0.002) > 1e-9 || f.R2 < 1-1e-9 {
		t.Errorf("fit %+v, want coef 0.002, exp 0.8, R² 1", f)
	}
	if s, ok := f.SizeFor(f.At(5000)); !ok || math.Abs(s-5000) > 1e-6 {
		t.Errorf("SizeFor(At(5000)) = %g, %t", s, ok)
	}

	// Multiplicative noise: the upper bound lies above the fit, and above
	// most fresh observations.
	rng := rand.New(rand.NewPCG(5, 5))
	var nn, yy []float64
	for i := range 30 {
		x := 100 * math.Pow(2, float64(i%10))
		nn = append(nn, x)
		yy = append(yy, 0.002*math.Pow(x, 0.8)*math.Exp(0.1*rng.NormFloat64()))
	}
	g, err := FitLogLog(nn, yy)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(g.Exp-0.8) > 0.05 {
		t.Errorf("noisy exponent %g, want about 0.8", g.Exp)
	}
	below := 0
	for range 200 {
		fresh := 0.002 * math.Pow(3000, 0.8) * math.Exp(0.1*rng.NormFloat64())
		if fresh <= g.Upper(3000, 0.9) {
			below++
		}
	}
	if below < 160 || below > 196 {
		t.Errorf("%d of 200 fresh costs under the 90%% upper bound, want about 180", below)
	}
}

func TestFitLogLogSkipsUnusable(t *testing.T) {
	f, err := FitLogLog([]float64{10, 20, 0, 40}, []float64{1, 2, 5, math.Inf(1)})
	if err != nil {
		t.Fatal(err)
	}
	if f.Points != 2 || math.Abs(f.Exp-1) > 1e-9 {
		t.Errorf("fit %+v, want 2 points and exponent 1", f)
	}
	if _, err := FitLogLog([]float64{10, 10}, []float64{1, 2}); err == nil {
		t.Error("one distinct size: no error")
	}
}

// A piecewise-linear curve rising steeply to x = 1 and almost flat after:
// its only knee is at x = 1.
func TestKneedlePiecewise(t *testing.T) {
	var x, y []float64
	for i := 0; i <= 40; i++ {
		v := float64(i) / 10
		x = append(x, v)
		y = append(y, math.Min(v, 1)+0.05*math.Max(v-1, 0))
	}
	k, ok, err := Knee(x, y, ConcaveIncreasing, 1)
	if err != nil || !ok {
		t.Fatalf("no knee: %v", err)
	}
	if x[k] != 1 {
		t.Errorf("knee at x = %g, want 1", x[k])
	}
}

// For y = 1 − e^(−kx) on [0, X] the difference curve peaks where
// x* = ln(kX / (1 − e^(−kX))) / k; Kneedle must land on the grid point
// nearest it. The mirrored curves land at the mirrored points.
func TestKneedleExponential(t *testing.T) {
	const k, X, n = 3.0, 4.0, 401
	want := math.Log(k*X/(1-math.Exp(-k*X))) / k
	x := make([]float64, n)
	rise := make([]float64, n)
	for i := range x {
		x[i] = X * float64(i) / (n - 1)
		rise[i] = 1 - math.Exp(-k*x[i])
	}
	nearest := int(math.Round(want / X * (n - 1)))
	cases := []struct {
		name  string
		y     []float64
		shape Curve
		want  int
	}{
		{"concave increasing", rise, ConcaveIncreasing, nearest},
		{"convex decreasing", mapf(rise, func(v float64) float64 { return 1 - v }), ConvexDecreasing, nearest},
		// Mirrored in x: x runs backwards along the same curve.
		{"concave decreasing", reverse(rise), ConcaveDecreasing, n - 1 - nearest},
		{"convex increasing", reverse(mapf(rise, func(v float64) float64 { return 1 - v })), ConvexIncreasing, n - 1 - nearest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			knees, err := Kneedle(x, c.y, c.shape, 1)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]int{c.want}, knees); diff != "" {
				t.Errorf("knees (-want +got):\n%s (x* = %.4f)", diff, want)
			}
		})
	}
}

// A staircase (steep to 20, flat to 40, steep to 60, flat after) has two
// bends that are local maxima of the difference curve: two knees, and the
// one farther from the chord (60) is the main one.
func TestKneedleTwoKnees(t *testing.T) {
	var x, y []float64
	for i := 0; i <= 100; i++ {
		v := float64(i)
		x = append(x, v)
		y = append(y, 3*math.Min(v, 20)+3*math.Min(math.Max(v-40, 0), 20))
	}
	knees, err := Kneedle(x, y, ConcaveIncreasing, 1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{20, 60}, knees); diff != "" {
		t.Errorf("knees (-want +got):\n%s", diff)
	}
	k, _, _ := Knee(x, y, ConcaveIncreasing, 1)
	if k != 60 {
		t.Errorf("main knee %d, want 60", k)
	}
	// A sensitivity high enough makes the shallow first dip no knee.
	knees, _ = Kneedle(x, y, ConcaveIncreasing, 25)
	if diff := cmp.Diff([]int{60}, knees); diff != "" {
		t.Errorf("knees at S = 25 (-want +got):\n%s", diff)
	}
}

func TestKneedleNoKnee(t *testing.T) {
	x := []float64{0, 1, 2, 3, 4}
	for name, y := range map[string][]float64{"straight": {0, 1, 2, 3, 4}, "flat": {2, 2, 2, 2, 2}} {
		if knees, err := Kneedle(x, y, ConcaveIncreasing, 1); err != nil || len(knees) != 0 {
			t.Errorf("%s: knees %v, err %v; want none", name, knees, err)
		}
	}
	for name, c := range map[string][2][]float64{
		"two points":     {{0, 1}, {0, 1}},
		"not increasing": {{0, 2, 1}, {0, 1, 2}},
		"nan":            {{0, 1, 2}, {0, math.NaN(), 2}},
	} {
		if _, err := Kneedle(c[0], c[1], ConcaveIncreasing, 1); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPareto(t *testing.T) {
	// (accuracy ↑, latency ms ↓, bytes ↓)
	points := [][]float64{
		{0.90, 1.0, 100}, // 0: front (cheapest)
		{0.95, 2.0, 200}, // 1: front
		{0.94, 2.5, 250}, // 2: dominated by 1
		{0.97, 5.0, 150}, // 3: front (fewer bytes than 1)
		{0.97, 5.0, 150}, // 4: equal to 3: both stay
		{0.96, 6.0, 300}, // 5: dominated by 3
		{0.99, 9.0, 900}, // 6: front (best accuracy)
		{0.89, 1.0, 100}, // 7: dominated by 0 in accuracy alone
		{math.NaN(), 0.5, 50},
	}
	got, err := Pareto(points, []bool{true, false, false})
	if err != nil {
		t.Fatal(err)
	}
	// 8 has the least cost, so its NaN accuracy (the worst) does not
	// remove it: nothing else is cheaper.
	if diff := cmp.Diff([]int{0, 1, 3, 4, 6, 8}, got); diff != "" {
		t.Errorf("front (-want +got):\n%s", diff)
	}
	if _, err := Pareto([][]float64{{1, 2}}, []bool{true}); err == nil {
		t.Error("objective count mismatch: no error")
	}
}

func mapf(v []float64, f func(float64) float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = f(x)
	}
	return out
}

func reverse(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[len(v)-1-i] = x
	}
	return out
}
