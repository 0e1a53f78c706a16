package resize

import (
	"fmt"
	"math"
	"strings"
)

// The bracket engine: the measured search along width at one depth that
// smallest_meeting is, and that the other strategies fall back on while
// no model meets the requirements. It never infers a model's quality or
// cost from another model's: a model passes when its own measurements
// meet every requirement, and the fit only says where to look and what
// cannot be reached.
//
// settle closes in on the smallest model meeting the target below the
// smallest measured to meet it; grow looks upwards while nothing reaches
// the target; sweep gathers the evidence an infeasible verdict needs.

// step is a range of widths [a, b] the search treats as one step of its
// resolution: a tolerance step (at least one width), or one listed model.
type step struct{ a, b int }

// settle brackets the smallest model reaching the quality target below
// hi, the smallest measured to reach it: passing says hi meets every
// requirement, otherwise it breaks a cost limit. In order, a round
//
//   - narrows the bracket between hi and the widest model measured below
//     it, until it is within the tolerance (or, with listed models, holds
//     no untried one);
//   - checks for a dip below that failure: the corroborate models
//     measured next below it must fail too, each within a step of the
//     next, since a failure does not prove that every smaller model fails
//     (dipChain);
//   - when the trusted fit disputes hi's pass (its lower bound there
//     misses the target), looks up the untried step above hi, so that the
//     reason can say whether the pass stands alone; the pass is kept
//     either way, as measured;
//   - then stops: converged on hi, or, when hi breaks a cost limit,
//     sweeps the range for the evidence that nothing meets every
//     requirement.
func (e *engine) settle(hi *size, passing bool) plan {
	d := hi.depth
	lo := e.below(d, hi.width)
	p := plan{depth: d, hi: hi.width}
	if passing {
		p.chosen = hi
	}
	if lo != nil {
		p.lo = lo.width
	}
	lead := fmt.Sprintf("%s meets every requirement (%s%s)", hi.id(), e.qualityText(hi), e.costText(hi))
	if !passing {
		lead = fmt.Sprintf("%s reaches %s (%s) but %s", hi.id(), e.targetText(), e.qualityText(hi), hi.costFail)
	}

	// The bracket.
	a, b := e.minW, int(hi.width)-1
	if lo != nil {
		a = int(lo.width) + 1
	}
	if (lo == nil || !e.linked(d, int(lo.width), int(hi.width))) && e.free(d, a, b) > 0 {
		uL, lf := math.Log2(float64(e.minW)), float64(e.minW)
		where := fmt.Sprintf("down to the narrowest width of the range (%d)", e.minW)
		if lo != nil {
			uL, lf = math.Log2(float64(lo.width)), float64(lo.width)
			where = fmt.Sprintf("between %s (%s) and it", lo.id(), e.whyNot(lo))
		}
		var guide *float64
		g, guided := e.crossing(d, lf, float64(hi.width))
		if guided {
			guide = &g
		}
		p.status, p.action = StatusContinue, actionShrink
		p.targets = targets(place(uL, math.Log2(float64(hi.width)), lo == nil, false, guide, e.s.perRound, e.s.tolerance), a, b)
		p.reason = fmt.Sprintf("%s; trying smaller widths %s, %s", lead, where, e.guideText(guided, g))
		return p
	}
	closed := e.bracketText(hi, lo)

	// The checks before stopping: a dip below the failure, and the
	// neighbour above a pass the fit disputes.
	checks, chain, ruled := e.dipChain(d, lo)
	var doing []string
	if len(checks) > 0 {
		doing = append(doing, fmt.Sprintf("a failure does not prove that every smaller model fails, so the %d models measured below %s must fail too, each within a step of the next, before %s closes the bracket",
			corroborate, lo.id(), lo.id()))
	}
	disputed := passing && e.disputed(hi)
	action := actionShrink
	if disputed {
		if up := e.stepUp(d, int(hi.width)); up > 0 && e.knownIn(d, int(hi.width)+1, up) == nil && e.free(d, int(hi.width)+1, up) > 0 {
			checks = append(checks, target{math.Log2(float64(up)), int(hi.width) + 1, up})
			doing = append(doing, fmt.Sprintf("%s; the step above it is looked up to see whether the pass stands alone (it is kept either way)", e.disputeText(hi)))
			if len(checks) == 1 {
				action = actionGrow
			} else {
				action = actionRefine
			}
		}
	}
	if len(checks) > 0 {
		p.status, p.action = StatusContinue, action
		p.targets = checks[:min(len(checks), e.s.perRound)]
		p.reason = fmt.Sprintf("%s; %s; %s", lead, closed, strings.Join(doing, "; "))
		return p
	}
	if !passing {
		return e.sweep(d, hi)
	}
	p.status, p.action = StatusConverged, actionStop
	p.reason = fmt.Sprintf("%s is the smallest model measured to meet %s (%s%s); %s%s", hi.id(), e.targetValue(), e.qualityText(hi), e.costText(hi), closed, e.dipText(lo, chain, ruled))
	if disputed {
		p.reason += "; " + e.disputeText(hi) + e.neighbourText(hi)
	}
	return p
}

