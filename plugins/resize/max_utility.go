package resize

import (
	"fmt"
	"math"
)

// maxUtility is the max_utility strategy: the maximum of quality minus
// price·log2(cost), over the models meeting every requirement.
type maxUtility struct{ price float64 }

var _ tradeoff = maxUtility{}

func (t maxUtility) plan(e *engine) (plan, error) { return e.optimum(t) }

func (t maxUtility) aim(metric, cost string) string {
	return fmt.Sprintf("the maximum of %s − %g·log2(%s)", metric, t.price, cost)
}

// feasibleOnly: a constrained maximum is the maximum over the feasible.
func (maxUtility) feasibleOnly() bool { return true }

func (t maxUtility) pick(q, c []float64) int {
	lc := log2s(c)
	best, bestU := 0, math.Inf(-1)
	for i := range q {
		if u := q[i] - t.price*lc[i]; u > bestU+1e-12 {
			best, bestU = i, u
		}
	}
	return best
}
