package resize

import (
	"math"
	"testing"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A pruned trial (stopped early by a training stage's pruner) is no
// measurement of its model at full training: its last values are left out
// of the fit, the repeats' means and every verdict, as a failed trial's
// are; its model stays untried (a later round may propose it again). Here
// the ladder's widest model below the answer is pruned with a flattering
// last accuracy of 0.99; were it read as a measurement, that model, too
// small, would be chosen.
func TestPrunedTrialIsNoMeasurement(t *testing.T) {
	w := world{acc: defaultCurve, baseline: 0.85}
	ans := answer(defaultCurve, 0.95)
	start := ladder(4, 1024, 6, true)
	var lie int32
	for _, c := range start {
		if c.Family == tables.FamilyMLP && c.Width < ans {
			lie = c.Width
		}
	}
	evaluate := func(c tables.Candidate) result {
		r := w.evaluate(c)
		if c.Family == tables.FamilyMLP && c.Width == lie {
			r.status, r.accuracy, r.loss = tables.StatusPruned, 0.99, 0.01
		}
		return r
	}
	run := runLoopWith(t, Config{Bootstrap: ptr(60)}, evaluate, start, &reqs{minAccuracy: ptr(0.95)}, 20)
	d := run.last()
	if d["status"] != StatusConverged {
		t.Fatalf("status %v: %v", d["status"], d["reason"])
	}
	if got := chosenWidth(t, d); got < ans || float64(got) > float64(ans)*math.Exp2(0.25) {
		t.Errorf("chose width %d, want the answer %d (or within a quarter octave above): %v", got, ans, d["reason"])
	}

	pruned := mlpResult(8, 0.99, 1)
	pruned.Status = tables.StatusPruned
	ts := fromResults(t, []tables.Result{mlpResult(8, 0.80, 0), pruned, mlpResult(8, 0.86, 2)})
	// By hand, over the ok repeats 0.80 and 0.86 only: mean 0.83, 2 repeats.
	if got := ts[0]; !close(got.accuracy, 0.83) || got.reps != 2 {
		t.Errorf("pooled accuracy %g over %d repeats, want 0.83 over 2 (the pruned repeat left out)", got.accuracy, got.reps)
	}
}
