package resize

import (
	"fmt"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/fit"
)

// knee is the knee strategy: Kneedle on quality against log cost, with
// sensitivity S.
type knee struct{ sensitivity float64 }

var _ tradeoff = knee{}

func (k knee) plan(e *engine) (plan, error) { return e.optimum(k) }

func (knee) aim(metric, cost string) string {
	return fmt.Sprintf("the knee (Kneedle) of %s against log %s", metric, cost)
}

func (knee) feasibleOnly() bool { return false }

// pick is the knee when Kneedle declares one; else the most bent point if
// the curve bends at all, else the cheapest (quality does not pay for
// cost).
func (k knee) pick(q, c []float64) int {
	if len(q) == 1 {
		return 0
	}
	lc := log2s(c)
	if i, ok, err := fit.Knee(lc, q, fit.ConcaveIncreasing, k.sensitivity); err == nil && ok {
		return i
	}
	if d, err := fit.Difference(lc, q, fit.ConcaveIncreasing); err == nil {
		best := 0
		for i := range d {
			if d[i] > d[best]+1e-12 {
				best = i
			}
		}
		return best
	}
	return 0
}