// disputed reports whether the trusted fit's lower bound at a measured
// pass misses the target: the fit and the measurement disagree.
func (e *engine) disputed(s *size) bool {
	return e.trusted && s.mlp() && e.g.target != nil && e.reaches(s) && e.pl.Band(float64(s.params)).Lo < e.g.tq
}

// linked reports whether two measured widths at depth d are within a step
// of each other: a tolerance step apart at most, or with no untried width
// between them.
func (e *engine) linked(d int32, lo, hi int) bool {
	return (e.listed[d] == nil && math.Log2(float64(hi)/float64(lo)) <= e.s.tolerance+1e-9) || e.free(d, lo+1, hi-1) == 0
}

// dipChain is the check for a dip below the bracket's failure lo: the
// corroborate models measured next below it must fail too, each within a
// step of the one above (linked), so that no untried stretch wider than a
// step hides a smaller model that passes. It returns the chain measured so
// far and, where a link is missing, the widths to measure: one a step
// below the last link (at most corroborate in all). The chain is shorter
// when the range ends first, or where the trusted fit rules out every
// narrower model (ruledOut: its bound on one measurement misses the
// target, and the bound falls with width), which ruled reports: there a
// dip cannot hide a pass the fit allows, and the models are not measured.
func (e *engine) dipChain(d int32, lo *size) (ts []target, chain []*size, ruled bool) {
	if lo == nil {
		return nil, nil, false
	}
	x := int(lo.width)
	for range corroborate {
		next := x - 1
		if e.listed[d] != nil {
			next = e.stepDown(d, x)
		}
		if next >= e.minW && next > 0 && e.ruledOut(d, next) {
			return ts, chain, true
		}
		y := e.below(d, int32(x))
		if y != nil && e.linked(d, int(y.width), x) {
			chain = append(chain, y)
			x = int(y.width)
			continue
		}
		a := e.minW
		if y != nil {
			a = int(y.width) + 1
		}
		t := target{math.Log2(float64(x)) - e.s.tolerance, a, x - 1}
		if ws := e.materialize(d, append(ts, t)); len(ws) > len(ts) {
			ts = append(ts, t)
			x = ws[len(ws)-1]
			continue
		}
		if y == nil {
			break
		}
		chain = append(chain, y)
		x = int(y.width)
	}
	return ts, chain, false
}

// steps divides the range at depth d into steps, from its top down.
func (e *engine) steps(d int32) []step {
	var out []step
	r := e.topAt(d)
	for r >= e.minW {
		nr := e.stepDown(d, r)
		if nr == 0 {
			out = append(out, step{e.minW, r})
			break
		}
		out = append(out, step{nr + 1, r})
		r = nr
	}
	return out
}

