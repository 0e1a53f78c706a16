package resize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Wording: how the MLP search says what it measured, what it concluded
// and why. Every figure compared with a limit is printed with the digits
// the comparison needs to read true.

// fmtQ writes a quality in the metric's units: three decimals of an
// accuracy, four significant digits of a loss, and more when fewer would
// put it on the other side of the target than it is.
func (e *engine) fmtQ(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	acc := e.g.metric == metricAccuracy
	format := func(p int) string {
		if acc {
			return strconv.FormatFloat(v, 'f', p, 64)
		}
		return strconv.FormatFloat(v, 'g', p+1, 64)
	}
	if e.g.target == nil {
		return format(3)
	}
	t := *e.g.target
	meets := func(x float64) bool {
		if acc {
			return x >= t
		}
		return x <= t
	}
	for p := 3; p <= 12; p++ {
		s := format(p)
		if r, err := strconv.ParseFloat(s, 64); err == nil && meets(r) == meets(v) {
			return s
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// fmtBelow writes v, known to be below limit, with the fewest decimals
// that still show it below: 94.78 against 95 is "94.8", never "95".
func fmtBelow(v, limit float64) string {
	for p := 0; p <= 12; p++ {
		s := strconv.FormatFloat(v, 'f', p, 64)
		if r, err := strconv.ParseFloat(s, 64); err == nil && r < limit {
			return s
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// fmtAbove writes v, known to be above limit, with three significant
// digits, or more when fewer would not show it above: latency 0.01004
// against a cap of 0.01 is "0.01004", never "0.01".
func fmtAbove(v, limit float64) string {
	for p := 3; p <= 17; p++ {
		s := strconv.FormatFloat(v, 'g', p, 64)
		if r, err := strconv.ParseFloat(s, 64); err == nil && r > limit {
			return s
		}
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (e *engine) confText() string { return fmt.Sprintf("%g%%", math.Round(e.s.confidence*1000)/10) }

func (e *engine) tolText() string {
	return fmt.Sprintf("%.0f%% (tolerance %g)", (math.Exp2(e.s.tolerance)-1)*100, e.s.tolerance)
}

// targetValue is the bare target, for "meets 0.95".
func (e *engine) targetValue() string {
	if e.g.target == nil {
		return "the requirements"
	}
	return strconv.FormatFloat(*e.g.target, 'g', -1, 64)
}

func (e *engine) targetText() string {
	if e.g.target == nil {
		return "the requirements"
	}
	return e.g.metric + " " + e.targetValue()
}

// boundWord names the optimistic (upper on accuracy, lower on loss) or
// pessimistic bound in the metric's terms.
func (e *engine) boundWord(optimistic bool) string {
	if optimistic == (e.g.metric == metricAccuracy) {
		return "upper"
	}
	return "lower"
}

// qualityText is what a size measured, with the trusted fit's pessimistic
// bound there for comparison (unless the two disagree: disputeText says
// so then).
func (e *engine) qualityText(s *size) string {
	m := fmt.Sprintf("measured %s %s", e.g.metric, e.fmtQ(e.g.toMetric(s.q)))
	if e.trusted && s.mlp() && s.known && !e.disputed(s) {
		b := e.pl.Band(float64(s.params))
		m += fmt.Sprintf(", the fit's %s %s bound on %s %s", e.confText(), e.boundWord(false), e.g.metric, e.fmtQ(e.g.toMetric(b.Lo)))
	}
	return m
}

// brief is a failing size's figure: its quality when it misses the
// target, else the limit it breaks.
func (e *engine) brief(s *size) string {
	switch {
	case !s.known:
		return "no measurement"
	case !e.reaches(s):
		return e.fmtQ(e.g.toMetric(s.q))
	case s.costFail != "":
		return s.costFail
	}
	return e.fmtQ(e.g.toMetric(s.q))
}

// whyNot says why a size does not meet the requirements.
func (e *engine) whyNot(s *size) string {
	switch {
	case !s.known:
		return "no measurement"
	case !e.reaches(s):
		return e.qualityText(s)
	case s.costFail != "":
		return s.costFail
	}
	return e.qualityText(s)
}

func (e *engine) costText(s *size) string {
	var parts []string
	t := s.rep
	if e.g.maxLatency != nil {
		parts = append(parts, fmt.Sprintf("latency p95 %.3g ms ≤ %g", t.latencyMs, *e.g.maxLatency))
	}
	if e.g.maxParams != nil {
		parts = append(parts, fmt.Sprintf("%d params ≤ %d", s.params, *e.g.maxParams))
	}
	if e.g.maxBytes != nil {
		parts = append(parts, fmt.Sprintf("%.0f bytes ≤ %d", t.modelBytes, *e.g.maxBytes))
	}
	if e.g.maxTrain != nil {
		parts = append(parts, fmt.Sprintf("train %.3g s ≤ %g", t.trainSecs, *e.g.maxTrain))
	}
	if len(parts) == 0 {
		return ""
	}
	return " within every cost limit (" + strings.Join(parts, ", ") + ")"
}

// bracketText says why the bracket below hi is closed.
func (e *engine) bracketText(hi, lo *size) string {
	d := hi.depth
	if lo == nil {
		if e.stepDown(d, int(hi.width)) == 0 {
			return fmt.Sprintf("it is the narrowest width of the range (%d)", e.minW)
		}
		return "every narrower width of the range was tried, and none finished with a measurement"
	}
	miss := fmt.Sprintf("%s below it fails (%s)", lo.id(), e.whyNot(lo))
	switch {
	case e.listed[d] != nil:
		return miss + ", and no untried listed model lies between them"
	case math.Log2(float64(hi.width)/float64(lo.width)) <= e.s.tolerance+1e-9:
		return fmt.Sprintf("%s, and the bracket %d..%d is within the tolerance of %s", miss, lo.width, hi.width, e.tolText())
	}
	return fmt.Sprintf("%s, and no untried width lies between %d and %d", miss, lo.width, hi.width)
}

// dipText names the failures measured below the bracket's failure, the
// evidence that no dip hides a smaller pass there; ruled: the trusted fit
// rules out every model below the last.
func (e *engine) dipText(lo *size, chain []*size, ruled bool) string {
	if lo == nil {
		return ""
	}
	fitEnd := fmt.Sprintf("the fit's %s %s bound on one measurement misses the target at every narrower model", e.confText(), e.boundWord(true))
	if len(chain) == 0 {
		if ruled {
			return fmt.Sprintf("; below %s, %s, so a dip cannot hide a pass the fit allows", lo.id(), fitEnd)
		}
		return fmt.Sprintf("; nothing was measured below %s", lo.id())
	}
	var parts []string
	for _, s := range chain {
		parts = append(parts, fmt.Sprintf("%s %s", s.id(), e.brief(s)))
	}
	out := fmt.Sprintf("; below %s, %s fail too, each within a step of the next (%s)", lo.id(), plural(len(chain), "model", "models"), strings.Join(parts, ", "))
	if len(chain) == 1 {
		out = fmt.Sprintf("; below %s, the next model fails too, within a step (%s)", lo.id(), parts[0])
	}
	if ruled {
		return out + fmt.Sprintf("; below them, %s", fitEnd)
	}
	if len(chain) < corroborate {
		return out + ", down to the bottom of the range"
	}
	return out + fmt.Sprintf(", so a smaller model that passes could only lie below a run of %d failures", len(chain)+1)
}

// disputeText says that the trusted fit's bound and a measured pass
// disagree, and which counts.
func (e *engine) disputeText(s *size) string {
	b := e.pl.Band(float64(s.params))
	return fmt.Sprintf("the fit's %s %s bound on %s at %s is %s, short of the target, but the model measured %s, and a measurement is what the model did",
		e.confText(), e.boundWord(false), e.g.metric, s.id(), e.fmtQ(e.g.toMetric(b.Lo)), e.fmtQ(e.g.toMetric(s.q)))
}

// neighbourText says what the step above a disputed pass measured.
func (e *engine) neighbourText(s *size) string {
	up := e.stepUp(s.depth, int(s.width))
	if up == 0 {
		return "; nothing wider may be tried to compare it with"
	}
	n := e.knownIn(s.depth, int(s.width)+1, up)
	switch {
	case n == nil:
		return "; the step above it could not be measured"
	case e.reaches(n):
		return fmt.Sprintf("; %s, a step wider, reaches it too (measured %s)", n.id(), e.fmtQ(e.g.toMetric(n.q)))
	}
	return fmt.Sprintf("; %s, a step wider, misses it (%s), so the pass stands alone: it is kept, as measured", n.id(), e.whyNot(n))
}

func (e *engine) guideText(guided bool, g float64) string {
	if guided {
		return fmt.Sprintf("around width %.0f where the fitted curve reaches the target", math.Exp2(g))
	}
	if !e.trusted {
		return fmt.Sprintf("by bisection in log width (the fit is not trusted yet: %s)", e.untrustedWhy())
	}
	return "by bisection in log width"
}

func (e *engine) unguidedGrowText() string {
	if !e.trusted {
		return fmt.Sprintf("the fit is not trusted yet: %s", e.untrustedWhy())
	}
	return "the fitted curve does not reach the target below the top"
}

func (e *engine) untrustedWhy() string {
	switch {
	case e.pl == nil:
		return fmt.Sprintf("%v", e.plErr)
	case e.pl.Distinct < minTrustedSizes:
		return fmt.Sprintf("%d distinct sizes, %d needed", e.pl.Distinct, minTrustedSizes)
	case !e.pl.Converged:
		return "the optimizer did not converge"
	case e.pl.R2 < minTrustedR2:
		return fmt.Sprintf("the curve explains %s%% of the variance, %g%% needed", fmtBelow(100*e.pl.R2, 100*minTrustedR2), 100*minTrustedR2)
	default:
		return fmt.Sprintf("only %d of %d bootstrap refits succeeded", len(e.pl.Replicates), e.s.bootstrap)
	}
}

// ceiling names the fitted asymptote with its interval.
func (e *engine) ceiling() string {
	if e.g.metric == metricLoss {
		return fmt.Sprintf("fitted floor %s [%s, %s]", e.fmtQ(-e.pl.QInf), e.fmtQ(-e.pl.QInfCI.Hi), e.fmtQ(-e.pl.QInfCI.Lo))
	}
	return fmt.Sprintf("fitted ceiling %s [%s, %s]", e.fmtQ(e.pl.QInf), e.fmtQ(e.pl.QInfCI.Lo), e.fmtQ(e.pl.QInfCI.Hi))
}

// stepNoun names the search's resolution at depth d.
func (e *engine) stepNoun(d int32) string {
	if e.listed[d] != nil {
		return "listed model"
	}
	return "step of " + e.tolText()
}

// missText says that nothing measured meets the requirements; reach is
// the smallest model measured to reach the quality target, if any.
func (e *engine) missText(d int32, reach *size) string {
	if reach != nil {
		return fmt.Sprintf("no model measured meets every requirement: %s is the smallest reaching %s (%s), but %s", reach.id(), e.targetText(), e.qualityText(reach), reach.costFail)
	}
	var best *size
	n := 0
	for _, s := range e.at(d) {
		if s.known {
			n++
			if best == nil || s.q > best.q {
				best = s
			}
		}
	}
	if best == nil {
		return fmt.Sprintf("no model of depth %d measured reaches %s", d, e.targetText())
	}
	return fmt.Sprintf("none of the %s of depth %d measured reaches %s (the best, %s, has %s)", plural(n, "model", "models"), d, e.targetText(), best.id(), e.qualityText(best))
}

// noiseText says that a bound on a measurement counts how far
// measurements stray from the curve, when they do.
func (e *engine) noiseText(d int32) string {
	sp := e.straySpread(d)
	if !(sp > 0) {
		return ""
	}
	return fmt.Sprintf(" for one measurement (the curve's band raised by how far a measurement strays above the curve, %.2g)", sp)
}

// sweepScope says which steps of the range a sweep must measure.
func (e *engine) sweepScope() string {
	if e.canRuleOut() && e.g.target != nil {
		return fmt.Sprintf("where the fit's %s %s bound on a measurement reaches the target", e.confText(), e.boundWord(true))
	}
	return fmt.Sprintf("(the fit rules nothing out: %s)", e.untrustedWhyShort())
}

func (e *engine) untrustedWhyShort() string {
	switch {
	case e.g.target == nil:
		return "no quality target"
	case e.trusted:
		return fmt.Sprintf("it rests on %d distinct sizes, %d needed to rule a model out", e.pl.Distinct, minRuleOutSizes)
	}
	return "it is not trusted, " + e.untrustedWhy()
}

// infeasibleText is the evidence of an infeasible verdict: what was
// measured, and what the fit rules out.
func (e *engine) infeasibleText(d int32, reach *size, measured, ruled int) string {
	var b strings.Builder
	if reach != nil {
		fmt.Fprintf(&b, "no model meets every requirement: %s is the smallest measured to reach %s (%s), but %s", reach.id(), e.targetText(), e.qualityText(reach), reach.costFail)
	} else {
		b.WriteString("no model of the declared range reaches " + e.targetText() + ": " + e.missText(d, nil))
	}
	top := e.topAt(d)
	noun := e.stepNoun(d)
	switch n, ok := e.paramsOf(d, top); {
	case e.canRuleOut() && e.g.target != nil && ok:
		hi := e.reachBound(d, float64(n))
		if hi < e.g.tq {
			fmt.Fprintf(&b, "; the fit's %s %s bound at the top of the range (width %d) is %s%s, short of the target (%s), and every %s of depth %d where the bound reaches it was measured (%d measured, %d ruled out by the fit)",
				e.confText(), e.boundWord(true), top, e.fmtQ(e.g.toMetric(hi)), e.noiseText(d), e.ceiling(), noun, d, measured, ruled)
		} else {
			fmt.Fprintf(&b, "; the fit's %s %s bound at the top of the range (width %d) is %s%s and does not rule the target out, but every %s of depth %d where the bound reaches it was measured (%d measured, %d ruled out by the fit)",
				e.confText(), e.boundWord(true), top, e.fmtQ(e.g.toMetric(hi)), e.noiseText(d), noun, d, measured, ruled)
		}
	default:
		fmt.Fprintf(&b, "; the fit rules nothing out (%s), and every %s of the range at depth %d (widths %d..%d) was measured: %d",
			e.untrustedWhyShort(), noun, d, e.minW, top, measured)
	}
	if reach != nil {
		fmt.Fprintf(&b, "; each misses %s or breaks a limit, as measured on the model itself", e.targetText())
	}
	return b.String()
}

func (e *engine) bestSoFar(p plan) string {
	if p.chosen == nil {
		return "no model meets every requirement so far"
	}
	return fmt.Sprintf("the best so far is %s (%s)", p.chosen.id(), e.qualityText(p.chosen))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// orList writes names as "a, b or c".
func orList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
