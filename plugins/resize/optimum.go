package resize

import (
	"fmt"
	"math"
	"slices"
)

// gridPoints is the resolution of the continuous optimum: 240 steps over
// the width range, far finer than any tolerance.
const gridPoints = 241

// costOf returns a size's cost for the trade-off strategies, or NaN when
// unmeasured.
func (e *engine) costOf(s *size, cost string) float64 {
	switch cost {
	case CostLatency:
		return s.rep.latencyMs
	case CostBytes:
		return s.rep.modelBytes
	case CostTrainTime:
		return s.rep.trainSecs
	}
	return float64(s.params)
}

// costName says what the cost axis is, for reasons.
func costName(cost string) string {
	switch cost {
	case CostLatency:
		return "latency p95"
	case CostBytes:
		return "model bytes"
	case CostTrainTime:
		return "train time"
	}
	return "params"
}

// usableCost falls back to params when the chosen cost is not measured on
// every model the strategy weighs, or cannot be fitted.
func (e *engine) usableCost(known []*size) string {
	c := e.s.cost
	if c == CostParams {
		return c
	}
	for _, s := range known {
		if v := e.costOf(s, c); !(v > 0) || math.IsInf(v, 0) {
			e.notes = append(e.notes, fmt.Sprintf("%s is not measured on every model (%s has none), so params stands in as the cost", costName(c), s.id()))
			return CostParams
		}
	}
	if e.trusted {
		if f := e.costFit[c]; f == nil || !(f.Exp > 0) {
			e.notes = append(e.notes, fmt.Sprintf("%s does not grow with size in the measurements, so params stands in as the cost", costName(c)))
			return CostParams
		}
	}
	return c
}

// tradeoff is a strategy that weighs quality against a cost: knee,
// pareto and max_utility, each in its own file. optimum searches for the
// point any of them prefers.
type tradeoff interface {
	strategy
	// aim says what the strategy looks for, for reasons: metric and cost
	// name the axes.
	aim(metric, cost string) string
	// pick returns the index it prefers among points of quality q (higher
	// is better) and cost c > 0, sorted by increasing cost.
	pick(q, c []float64) int
	// feasibleOnly reports whether it picks among the models meeting
	// every requirement only (a constrained maximum), rather than among
	// all, moving to the nearest feasible model after.
	feasibleOnly() bool
}

// optimum is the search of the trade-off strategies.
func (e *engine) optimum(t tradeoff) (plan, error) {
	var known, feasible []*size
	for _, s := range e.sizes {
		if s.mlp() && s.known {
			known = append(known, s)
			if e.meets(s) {
				feasible = append(feasible, s)
			}
		}
	}
	if len(feasible) == 0 {
		// Find a model meeting the requirements first, as smallest_meeting
		// would.
		p := e.smallest()
		if p.status == StatusContinue {
			p.reason = "no model meets every requirement yet, so the search first looks for one: " + p.reason
		}
		return p, nil
	}
	cost := e.usableCost(known)

	// The discrete choice: the strategy over the evaluated models (with
	// the fitted quality when the fit is trusted, which irons out noise),
	// moved to the nearest model meeting the requirements.
	pool := known
	if t.feasibleOnly() {
		pool = feasible
	}
	pool = e.cheapestPerCost(pool, cost)
	q := make([]float64, len(pool))
	c := make([]float64, len(pool))
	for i, s := range pool {
		q[i], c[i] = e.smoothed(s), e.costOf(s, cost)
	}
	pick := pool[t.pick(q, c)]
	chosen := nearest(feasible, pick, func(s *size) float64 { return math.Log(float64(s.params)) })
	d := chosen.depth

	if !e.trusted || !e.shapeOK {
		return e.refineAround(t, chosen, cost, pick), nil
	}
	return e.continuous(t, d, feasible, cost), nil
}

// smoothed is the quality a strategy weighs: the fit when trusted.
func (e *engine) smoothed(s *size) float64 {
	if e.trusted {
		return e.pl.At(float64(s.params))
	}
	return s.q
}

// cheapestPerCost sorts sizes by cost and keeps, among equal costs, the
// best quality, as Kneedle needs strictly increasing x.
func (e *engine) cheapestPerCost(ss []*size, cost string) []*size {
	out := slices.Clone(ss)
	slices.SortStableFunc(out, func(a, b *size) int {
		ca, cb := e.costOf(a, cost), e.costOf(b, cost)
		switch {
		case ca < cb:
			return -1
		case ca > cb:
			return 1
		}
		return 0
	})
	var kept []*size
	for _, s := range out {
		if n := len(kept); n > 0 && e.costOf(kept[n-1], cost) == e.costOf(s, cost) {
			if e.smoothed(s) > e.smoothed(kept[n-1]) {
				kept[n-1] = s
			}
			continue
		}
		kept = append(kept, s)
	}
	return kept
}