// ruledOut reports whether the trusted fit says the model of depth d and
// width w cannot measure up to the target: even optimistically, one
// measurement of it does not reach it (reachBound).
func (e *engine) ruledOut(d int32, w int) bool {
	if !e.canRuleOut() || e.g.target == nil {
		return false
	}
	n, ok := e.paramsOf(d, w)
	return ok && e.reachBound(d, float64(n)) < e.g.tq
}

// minRuleOutSizes is the fewest distinct sizes a trusted fit must rest on
// to rule a model out: one more than trust needs, so that at least three
// residuals measure the noise. Five measurements of a sharp transition
// and a plateau (0.596, then 0.966 three times) fit a curve exactly, with
// no noise to see, and its bound then ruled out a model that measured
// 0.970.
const minRuleOutSizes = minTrustedSizes + 1

// canRuleOut reports whether the fit may rule models out: trusted, and
// resting on minRuleOutSizes distinct sizes.
func (e *engine) canRuleOut() bool {
	return e.trusted && e.pl.Distinct >= minRuleOutSizes
}

// reachBound is the trusted fit's optimistic bound on one measurement of
// a model of n params at depth d: the upper edge of the curve's band, raised by the
// stray of a measurement from the curve (straySpread). The band bounds the
// curve, the mean of what a model of that size measures; a model's own
// measurement scatters about it, and it is the measurement that decides
// whether the model passes. (Ruling out by the band alone called a target
// out of reach while an untried model measured above it: a family
// measured 0.9025 at a size whose band ended at 0.902, and a real digits
// family 0.9777 where the band ended at 0.977.)
func (e *engine) reachBound(d int32, n float64) float64 {
	hi := e.pl.Band(n).Hi + e.straySpread(d)
	if e.pl.QMax != nil {
		hi = min(hi, *e.pl.QMax)
	}
	return hi
}

// straySpread is how far above the fitted curve a measurement of any step
// of the range at depth d may land (strayOf): real measurements (a test split of a few hundred rows) stray
// by more than a smooth estimate of the noise from few residuals says.
func (e *engine) straySpread(d int32) float64 {
	var n, q []float64
	for _, s := range e.sizes {
		if s.mlp() && s.known {
			n, q = append(n, float64(s.params)), append(q, s.q)
		}
	}
	return strayOf(e.pl, n, q, e.s.confidence, len(e.steps(d)))
}

// grow handles the case where nothing reaches the quality target yet:
// it looks upwards, an octave at a time or around where the fitted curve
// reaches the target, until the top of the range is measured; then it
// sweeps.
func (e *engine) grow() plan {
	var largest *size
	for _, s := range e.sizes {
		if s.mlp() && s.known {
			largest = s // sizes are sorted by params
		}
	}
	if largest == nil {
		return plan{status: StatusInfeasible, action: actionStop,
			reason: fmt.Sprintf("no MLP trial finished with a measured %s (%d trials: see their status and error columns), so there is nothing to fit or resize", e.g.metric, len(e.trials))}
	}
	d := largest.depth
	top := e.topAt(d)
	topA := e.minW
	if nr := e.stepDown(d, top); nr > 0 {
		topA = nr + 1
	}
	if int(largest.width) >= topA || e.knownIn(d, topA, top) != nil || e.free(d, int(largest.width)+1, top) == 0 {
		return e.sweep(d, nil)
	}
	p := plan{depth: d, lo: largest.width, status: StatusContinue, action: actionGrow}
	lead := fmt.Sprintf("nothing reaches %s yet: the largest so far, %s, has %s", e.targetText(), largest.id(), e.qualityText(largest))
	a, b := int(largest.width)+1, top
	uL, uR := math.Log2(float64(largest.width)), math.Log2(float64(top))
	if e.ruledOut(d, top) {
		// The fit already rules the target out; the largest allowed model
		// is the one likeliest to prove it wrong.
		n, _ := e.paramsOf(d, top)
		p.targets = targets([]float64{uR}, a, b)
		p.reason = fmt.Sprintf("%s, and the fit's %s %s bound at width %d is %s%s: measuring width %d, the model likeliest to reach it, before calling it out of reach",
			lead, e.confText(), e.boundWord(true), top, e.fmtQ(e.g.toMetric(e.reachBound(d, float64(n)))), e.noiseText(d), top)
		return p
	}
	if g, ok := e.crossing(d, float64(largest.width), float64(top)); ok {
		p.targets = targets(place(uL, uR, false, true, &g, e.s.perRound, e.s.tolerance), a, b)
		p.reason = fmt.Sprintf("%s; trying wider models up to width %d, %s", lead, top, e.guideText(true, g))
		return p
	}
	p.targets = targets(growSteps(uL, uR, e.s.perRound), a, b)
	p.reason = fmt.Sprintf("%s; growing an octave at a time towards width %d (%s)", lead, top, e.unguidedGrowText())
	return p
}

