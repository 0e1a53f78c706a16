package resize

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// The hand-made curve of these tests is the default one, q = 0.98 −
// 1.0666·N^(−1/2) over depth-1 widths 4..1024 (N = 21w + 4). Each
// strategy's optimum is worked out here independently of the stage.

// kneeWidth is where Kneedle's difference curve peaks on q against log N
// over [N(lo), N(hi)]. In t = ln(N/N(lo)) the curve is a scaled
// 1 − e^(−αt) on [0, X], whose normalized distance from the chord peaks at
// t* = ln(αX / (1 − e^(−αX))) / α.
func kneeWidth(alpha float64, lo, hi int32) float64 {
	nlo, nhi := float64(simParams(1, lo)), float64(simParams(1, hi))
	X := math.Log(nhi / nlo)
	ts := math.Log(alpha*X/(1-math.Exp(-alpha*X))) / alpha
	return (nlo*math.Exp(ts) - simOut) / (simIn + 1 + simOut)
}

// utilityWidth maximizes q − p·log2 N: αA·N^(−α) = p/ln 2.
func utilityWidth(a, alpha, price float64) float64 {
	n := math.Pow(alpha*a*math.Ln2/price, 1/alpha)
	return (n - simOut) / (simIn + 1 + simOut)
}

// paretoWidth minimizes the scaled distance to the ideal point (best
// quality, least log cost) by brute force over a fine log grid.
func paretoWidth(q func(float64) float64, lo, hi int32) float64 {
	nlo, nhi := float64(simParams(1, lo)), float64(simParams(1, hi))
	qlo, qhi := q(nlo), q(nhi)
	best, bestD := 0.0, math.Inf(1)
	for i := 0; i <= 100000; i++ {
		w := float64(lo) * math.Pow(float64(hi)/float64(lo), float64(i)/100000)
		n := float64(simIn+1+simOut)*w + simOut
		dq := (qhi - q(n)) / (qhi - qlo)
		dc := math.Log(n/nlo) / math.Log(nhi/nlo)
		if d := dq*dq + dc*dc; d < bestD {
			best, bestD = w, d
		}
	}
	return best
}

func TestStrategiesFindTheirOptimum(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want float64
		says string
	}{
		{"knee", Config{Strategy: KneeStrategy}, kneeWidth(0.5, 4, 1024), "the knee (Kneedle) of accuracy against log params"},
		{"max_utility", Config{Strategy: MaxUtility, Price: ptr(0.01)}, utilityWidth(1.0666, 0.5, 0.01), "the maximum of accuracy − 0.01·log2(params)"},
		{"max_utility cheap", Config{Strategy: MaxUtility, Price: ptr(0.003)}, utilityWidth(1.0666, 0.5, 0.003), "the maximum of accuracy"},
		{"pareto", Config{Strategy: ParetoStrategy}, paretoWidth(defaultCurve, 4, 1024), "front nearest the ideal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Bootstrap = ptr(100)
			w := world{acc: defaultCurve, baseline: 0.85}
			// No requirements table at all: no target, shape from the
			// candidates' own counts.
			run := runLoop(t, c.cfg, w, ladder(4, 1024, 6, true), nil, 10)
			d := run.last()
			if d["status"] != StatusConverged {
				t.Fatalf("status %v: %v", d["status"], d["reason"])
			}
			got := float64(chosenWidth(t, d))
			// Within half a tolerance, plus the rounding to a whole width.
			if math.Abs(math.Log2(got/c.want)) > 0.125+math.Log2(1+1/c.want) {
				t.Errorf("chose width %.0f, the optimum is %.1f: %v", got, c.want, d["reason"])
			}
			if !strings.Contains(d["reason"].(string), c.says) {
				t.Errorf("reason lacks %q: %v", c.says, d["reason"])
			}
			t.Logf("optimum %.1f, chose %.0f after %d rounds, %d trials: %v", c.want, got, len(run.decisions), len(run.results), d["reason"])
		})
	}
	// The three optima differ on this curve, so each strategy's test can
	// only pass by its own rule.
	k, u, p := kneeWidth(0.5, 4, 1024), utilityWidth(1.0666, 0.5, 0.01), paretoWidth(defaultCurve, 4, 1024)
	for _, pair := range [][2]float64{{k, u}, {k, p}, {u, p}} {
		if math.Abs(math.Log2(pair[0]/pair[1])) < 0.25 {
			t.Fatalf("optima %.1f and %.1f are too close to tell the strategies apart", pair[0], pair[1])
		}
	}
}