// nearest returns the member of set closest to s by key (s itself when it
// belongs); ties go to the smaller.
func nearest(set []*size, s *size, key func(*size) float64) *size {
	best := set[0]
	for _, x := range set[1:] {
		if math.Abs(key(x)-key(s)) < math.Abs(key(best)-key(s))-1e-12 {
			best = x
		}
	}
	return best
}

// continuous locates the strategy's optimum on the fitted curves at depth
// d, over the whole width range, and clamps it into the widths that meet
// the requirements.
func (e *engine) continuous(t tradeoff, d int32, feasible []*size, cost string) plan {
	top := e.topAt(d)
	lo, hi := float64(e.minW), float64(top)
	uLo, uHi := math.Log2(lo), math.Log2(hi)
	us := make([]float64, gridPoints)
	q := make([]float64, gridPoints)
	c := make([]float64, gridPoints)
	for i := range us {
		us[i] = uLo + (uHi-uLo)*float64(i)/float64(gridPoints-1)
		n := e.paramsAt(d, math.Exp2(us[i]))
		q[i] = e.pl.At(n)
		c[i] = n
		if cost != CostParams {
			c[i] = e.costFit[cost].At(n)
		}
	}
	uOpt := uLo
	if uHi > uLo {
		uOpt = us[t.pick(q, c)]
	}

	// Where to look: from where the fitted curve reaches the target (and
	// above every width measured to fail it) up to the first width
	// measured to break a cost limit. This only steers the proposals: the
	// choice is always a model measured to meet every requirement.
	fa, fb := uLo, uHi
	var minF, maxF int32 = math.MaxInt32, 0
	for _, s := range feasible {
		if s.depth == d {
			minF, maxF = min(minF, s.width), max(maxF, s.width)
		}
	}
	if x, ok := e.crossing(d, lo, hi); ok {
		fa = x
	}
	if below := e.below(d, minF); below != nil {
		fa = max(fa, math.Log2(float64(below.width)+1))
	}
	for _, s := range e.at(d) {
		if s.known && s.costFail != "" && s.width > maxF {
			fb = min(fb, math.Log2(float64(s.width)-1))
			break
		}
	}
	fa, fb = min(fa, math.Log2(float64(minF))), max(fb, math.Log2(float64(maxF)))

	what := t.aim(e.g.metric, costName(cost))
	where := fmt.Sprintf("on the fitted curves, %s lies at width %.0f (depth %d)", what, math.Exp2(uOpt), d)
	var atDepth []*size
	for _, s := range feasible {
		if s.depth == d {
			atDepth = append(atDepth, s)
		}
	}
	switch {
	case uOpt < fa-1e-9:
		// Below the quality target: the answer is the smallest model
		// meeting it, found as smallest_meeting finds it.
		p := e.settle(atDepth[0], true)
		p.reason = where + ", below the widths meeting the requirements; " + p.reason
		return p
	case uOpt > fb+1e-9:
		return e.capped(d, atDepth[len(atDepth)-1], where)
	}

	// The evaluated model meeting every requirement nearest the optimum.
	chosen := atDepth[0]
	for _, s := range atDepth[1:] {
		if math.Abs(math.Log2(float64(s.width))-uOpt) < math.Abs(math.Log2(float64(chosen.width))-uOpt)-1e-12 {
			chosen = s
		}
	}
	p := plan{chosen: chosen, depth: d}
	if l := e.below(d, chosen.width); l != nil {
		p.lo = l.width
	}
	for _, s := range e.at(d) {
		if s.width > chosen.width {
			p.hi = s.width
			break
		}
	}
	dist := math.Abs(math.Log2(float64(chosen.width)) - uOpt)
	a, b := int(math.Ceil(math.Exp2(fa)-1e-9)), int(math.Floor(math.Exp2(fb)+1e-9))
	// Widths within half a tolerance of the optimum that are still untried.
	near := e.free(d, max(a, int(math.Ceil(math.Exp2(uOpt-e.s.tolerance/2)))), min(b, int(math.Floor(math.Exp2(uOpt+e.s.tolerance/2)))))
	if dist <= e.s.tolerance/2 || near == 0 {
		p.status, p.action = StatusConverged, actionStop
		why := fmt.Sprintf("%.2f doublings from it, within half the tolerance of %s", dist, e.tolText())
		if dist > e.s.tolerance/2 {
			why = "no untried width lies within half the tolerance of it"
		}
		p.reason = fmt.Sprintf("%s; %s is the nearest model meeting every requirement (%s%s), %s", where, chosen.id(), e.qualityText(chosen), e.costText(chosen), why)
		return p
	}
	p.status = StatusContinue
	var us2 []float64
	for j := 0; len(us2) < e.s.perRound && j <= 2*e.s.perRound; j++ {
		// The optimum, then a tolerance above, below, two above, …
		off := float64((j+1)/2) * e.s.tolerance
		if j%2 == 0 {
			off = -off
		}
		if u := uOpt + off; u >= fa-1e-9 && u <= fb+1e-9 {
			us2 = append(us2, u)
		}
	}
	p.targets = targets(us2, a, b)
	p.action = e.direction(p, chosen)
	p.reason = fmt.Sprintf("%s; the nearest model meeting every requirement, %s, is %.2f doublings away, more than half the tolerance of %s", where, chosen.id(), dist, e.tolText())
	return p
}

