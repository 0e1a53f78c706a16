package prune

import (
	"fmt"
	"slices"
)

// median stops a trial whose best value so far is worse than the median of
// the values the trials that finished their budget reported at the same
// step (Optuna's MedianPruner), once warmupTrials trials have finished and
// from step warmupSteps on. Trials still running and stopped ones are not
// compared with: their curves are cut short, and the median of the
// trials that ran to the end is the bar a trial must clear to be worth
// its whole budget.
type median struct {
	d                         direction
	warmupTrials, warmupSteps int
	curves                    map[string]map[int]float64
	best                      map[string]float64
	completed                 []string
	isCompleted               map[string]bool
}

func newMedian(d direction, warmupTrials, warmupSteps int) *median {
	return &median{
		d: d, warmupTrials: warmupTrials, warmupSteps: warmupSteps,
		curves: map[string]map[int]float64{}, best: map[string]float64{}, isCompleted: map[string]bool{},
	}
}

func (m *median) report(trial string, step int, value float64) (bool, string) {
	curve := m.curves[trial]
	if curve == nil {
		curve = map[int]float64{}
		m.curves[trial] = curve
	}
	curve[step] = value
	if b, ok := m.best[trial]; ok {
		m.best[trial] = m.d.best(b, value)
	} else {
		m.best[trial] = value
	}
	if len(m.completed) < m.warmupTrials || step < m.warmupSteps {
		return false, ""
	}
	var vals []float64
	for _, c := range m.completed {
		if v, ok := m.curves[c][step]; ok && c != trial {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return false, ""
	}
	med := medianOf(vals)
	if best := m.best[trial]; m.d.better(med, best) {
		return true, fmt.Sprintf("median pruner: best %s so far %s at step %d is worse than the median %s of the %d finished trials at that step",
			m.d.metric, num(best), step, num(med), len(vals))
	}
	return false, ""
}

func (m *median) finish(trial string, complete bool) {
	if complete && !m.isCompleted[trial] {
		m.isCompleted[trial] = true
		m.completed = append(m.completed, trial)
	}
}

// medianOf is the middle value, or the mean of the two middle values.
func medianOf(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