// A requirement the unconstrained optimum misses moves the choice to the
// nearest model meeting it.
func TestStrategyRespectsRequirements(t *testing.T) {
	knee := kneeWidth(0.5, 4, 1024) // about 36, below the width 61 that reaches 0.95
	w := world{acc: defaultCurve, baseline: 0.85}
	run := runLoop(t, Config{Strategy: KneeStrategy, Bootstrap: ptr(100)}, w, ladder(4, 1024, 6, true), &reqs{minAccuracy: ptr(0.95)}, 10)
	d := run.last()
	if d["status"] != StatusConverged {
		t.Fatalf("status %v: %v", d["status"], d["reason"])
	}
	got, ans := chosenWidth(t, d), answer(defaultCurve, 0.95)
	if got < ans || float64(got) > float64(ans)*math.Exp2(0.25) {
		t.Errorf("chose %d; the knee (%.0f) misses the target, so want the smallest width meeting it, %d", got, knee, ans)
	}
	if !strings.Contains(d["reason"].(string), "below the widths meeting the requirements") {
		t.Errorf("reason does not say the knee misses the target: %v", d["reason"])
	}

	// A latency cap below the utility optimum lowers the choice.
	capped := runLoop(t, Config{Strategy: MaxUtility, Price: ptr(0.003), Bootstrap: ptr(100)}, w, ladder(4, 1024, 6, true), &reqs{maxLatency: ptr(0.1)}, 10)
	d = capped.last()
	got = chosenWidth(t, d)
	if lat := simLatency(float64(simParams(1, got))); lat > 0.1 {
		t.Errorf("chose width %d with latency %.3f ms over the 0.1 ms cap: %v", got, lat, d["reason"])
	}
	// The cap sits near width 126 (0.0004·N^0.7 = 0.1 ms at N ≈ 2657):
	// the choice is the widest model under it, within one tolerance.
	capW := (math.Pow(0.1/0.0004, 1/0.7) - simOut) / (simIn + 1 + simOut)
	if d["status"] != StatusConverged || float64(got) < capW/math.Exp2(0.25) {
		t.Errorf("status %v, chose width %d; want converged within a tolerance below the cap %.0f: %v", d["status"], got, capW, d["reason"])
	}
	if !strings.Contains(d["reason"].(string), "beyond the cost limits") {
		t.Errorf("reason: %v", d["reason"])
	}
	t.Logf("capped: %v", d["reason"])
}

// Until five sizes are evaluated the fit is not trusted, and the
// strategies choose among the evaluated models and refine around the
// choice.
func TestStrategyWithoutTrustedFit(t *testing.T) {
	w := world{acc: defaultCurve}
	for _, strategy := range []string{KneeStrategy, ParetoStrategy} {
		t.Run(strategy, func(t *testing.T) {
			run := runLoop(t, Config{Strategy: strategy, Bootstrap: ptr(100), ProposalsPerRound: ptr(2)}, w, ladder(4, 256, 4, false), nil, 12)
			first := run.decisions[0]
			if first["fit_trusted"] != false || first["status"] != StatusContinue || first["action"] != actionRefine {
				t.Errorf("first round: trusted %v, status %v, action %v; want untrusted, continue, refine: %v",
					first["fit_trusted"], first["status"], first["action"], first["reason"])
			}
			if !strings.Contains(first["reason"].(string), "among the evaluated models") {
				t.Errorf("first reason: %v", first["reason"])
			}
			if d := run.last(); d["status"] != StatusConverged {
				t.Errorf("status %v: %v", d["status"], d["reason"])
			}
		})
	}
}

func TestPlace(t *testing.T) {
	cases := []struct {
		name             string
		uL, uR           float64
		closedL, closedR bool
		guide            *float64
		k                int
		want             []float64
	}{
		{"even open", 2, 6, false, false, nil, 3, []float64{3, 4, 5}},
		{"even closed right", 2, 6, false, true, nil, 2, []float64{4, 6}},
		{"even closed left", 2, 6, true, false, nil, 2, []float64{2, 4}},
		{"guided pair", 2, 6, false, false, ptr(4.0), 2, []float64{4.1125, 3.8875}},
		// Kept an eighth of the interval (0.5) from the open end.
		{"guide near the end", 2, 6, false, false, ptr(5.9), 2, []float64{5.5, 5.3875}},
		// A closed end may be reached.
		{"guide near a closed end", 2, 6, false, true, ptr(5.9), 2, []float64{6, 5.7875}},
		{"guided single", 2, 6, false, false, ptr(3.0), 1, []float64{3}},
		// The third goes to the middle of the widest gap, [2, 3.8875].
		{"guided three", 2, 6, false, false, ptr(4.0), 3, []float64{4.1125, 3.8875, 2.94375}},
		{"empty", 3, 3, false, false, nil, 2, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := place(c.uL, c.uR, c.closedL, c.closedR, c.guide, c.k, 0.25)
			if len(got) != len(c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
			for i := range got {
				if math.Abs(got[i]-c.want[i]) > 1e-9 {
					t.Errorf("got %v, want %v", got, c.want)
					break
				}
			}
		})
	}
}

func TestInferShape(t *testing.T) {
	for _, c := range []struct{ in, out, depth, width int64 }{
		{16, 4, 1, 37}, {64, 10, 2, 128}, {784, 10, 3, 1}, {3, 2, 1, 1}, {10, 1, 4, 1000}, {30, 2, 0, 0}, {4, 3, 0, 0},
	} {
		t.Run(fmt.Sprint(c), func(t *testing.T) {
			cand := ladder(4, 4, 1, false)[0]
			cand.Depth, cand.Width = int32(c.depth), int32(c.width)
			cand.Params, cand.FLOPs = countOf(c.in, c.depth, c.width, c.out)
			got, ok := inferShape(cand)
			if !ok || got != (ioShape{c.in, c.out}) {
				t.Errorf("inferShape = %+v, %t; want in %d, out %d", got, ok, c.in, c.out)
			}
		})
	}
	// Counts that no dense chain has are refused, not guessed.
	cand := ladder(4, 4, 1, false)[0]
	cand.Params++
	if sh, ok := inferShape(cand); ok {
		t.Errorf("inferShape of inconsistent counts = %+v", sh)
	}
}
