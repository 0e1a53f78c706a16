package prune

import (
	"fmt"
	"slices"
)

// asha is asynchronous successive halving (Li et al., "A System for
// Massively Parallel Hyperparameter Tuning", 2020), as Optuna's
// SuccessiveHalvingPruner runs it: rung k sits at step
// minResource·eta^k. When a trial first reports a step at or past a rung,
// its value there is recorded with every value other trials recorded at
// that rung (whatever became of them), and the trial goes on only when it
// is among the best max(1, ⌊n/eta⌋) of those n values; otherwise it stops.
// No trial waits for others: the first to reach a rung always goes on,
// and the bar rises as more trials arrive.
type asha struct {
	d                direction
	minResource, eta int
	rungs            [][]float64    // values recorded at each rung
	next             map[string]int // the next rung each trial meets
}

func newASHA(d direction, minResource, eta int) *asha {
	return &asha{d: d, minResource: minResource, eta: eta, next: map[string]int{}}
}

// rungStep is rung k's step, or -1 beyond any int.
func (a *asha) rungStep(k int) int {
	s := a.minResource
	for range k {
		if s > (1<<62)/a.eta {
			return -1
		}
		s *= a.eta
	}
	return s
}

func (a *asha) report(trial string, step int, value float64) (bool, string) {
	for k := a.next[trial]; ; k++ {
		at := a.rungStep(k)
		if at < 0 || step < at {
			return false, ""
		}
		for len(a.rungs) <= k {
			a.rungs = append(a.rungs, nil)
		}
		a.rungs[k] = append(a.rungs[k], value)
		a.next[trial] = k + 1
		n := len(a.rungs[k])
		keep := max(1, n/a.eta)
		ranked := slices.Clone(a.rungs[k])
		a.d.sortBestFirst(ranked)
		if bar := ranked[keep-1]; a.d.better(bar, value) {
			return true, fmt.Sprintf("asha pruner: %s %s at rung %d (step %d) is not among the best %d of the %d trials that reached it (the bar is %s)",
				a.d.metric, num(value), k, at, keep, n, num(bar))
		}
	}
}

func (a *asha) finish(string, bool) {}