// capped handles an optimum beyond the widest width within the cost
// limits: the answer is the widest model within them, bracketed between
// the widest measured to meet them and the narrowest measured to break
// them (or the top of the range).
func (e *engine) capped(d int32, widest *size, where string) plan {
	p := plan{chosen: widest, depth: d, lo: widest.width}
	var fail *size
	for _, s := range e.at(d) {
		if s.known && s.costFail != "" && s.width > widest.width {
			fail = s
			break
		}
	}
	top := e.topAt(d)
	lead := fmt.Sprintf("%s, beyond the cost limits; %s is the widest model measured to meet every requirement (%s%s)", where, widest.id(), e.qualityText(widest), e.costText(widest))
	var a, b int
	var uR float64
	closedR := false
	if fail == nil {
		if int(widest.width) >= top || e.free(d, int(widest.width)+1, top) == 0 {
			p.status, p.action = StatusConverged, actionStop
			p.reason = fmt.Sprintf("%s and the widest the range allows (width %d)", lead, top)
			return p
		}
		a, b, uR, closedR = int(widest.width)+1, top, math.Log2(float64(top)), true
	} else {
		p.hi = fail.width
		narrow := math.Log2(float64(fail.width)/float64(widest.width)) <= e.s.tolerance
		if narrow || e.free(d, int(widest.width)+1, int(fail.width)-1) == 0 {
			p.status, p.action = StatusConverged, actionStop
			p.reason = fmt.Sprintf("%s; %s above it breaks a limit as measured (%s), and the bracket %d..%d is within the tolerance of %s", lead, fail.id(), fail.costFail, widest.width, fail.width, e.tolText())
			return p
		}
		a, b, uR = int(widest.width)+1, int(fail.width)-1, math.Log2(float64(fail.width))
	}
	p.status, p.action = StatusContinue, actionGrow
	uL := math.Log2(float64(widest.width))
	var guide *float64
	if g, ok := e.costCap(d); ok && g > uL && g < uR {
		guide = &g
	}
	p.targets = targets(place(uL, uR, false, closedR, guide, e.s.perRound, e.s.tolerance), a, b)
	p.reason = lead + "; trying wider models towards the cost limit"
	if guide != nil {
		p.reason += fmt.Sprintf(", around width %.0f where the fitted costs reach it", math.Exp2(*guide))
	}
	return p
}

// costCap returns log2 of the width at depth d where the first fitted cost
// reaches its limit.
func (e *engine) costCap(d int32) (float64, bool) {
	best := math.Inf(1)
	for _, c := range []struct {
		key   string
		limit *float64
	}{{CostLatency, e.g.maxLatency}, {CostTrainTime, e.g.maxTrain}, {CostBytes, bytesLimit(e.g.maxBytes)}} {
		f := e.costFit[c.key]
		if c.limit == nil || f == nil {
			continue
		}
		if n, ok := f.SizeFor(*c.limit); ok {
			best = min(best, e.widthFor(d, n))
		}
	}
	if e.g.maxParams != nil {
		best = min(best, e.widthFor(d, float64(*e.g.maxParams)))
	}
	if math.IsInf(best, 0) || !(best > 0) {
		return 0, false
	}
	return math.Log2(best), true
}

func bytesLimit(b *int64) *float64 {
	if b == nil {
		return nil
	}
	v := float64(*b)
	return &v
}

