package resize

import (
	"fmt"
	"math"
	"slices"
)

// pareto is the pareto strategy: the point of the quality/cost front
// nearest the ideal of best quality at least cost, both axes scaled to
// [0, 1] (cost in log).
type pareto struct{}

var _ tradeoff = pareto{}

func (t pareto) plan(e *engine) (plan, error) { return e.optimum(t) }

func (pareto) aim(metric, cost string) string {
	return fmt.Sprintf("the point of the %s/%s front nearest the ideal", metric, cost)
}

func (pareto) feasibleOnly() bool { return false }

func (pareto) pick(q, c []float64) int {
	if len(q) == 1 {
		return 0
	}
	lc := log2s(c)
	qlo, qhi := slices.Min(q), slices.Max(q)
	clo, chi := slices.Min(lc), slices.Max(lc)
	best, bestD := 0, math.Inf(1)
	for i := range q {
		var dq, dc float64
		if qhi > qlo {
			dq = (qhi - q[i]) / (qhi - qlo)
		}
		if chi > clo {
			dc = (lc[i] - clo) / (chi - clo)
		}
		if d := dq*dq + dc*dc; d < bestD-1e-12 {
			best, bestD = i, d
		}
	}
	return best
}
