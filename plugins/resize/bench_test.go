package resize

import (
	"fmt"
	"math"
	"testing"
)

// gridRun evaluates an exhaustive grid at the loop's resolution (steps of
// 2^0.25 from width 4 to 1024, and the baseline) and picks the smallest
// width whose measured accuracy meets the target, as a person would from
// the grid's table.
func gridRun(w world, target float64) (chosen int32, trials int, seconds float64) {
	grid := ladder(4, 1024, gridTrials(4, 1024, 0.25), true)
	chosen = -1
	for _, c := range grid {
		r := w.evaluate(c)
		seconds += r.sec
		if chosen < 0 && c.Width > 0 && r.accuracy >= target {
			chosen = c.Width
		}
	}
	return chosen, len(grid), seconds
}

type comparison struct {
	loopWidth, gridWidth   int32
	loopTrials, gridTrials int
	loopSec, gridSec       float64
}

func compare(tb testing.TB, w world, target float64) comparison {
	run := runLoop(tb, Config{Bootstrap: ptr(100)}, w, ladder(4, 1024, 6, true), &reqs{minAccuracy: ptr(target)}, 20)
	var c comparison
	if cw, ok := run.last()["chosen_width"].(int32); ok {
		c.loopWidth = cw
	}
	c.loopTrials = len(run.results)
	for _, r := range run.results {
		c.loopSec += r.sec
	}
	c.gridWidth, c.gridTrials, c.gridSec = gridRun(w, target)
	return c
}

// oneStep reports whether two widths are within one grid step (2^0.25).
func oneStep(a, b int32) bool {
	return a > 0 && b > 0 && math.Abs(math.Log2(float64(a)/float64(b))) <= 0.25+1e-9
}

// The loop and the exhaustive grid agree to within one grid step, and the
// loop trains far fewer models.
func TestLoopMatchesGrid(t *testing.T) {
	for _, target := range []float64{0.93, 0.95, 0.97} {
		t.Run(fmt.Sprint(target), func(t *testing.T) {
			c := compare(t, world{acc: defaultCurve, baseline: 0.85, noise: 0.002}, target)
			t.Logf("loop: width %d in %d trials, %.2f train s; grid: width %d in %d trials, %.2f train s",
				c.loopWidth, c.loopTrials, c.loopSec, c.gridWidth, c.gridTrials, c.gridSec)
			if !oneStep(c.loopWidth, c.gridWidth) {
				t.Errorf("loop chose width %d, grid %d: more than one grid step apart", c.loopWidth, c.gridWidth)
			}
			if c.loopTrials*2 > c.gridTrials {
				t.Errorf("loop: %d trials, grid: %d", c.loopTrials, c.gridTrials)
			}
		})
	}
}

// BenchmarkLoopVsGrid reports, on the synthetic curve with the same seeds,
// the trials and simulated train seconds the loop needs against an
// exhaustive grid at the same resolution, and whether both chose the same
// size within one grid step. The time per op is the loop's own overhead
// (fits and bootstraps), the training being simulated.
func BenchmarkLoopVsGrid(b *testing.B) {
	for _, target := range []float64{0.93, 0.95, 0.97} {
		b.Run(fmt.Sprintf("target=%g", target), func(b *testing.B) {
			w := world{acc: defaultCurve, baseline: 0.85, noise: 0.002}
			var c comparison
			for b.Loop() {
				c = compare(b, w, target)
			}
			same := 0.0
			if oneStep(c.loopWidth, c.gridWidth) {
				same = 1
			}
			b.ReportMetric(float64(c.loopTrials), "loop-trials")
			b.ReportMetric(float64(c.gridTrials), "grid-trials")
			b.ReportMetric(c.loopSec, "loop-train-s")
			b.ReportMetric(c.gridSec, "grid-train-s")
			b.ReportMetric(c.loopSec/c.gridSec, "train-ratio")
			b.ReportMetric(float64(c.loopWidth), "loop-width")
			b.ReportMetric(float64(c.gridWidth), "grid-width")
			b.ReportMetric(same, "same-size")
		})
	}
}