// direction names the action from where the targets lie against the
// chosen width.
func (e *engine) direction(p plan, chosen *size) string {
	var up, down bool
	for _, w := range e.materialize(p.depth, p.targets) {
		if w > int(chosen.width) {
			up = true
		} else {
			down = true
		}
	}
	switch {
	case up && down:
		return actionRefine
	case up:
		return actionGrow
	case down:
		return actionShrink
	}
	return actionStop
}

// refineAround is the search while the fit is not trusted: the strategy's
// choice among the evaluated models, refined on each side until its
// neighbours are within tolerance.
func (e *engine) refineAround(t tradeoff, chosen *size, cost string, pick *size) plan {
	d := chosen.depth
	p := plan{chosen: chosen, depth: d}
	var lower, upper *size
	for _, s := range e.at(d) {
		if s.width < chosen.width {
			lower = s
		}
		if s.width > chosen.width && upper == nil {
			upper = s
		}
	}
	top := e.topAt(d)
	type side struct {
		uL, uR           float64
		closedL, closedR bool
		a, b             int
		gap              float64
	}
	var sides []side
	w := float64(chosen.width)
	if lower != nil {
		p.lo = lower.width
		if g := math.Log2(w / float64(lower.width)); g > e.s.tolerance && e.free(d, int(lower.width)+1, int(chosen.width)-1) > 0 {
			sides = append(sides, side{math.Log2(float64(lower.width)), math.Log2(w), false, false, int(lower.width) + 1, int(chosen.width) - 1, g})
		}
	} else if g := math.Log2(w / float64(e.minW)); g > e.s.tolerance && e.free(d, e.minW, int(chosen.width)-1) > 0 {
		sides = append(sides, side{math.Log2(float64(e.minW)), math.Log2(w), true, false, e.minW, int(chosen.width) - 1, g})
	}
	if upper != nil {
		p.hi = upper.width
		if g := math.Log2(float64(upper.width) / w); g > e.s.tolerance && e.free(d, int(chosen.width)+1, int(upper.width)-1) > 0 {
			sides = append(sides, side{math.Log2(w), math.Log2(float64(upper.width)), false, false, int(chosen.width) + 1, int(upper.width) - 1, g})
		}
	} else if g := math.Log2(float64(top) / w); top > int(chosen.width) && g > e.s.tolerance && e.free(d, int(chosen.width)+1, top) > 0 {
		sides = append(sides, side{math.Log2(w), math.Log2(float64(top)), false, true, int(chosen.width) + 1, top, g})
	}
	what := t.aim(e.g.metric, costName(cost))
	lead := fmt.Sprintf("%s is %s among the evaluated models", chosen.id(), what)
	if pick != chosen {
		lead = fmt.Sprintf("among the evaluated models %s is %s, but it misses a requirement; %s is the nearest model meeting every requirement", pick.id(), what, chosen.id())
	}
	lead += fmt.Sprintf(" (%s%s)", e.qualityText(chosen), e.costText(chosen))
	if len(sides) == 0 {
		p.status, p.action = StatusConverged, actionStop
		p.reason = fmt.Sprintf("%s, and its neighbours (%s and %s) are within the tolerance of %s or leave no untried width between", lead, neighbourName(lower, "the bottom of the range", e.minW), neighbourName(upper, "the top of the range", top), e.tolText())
		return p
	}
	p.status = StatusContinue
	// The wider side first; with several proposals they alternate.
	slices.SortStableFunc(sides, func(x, y side) int {
		switch {
		case x.gap > y.gap:
			return -1
		case x.gap < y.gap:
			return 1
		}
		return 0
	})
	counts := make([]int, len(sides))
	for i := range e.s.perRound {
		counts[i%len(sides)]++
	}
	for i, sd := range sides {
		us := place(sd.uL, sd.uR, sd.closedL, sd.closedR, nil, counts[i], e.s.tolerance)
		p.targets = append(p.targets, targets(us, sd.a, sd.b)...)
	}
	p.action = e.direction(p, chosen)
	p.reason = fmt.Sprintf("%s; refining the widths next to it by bisection in log width (the fit is not trusted yet: %s)", lead, e.untrustedWhy())
	return p
}

func neighbourName(s *size, end string, w int) string {
	if s == nil {
		return fmt.Sprintf("%s, %d", end, w)
	}
	return s.id()
}

// log2s returns log2 of each cost.
func log2s(c []float64) []float64 {
	out := make([]float64, len(c))
	for i, v := range c {
		out[i] = math.Log2(v)
	}
	return out
}
