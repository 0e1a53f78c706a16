package resize

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Pruned trials are low-fidelity evidence. A training stage's pruner
// stopped the trial early because, at some step, it was doing worse than
// the other trials at that step: its values are those of a model not
// trained to the end. So they never pass a model (a model that passes is
// measured at full budget), never fail one (a model stopped early did not
// fail at full budget), and stay out of the fit and the repeats' means.
// What they do say is that the model looked unpromising next to the
// others, and the search spends no trial on it again unless it needs it:
//
//   - A pruned model's width counts as untried where the search asks
//     whether a range is closed (free), so a bracket whose last gap is a
//     pruned model is not closed on a model nobody measured.
//   - But proposals go to untried widths first; a target takes a pruned
//     model's width only when no untried width is left in its range: the
//     bracket needs that very model (materialize).
//   - A model pruned again after it was proposed again (two pruned
//     trials) is left out for good: its evidence agrees with itself, and
//     proposing it a third time would loop. The bracket then closes
//     without it, and the reason says so.
//
// A search among listed models (table and axis families, catalog.go)
// proposes a pruned model again as it would an untried one, but only
// once (settled).
//
// The reason of a decision along width names the pruned models and what
// was done with each (prunedNote).

// retryPruned is the number of pruned trials of a model after which the
// search no longer proposes it.
const retryPruned = 2

// retryable reports whether s is a pruned model the search may propose
// again: no finished measurement, no failed or infeasible trial, and
// pruned fewer than retryPruned times.
func (e *engine) retryable(s *size) bool {
	return s.pruned > 0 && s.pruned < retryPruned && !s.known && s.rep.status == trialPruned && s.costFail == ""
}

// settled reports whether a catalog model needs no more trials: measured,
// failed, or pruned retryPruned times.
func settled(s *size) bool {
	return s != nil && (s.known || s.rep.status == trialFailed || s.pruned >= retryPruned)
}

// nearestOf is the width of ws in [a, b], not picked, nearest u in log
// width.
func nearestOf(ws []int, picked map[int]bool, u float64, a, b int) (int, bool) {
	w, best := 0, math.Inf(1)
	for _, x := range ws {
		if x < a || x > b || picked[x] {
			continue
		}
		if dist := math.Abs(math.Log2(float64(x)) - u); dist < best-1e-12 {
			w, best = x, dist
		}
	}
	return w, !math.IsInf(best, 1)
}

// prunedNote says what the decision did with pruned evidence: which
// models were pruned (with the best value they reached before they were
// stopped), which are proposed again because the search needs them, which
// are left out. Empty when no trial was pruned.
func (e *engine) prunedNote(d *decision, err error) string {
	if err != nil || d == nil {
		return ""
	}
	var again, waiting, out []string
	type model struct{ family, name string }
	proposed := map[model]bool{}
	for _, c := range d.proposals {
		proposed[model{c.Family, c.Name}] = true
	}
	for _, s := range e.sizes {
		if s.pruned == 0 || s.known {
			continue
		}
		name := s.id()
		if !math.IsNaN(s.prunedQ) {
			name += fmt.Sprintf(" (%s %s when stopped)", e.g.metric, e.fmtQ(e.g.toMetric(s.prunedQ)))
		}
		switch {
		case proposed[model{s.rep.cand.Family, s.rep.cand.Name}]:
			again = append(again, name)
		case e.retryable(s):
			waiting = append(waiting, name)
		default:
			out = append(out, name)
		}
	}
	if len(again)+len(waiting)+len(out) == 0 {
		return ""
	}
	parts := []string{"pruned trials are low-fidelity evidence, counted neither as a pass nor as a failure"}
	if len(again) > 0 {
		parts = append(parts, fmt.Sprintf("proposed again, as the search needs them: %s", strings.Join(again, ", ")))
	}
	if len(waiting) > 0 {
		parts = append(parts, fmt.Sprintf("not proposed again this round, other models serving the search first: %s", strings.Join(waiting, ", ")))
	}
	if len(out) > 0 {
		slices.Sort(out)
		parts = append(parts, fmt.Sprintf("pruned again or failed, left out: %s", strings.Join(out, ", ")))
	}
	return strings.Join(parts, "; ")
}