// growSteps returns k positions (log2 width) an octave apart above uL, the
// last at uR when the octaves reach it. Growing geometrically rather than
// spreading the proposals up to the top of the range keeps a search whose
// answer is small from paying for the widest models: the widths trained
// while growing cost, together, a small multiple of the first passing
// width's cost, whatever the range.
func growSteps(uL, uR float64, k int) []float64 {
	var pts []float64
	for i := 1; i <= k; i++ {
		u := uL + float64(i)
		if u >= uR {
			return append(pts, uR)
		}
		pts = append(pts, u)
	}
	return pts
}

// sweep gathers the evidence an infeasible verdict rests on, once nothing
// measured meets every requirement and the top of the range is measured:
// every step of the range at depth d must hold a measured model, except
// the steps where the trusted fit's upper bound misses the target. reach
// is the smallest model measured to reach the quality target (it breaks a
// cost limit), or nil when none does. Steps are measured spread out, the
// one farthest from every measurement first, so that an untrusted fit
// gains distinct sizes fastest.
func (e *engine) sweep(d int32, reach *size) plan {
	p := plan{depth: d}
	if reach != nil {
		p.hi = reach.width
	}
	var need []step
	measured, ruled := 0, 0
	for _, st := range e.steps(d) {
		switch {
		case e.knownIn(d, st.a, st.b) != nil:
			measured++
		case e.ruledOut(d, st.b):
			ruled++
		case e.free(d, st.a, st.b) > 0:
			need = append(need, st)
		}
	}
	if len(need) == 0 {
		p.status, p.action = StatusInfeasible, actionStop
		p.reason = e.infeasibleText(d, reach, measured, ruled)
		return p
	}
	var known []float64
	for _, s := range e.at(d) {
		known = append(known, math.Log2(float64(s.width)))
	}
	for len(p.targets) < e.s.perRound && len(need) > 0 {
		bi, bd := 0, -1.0
		for i, st := range need {
			u, dist := math.Log2(float64(st.b)), math.Inf(1)
			for _, k := range known {
				dist = min(dist, math.Abs(u-k))
			}
			if dist > bd+1e-9 {
				bi, bd = i, dist
			}
		}
		st := need[bi]
		p.targets = append(p.targets, target{math.Log2(float64(st.b)), st.a, st.b})
		known = append(known, math.Log2(float64(st.b)))
		need = append(need[:bi], need[bi+1:]...)
	}
	left := len(need) + len(p.targets)
	p.status, p.action = StatusContinue, actionRefine
	p.reason = fmt.Sprintf("%s; before calling the requirements out of reach, every %s of the range at depth %d %s must be measured: %d left",
		e.missText(d, reach), e.stepNoun(d), d, e.sweepScope(), left)
	return p
}
