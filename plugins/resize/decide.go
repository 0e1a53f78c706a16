package resize

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/fit"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Quality metrics.
const (
	metricAccuracy = "accuracy"
	metricLoss     = "loss"
)

// Actions.
const (
	actionGrow   = "grow"
	actionShrink = "shrink"
	actionRefine = "refine"
	actionStop   = "stop"
)

// minTrustedSizes is the number of distinct sizes from which the fit is
// trusted: three parameters and at least two degrees of freedom left to
// estimate the noise that the bootstrap resamples.
const minTrustedSizes = 5

// minTrustedR2 is the least share of the variance of the qualities the
// curve must explain to be trusted. Below it the data are not shaped like a
// saturating power law (a sharp sigmoid-like transition, as two-spirals
// shows, or noise on a plateau), the bootstrap band mostly measures the
// misfit, and a bound drawn from it would veto models plainly good enough.
const minTrustedR2 = 0.95

// goals are the targets and budget, from the requirements table with the
// stage's overrides applied.
type goals struct {
	metric string // accuracy | loss
	// target is in the metric's units; tq is the same target on the
	// higher-is-better scale the fit uses (−loss for a loss).
	target *float64
	tq     float64
	// maxLoss is a loss limit checked on measurements when the fitted
	// metric is accuracy.
	maxLoss              *float64
	maxLatency, maxTrain *float64
	maxParams, maxBytes  *int64
	maxTrials            *int
	maxWall              *float64
	task                 string
	features, classes    *int32
}

func goalsFrom(s settings, req *tables.Requirements, trials []trial) goals {
	var g goals
	if req != nil {
		g.task, g.features, g.classes = req.Task, req.Features, req.Classes
		g.maxLatency, g.maxTrain, g.maxWall = req.MaxLatencyMs, req.MaxTrainSeconds, req.MaxWallSeconds
		g.maxParams, g.maxBytes = req.MaxParams, req.MaxModelBytes
		if req.MaxTrials != nil {
			v := int(*req.MaxTrials)
			g.maxTrials = &v
		}
	}
	o := s.overrides
	pick := func(over, base *float64) *float64 {
		if over != nil {
			return over
		}
		return base
	}
	var minAcc, maxLoss *float64
	if req != nil {
		minAcc, maxLoss = req.MinAccuracy, req.MaxLoss
	}
	minAcc, maxLoss = pick(o.minAccuracy, minAcc), pick(o.maxLoss, maxLoss)
	g.maxLatency = pick(o.maxLatencyMs, g.maxLatency)
	g.maxTrain = pick(o.maxTrainSeconds, g.maxTrain)
	g.maxWall = pick(o.maxWallSeconds, g.maxWall)
	if o.maxParams != nil {
		g.maxParams = o.maxParams
	}
	if o.maxModelBytes != nil {
		g.maxBytes = o.maxModelBytes
	}
	if o.maxTrials != nil {
		g.maxTrials = o.maxTrials
	}
	hasAccuracy := slices.ContainsFunc(trials, func(t trial) bool { return !math.IsNaN(t.accuracy) })
	switch {
	case minAcc != nil:
		g.metric, g.target, g.tq, g.maxLoss = metricAccuracy, minAcc, *minAcc, maxLoss
	case maxLoss != nil:
		g.metric, g.target, g.tq = metricLoss, maxLoss, -*maxLoss
	case g.task == tables.Regression || !hasAccuracy:
		g.metric = metricLoss
	default:
		g.metric = metricAccuracy
	}
	return g
}

// quality returns a trial's quality on the higher-is-better scale.
func (g goals) quality(t trial) float64 {
	if g.metric == metricAccuracy {
		return t.accuracy
	}
	return -t.loss
}

// toMetric converts a higher-is-better value back to the metric's units.
func (g goals) toMetric(q float64) float64 {
	if g.metric == metricLoss {
		return -q
	}
	return q
}

// size is one evaluated (family, depth, width), with its best trial: the
// optimization stage may train several variants of a size, and the best
// of them is what the size can do.
type size struct {
	family       string
	depth, width int32
	params       int64
	rep          trial // the best ok trial, or the first trial when none is ok
	known        bool  // some trial of this size finished with a quality
	q            float64
	costFail     string // the first cost limit the size breaks, "" if none
}

func (s *size) id() string { return s.rep.cand.ID }
func (s *size) mlp() bool {
	return s.family != tables.FamilyLinear && s.depth > 0 && s.width > 0
}

// aggregate groups the trials by size, sorted by params (then depth,
// width). A size's representative is its best finished trial within every
// cost limit, or its best finished trial when none is: an int8 variant
// within max_model_bytes serves the size when the float32 one is too big.
func aggregate(trials []trial, g goals) []*size {
	type key struct {
		family       string
		depth, width int32
		name         string // table and axis models are told apart by name
	}
	by := map[key]*size{}
	var out []*size
	for _, t := range trials {
		k := key{family: t.cand.Family, depth: t.cand.Depth, width: t.cand.Width}
		if t.cand.Kind != tables.KindMLP {
			k.name = t.cand.Name
		}
		s, ok := by[k]
		if !ok {
			s = &size{family: k.family, depth: k.depth, width: k.width, params: t.cand.Params, rep: t, q: math.NaN()}
			s.costFail = costFailure(t, s.params, g)
			by[k] = s
			out = append(out, s)
		}
		q := g.quality(t)
		if t.status != trialOK || math.IsNaN(q) {
			continue
		}
		fail := costFailure(t, s.params, g)
		better := !s.known ||
			(fail == "" && s.costFail != "") ||
			((fail == "") == (s.costFail == "") && q > s.q)
		if better {
			s.rep, s.q, s.known, s.costFail = t, q, true, fail
		}
	}
	slices.SortFunc(out, func(a, b *size) int {
		return cmp.Or(cmp.Compare(a.params, b.params), cmp.Compare(a.depth, b.depth), cmp.Compare(a.width, b.width), cmp.Compare(a.family, b.family))
	})
	return out
}

// costFailure names the first limit a trial breaks. An unmeasured cost
// breaks nothing: it cannot be judged.
func costFailure(t trial, params int64, g goals) string {
	switch {
	case t.status == trialInfeasible:
		return "the evaluation found it infeasible"
	case g.maxParams != nil && params > *g.maxParams:
		return fmt.Sprintf("%d parameters exceed max_params = %d", params, *g.maxParams)
	case g.maxLatency != nil && t.latencyMs > *g.maxLatency:
		return fmt.Sprintf("latency p95 %.3g ms exceeds max_latency_ms = %g", t.latencyMs, *g.maxLatency)
	case g.maxBytes != nil && t.modelBytes > float64(*g.maxBytes):
		return fmt.Sprintf("%.0f model bytes exceed max_model_bytes = %d", t.modelBytes, *g.maxBytes)
	case g.maxTrain != nil && t.trainSecs > *g.maxTrain:
		return fmt.Sprintf("training took %.3g s, over max_train_seconds = %g", t.trainSecs, *g.maxTrain)
	}
	return ""
}

// ioShape is the inputs and outputs of the dense chain, which with depth
// and width fix a model's parameter count.
type ioShape struct{ in, out int64 }

// inferShape recovers inputs and outputs from a candidate's exact counts
// (see modelchoice): with P' and F' its params and FLOPs less those of the
// (depth−1) hidden-to-hidden layers, F' − P' = w·(in+out) and
// P' − w·(in+out) − w = out. For the depth-0 baseline, F − P = in·out and
// 2P − F = out. Counting from the candidates rather than from the
// requirements keeps proposals consistent with upstream stages that changed
// the inputs (PCA, say).
func inferShape(c tables.Candidate) (ioShape, bool) {
	d, w, P, F := int64(c.Depth), int64(c.Width), c.Params, c.FLOPs
	var sh ioShape
	switch {
	case d == 0:
		sh.out = 2*P - F
		if sh.out <= 0 || (F-P)%sh.out != 0 {
			return ioShape{}, false
		}
		sh.in = (F - P) / sh.out
	case w > 0:
		p1 := P - (d-1)*(w*w+w)
		f1 := F - (d-1)*(2*w*w+w)
		if (f1-p1)%w != 0 {
			return ioShape{}, false
		}
		s := (f1 - p1) / w
		sh.out = p1 - w*s - w
		sh.in = s - sh.out
	default:
		return ioShape{}, false
	}
	if sh.in < 1 || sh.out < 1 {
		return ioShape{}, false
	}
	if p, f := mlp.Count(mlp.LayerSizes(sh.in, d, w, sh.out)); p != P || f != F {
		return ioShape{}, false
	}
	return sh, true
}

// engine holds one decision's working state.
type engine struct {
	s       settings
	g       goals
	trials  []trial
	sizes   []*size
	round   int32
	shape   ioShape
	shapeOK bool
	minW    int
	maxW    int

	pl      *fit.PowerLawFit
	plErr   error
	trusted bool
	costFit map[string]*fit.LogLog
	notes   []string
}

// decide is the whole decision, a pure function of the config, the
// results and the requirements.
func decide(s settings, trials []trial, req *tables.Requirements, space ...tables.Candidate) (*decision, error) {
	if len(trials) == 0 {
		return nil, &sdk.InputError{Port: InputPort, Row: -1, Err: errNoResults}
	}
	g := goalsFrom(s, req, trials)
	if s.strategy == SmallestMeeting && g.target == nil {
		return nil, sdk.AttrError("strategy", "No quality target",
			"strategy \"smallest_meeting\" looks for the smallest model meeting a quality target, but neither the requirements nor this stage set min_accuracy or max_loss. Set one, or choose strategy knee, pareto or max_utility.")
	}
	e := &engine{s: s, g: g, trials: trials, sizes: aggregate(trials, g)}
	for _, t := range trials {
		e.round = max(e.round, t.cand.Round)
	}
	if isCatalog(trials, space) {
		return e.decideCatalog(space)
	}
	e.setShape()
	e.setRange()
	e.fitCurves()

	var p plan
	var err error
	if s.strategy == SmallestMeeting {
		p, err = e.smallest()
	} else {
		p, err = e.optimum()
	}
	if err != nil {
		return nil, err
	}
	return e.finish(p)
}

func (e *engine) setShape() {
	for _, s := range e.sizes {
		if sh, ok := inferShape(s.rep.cand); ok {
			e.shape, e.shapeOK = sh, true
			return
		}
	}
	if e.g.features != nil && *e.g.features > 0 {
		var classes int64
		if e.g.classes != nil {
			classes = int64(*e.g.classes)
		}
		out := mlp.Outputs(e.g.task, classes)
		if out > 0 {
			e.shape, e.shapeOK = ioShape{in: int64(*e.g.features), out: out}, true
		}
	}
}

// setRange sets the widths the search may propose: the config's, else the
// extremes evaluated (model_choice's ladder always includes both ends of its
// declared range).
func (e *engine) setRange() {
	for _, s := range e.sizes {
		if !s.mlp() {
			continue
		}
		if e.minW == 0 || int(s.width) < e.minW {
			e.minW = int(s.width)
		}
		e.maxW = max(e.maxW, int(s.width))
	}
	if e.s.minWidth > 0 {
		e.minW = e.s.minWidth
	}
	if e.s.maxWidth > 0 {
		e.maxW = e.s.maxWidth
	}
	if e.maxW < e.minW {
		e.maxW = e.minW
	}
}

// topAt is the widest width at depth d the search may propose: the range's
// top, lowered to respect max_params.
func (e *engine) topAt(d int32) int {
	top := e.maxW
	if e.g.maxParams == nil || !e.shapeOK {
		return top
	}
	for top >= e.minW && e.exactParams(d, top) > *e.g.maxParams {
		// Params grow with width, so bisect down to the last one allowed.
		lo, hi := e.minW, top
		for lo < hi {
			m := (lo + hi + 1) / 2
			if e.exactParams(d, m) <= *e.g.maxParams {
				lo = m
			} else {
				hi = m - 1
			}
		}
		top = lo
		break
	}
	return top
}

func (e *engine) exactParams(d int32, w int) int64 {
	p, _ := mlp.Count(mlp.LayerSizes(e.shape.in, int64(d), int64(w), e.shape.out))
	return p
}

// paramsAt is the parameter count at a real-valued width, for moving
// between width and size on continuous curves.
func (e *engine) paramsAt(d int32, w float64) float64 {
	in, out, dd := float64(e.shape.in), float64(e.shape.out), float64(d)
	return w*(in+1) + (dd-1)*(w*w+w) + out*(w+1)
}

// widthFor inverts paramsAt by bisection on log width.
func (e *engine) widthFor(d int32, n float64) float64 {
	lo, hi := math.Log(1e-3), math.Log(float64(maxWidth)*2)
	for range 100 {
		m := (lo + hi) / 2
		if e.paramsAt(d, math.Exp(m)) < n {
			lo = m
		} else {
			hi = m
		}
	}
	return math.Exp((lo + hi) / 2)
}

// fitCurves fits quality against params over the MLP sizes with a known
// quality, and each cost likewise.
func (e *engine) fitCurves() {
	var n, q, lat, bytes, train []float64
	for _, s := range e.sizes {
		if !s.mlp() || !s.known {
			continue
		}
		n = append(n, float64(s.params))
		q = append(q, s.q)
		lat = append(lat, s.rep.latencyMs)
		bytes = append(bytes, s.rep.modelBytes)
		train = append(train, s.rep.trainSecs)
	}
	opts := fit.Options{Confidence: e.s.confidence, Bootstrap: e.s.bootstrap, Seed: e.s.seed}
	qmax := 1.0
	if e.g.metric == metricLoss {
		qmax = 0 // a loss is never negative
	}
	opts.QMax = &qmax
	if len(n) > 0 {
		e.pl, e.plErr = fit.FitPowerLaw(n, q, opts)
	} else {
		e.plErr = fit.ErrTooFewPoints
	}
	if e.pl != nil {
		e.trusted = e.pl.Distinct >= minTrustedSizes && e.pl.Converged && e.pl.R2 >= minTrustedR2 && len(e.pl.Replicates) >= e.s.bootstrap/2
	}
	e.costFit = map[string]*fit.LogLog{}
	for name, ys := range map[string][]float64{CostLatency: lat, CostBytes: bytes, CostTrainTime: train} {
		if f, err := fit.FitLogLog(n, ys); err == nil {
			e.costFit[name] = &f
		}
	}
}

// lower is the pessimistic quality of a size: the lesser of its
// measurement and, when the fit is trusted, the fit's lower bound there.
func (e *engine) lower(s *size) float64 {
	if !e.trusted || !s.mlp() {
		return s.q
	}
	return math.Min(s.q, e.pl.Band(float64(s.params)).Lo)
}

// passMeasured reports whether a size's measurements meet the quality
// requirements, whatever the fit says.
func (e *engine) passMeasured(s *size) bool {
	if !s.known {
		return false
	}
	if e.g.maxLoss != nil && !(s.rep.loss <= *e.g.maxLoss) {
		return false
	}
	return e.g.target == nil || s.q >= e.g.tq
}

// passQ reports whether a size with a known quality meets the quality
// requirements: as measured, and by the fit's lower bound or, failing
// that, corroborated by the next wider size (see corroboration).
func (e *engine) passQ(s *size) bool {
	if !e.passMeasured(s) {
		return false
	}
	if e.g.target == nil || e.lower(s) >= e.g.tq {
		return true
	}
	return e.corroboration(s) != nil
}

// corroborating returns the size whose corroboration s's pass rests on:
// the fit is trusted and its lower bound at s misses the target; nil
// otherwise.
func (e *engine) corroborating(s *size) *size {
	if !e.trusted || !s.mlp() || e.g.target == nil || !e.passMeasured(s) || e.lower(s) >= e.g.tq {
		return nil
	}
	return e.corroboration(s)
}

// corroboration returns the next wider known size of s's depth when it is
// at most a tolerance step wider and its measurement meets the quality
// requirements too; nil otherwise. The fit's lower bound guards a single
// measurement against luck, but where the curve is not a power law (a
// sharp transition, as two-spirals shows) its band mostly measures the
// misfit and vetoes models plainly good enough; a second, wider model
// trained independently and passing as well is direct evidence that the
// pass is not luck.
func (e *engine) corroboration(s *size) *size {
	if !s.mlp() {
		return nil
	}
	for _, t := range e.at(s.depth) {
		if t.known && t.family == s.family && t.width > s.width {
			if float64(t.width) <= float64(s.width)*math.Exp2(e.s.tolerance)*(1+1e-9) && e.passMeasured(t) {
				return t
			}
			return nil
		}
	}
	return nil
}

func (e *engine) meets(s *size) bool { return s.known && e.passQ(s) && s.costFail == "" }

// at returns the MLP sizes of depth d, by width.
func (e *engine) at(d int32) []*size {
	var out []*size
	for _, s := range e.sizes {
		if s.mlp() && s.depth == d {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *size) int { return cmp.Compare(a.width, b.width) })
	return out
}

// below returns the widest known size of depth d narrower than w.
func (e *engine) below(d int32, w int32) *size {
	var best *size
	for _, s := range e.at(d) {
		if s.known && s.width < w {
			best = s
		}
	}
	return best
}

// free counts the untried widths of depth d in [a, b].
func (e *engine) free(d int32, a, b int) int {
	if b < a {
		return 0
	}
	n := b - a + 1
	for _, s := range e.at(d) {
		if int(s.width) >= a && int(s.width) <= b {
			n--
		}
	}
	return n
}

// plan is a strategy's verdict before the budget is applied.
type plan struct {
	status, action, reason string
	chosen                 *size
	depth                  int32
	lo, hi                 int32 // bracket widths; 0 when absent
	// targets are the proposed positions at depth, in order of priority.
	targets []target
}

// target is a proposed position in log2 width and the widths [a, b] it may
// move within when its own is taken.
type target struct {
	u    float64
	a, b int
}

func targets(us []float64, a, b int) []target {
	out := make([]target, len(us))
	for i, u := range us {
		out[i] = target{u, a, b}
	}
	return out
}

// crossing returns log2 of the width at depth d where the fit's lower
// bound reaches the target, searched between widths a and b.
func (e *engine) crossing(d int32, a, b float64) (float64, bool) {
	if !e.trusted || e.g.target == nil || !e.shapeOK {
		return 0, false
	}
	n, ok := e.pl.FirstLowerAtLeast(e.g.tq, e.paramsAt(d, a), e.paramsAt(d, b))
	if !ok {
		return 0, false
	}
	return math.Log2(e.widthFor(d, n)), true
}

// smallest is the smallest_meeting strategy (and the fallback of the other
// strategies while no model meets the requirements).
func (e *engine) smallest() (plan, error) {
	var best *size
	for _, s := range e.sizes {
		if !e.meets(s) {
			continue
		}
		if w := e.contradiction(s); w != nil {
			e.notes = append(e.notes, fmt.Sprintf("%s reaches %s but the wider %s does not, so its pass is set aside as luck", s.id(), e.targetValue(), w.id()))
			continue
		}
		best = s
		break
	}
	if best != nil && !best.mlp() {
		return plan{status: StatusConverged, action: actionStop, chosen: best,
			reason: fmt.Sprintf("the %s baseline %s already meets every requirement (%s), so no hidden layer is needed", best.family, best.id(), e.qualityText(best))}, nil
	}
	if best != nil {
		return e.shrinkTo(best, true)
	}
	// Nothing meets every requirement. Models good enough but too costly?
	for _, s := range e.sizes {
		if s.mlp() && e.passQ(s) && e.contradiction(s) == nil {
			return e.shrinkTo(s, false)
		}
	}
	return e.grow()
}

// contradiction returns a known size of s's depth, up to an octave wider,
// whose measurement misses the quality target although s reaches it; nil
// when there is
// none. Small models train unevenly near the threshold: a width that passes
// while a slightly wider one fails passed by luck, and an answer resting on
// it would not hold up when trained again. Such a pass is set aside, so the
// search brackets the answer above the failing width. Only failures within
// an octave count, so that one unlucky failure far above the threshold
// does not push the answer up.
func (e *engine) contradiction(s *size) *size {
	if !s.mlp() || !e.passQ(s) {
		return nil
	}
	for _, t := range e.at(s.depth) {
		if t.known && t.family == s.family && t.width > s.width && t.width <= 2*s.width && !e.passMeasured(t) {
			return t
		}
	}
	return nil
}

// shrinkTo brackets the smallest size meeting the quality target below
// hi. passing says hi meets every requirement; otherwise hi is the
// smallest size reaching the quality but it breaks a cost limit.
func (e *engine) shrinkTo(hi *size, passing bool) (plan, error) {
	d := hi.depth
	lo := e.below(d, hi.width)
	p := plan{depth: d, hi: hi.width}
	if passing {
		p.chosen = hi
	}
	if lo != nil {
		p.lo = lo.width
	}
	a, b := e.minW, int(hi.width)-1
	if lo != nil {
		a = int(lo.width) + 1
	}
	if !passing && lo != nil && lo.costFail != "" {
		p.status, p.action = StatusInfeasible, actionStop
		p.reason = fmt.Sprintf("no model meets every requirement: %s is the smallest reaching %s, but %s; the next smaller, %s, misses %s (%s) and already breaks the limit too (%s)",
			hi.id(), e.targetText(), hi.costFail, lo.id(), e.targetText(), e.qualityText(lo), lo.costFail)
		return p, nil
	}
	narrow := lo != nil && math.Log2(float64(hi.width)/float64(lo.width)) <= e.s.tolerance
	if narrow || e.free(d, a, b) == 0 {
		p.status, p.action = StatusConverged, actionStop
		var why string
		switch {
		case lo == nil:
			why = fmt.Sprintf("it is the narrowest width of the range (%d)", e.minW)
		case narrow:
			why = fmt.Sprintf("%s below it does not (%s), and the bracket %d..%d is within the tolerance of %s", lo.id(), e.whyNot(lo), lo.width, hi.width, e.tolText())
		default:
			why = fmt.Sprintf("%s below it does not (%s), and no untried width lies between %d and %d", lo.id(), e.whyNot(lo), lo.width, hi.width)
		}
		if passing {
			p.reason = fmt.Sprintf("%s is the smallest model whose %s meets %s%s; %s", hi.id(), e.judgedText(hi), e.targetValue(), e.costText(hi), why)
			if up := e.stepAbove(hi); up != nil && e.passMeasured(up) && !(e.trusted && e.lower(hi) >= e.g.tq) && e.corroborating(hi) != up {
				p.reason += fmt.Sprintf("; %s, a tolerance step wider, passes too", up.id())
			}
			if a, b, ok := e.confirmation(hi); ok {
				p.status, p.action = StatusContinue, actionRefine
				p.targets = []target{{math.Log2(float64(hi.width) * math.Exp2(e.s.tolerance)), a, b}}
				p.reason += fmt.Sprintf("; before stopping, a model up to a tolerance step wider must pass too (a pass the next step up misses is luck, and the fit's %s", e.confirmWhy(hi))
			}
		} else {
			p.status = StatusInfeasible
			p.reason = fmt.Sprintf("no model meets every requirement: %s is the smallest reaching %s (%s), but %s; %s", hi.id(), e.targetText(), e.qualityText(hi), hi.costFail, why)
		}
		return p, nil
	}
	p.status, p.action = StatusContinue, actionShrink
	uL := math.Log2(float64(e.minW))
	closedL := lo == nil
	if lo != nil {
		uL = math.Log2(float64(lo.width))
	}
	uR := math.Log2(float64(hi.width))
	lf := float64(e.minW)
	if lo != nil {
		lf = float64(lo.width)
	}
	g, guided := e.crossing(d, lf, float64(hi.width))
	var guide *float64
	if guided {
		guide = &g
	}
	p.targets = targets(place(uL, uR, closedL, false, guide, e.s.perRound, e.s.tolerance), a, b)
	lead := fmt.Sprintf("%s meets %s", hi.id(), e.targetText())
	if passing {
		lead = fmt.Sprintf("%s meets every requirement, with %s", hi.id(), e.qualityText(hi))
	} else {
		lead += fmt.Sprintf(" but %s", hi.costFail)
	}
	where := fmt.Sprintf("down to the narrowest width of the range (%d)", e.minW)
	if lo != nil {
		where = fmt.Sprintf("between %s (%s) and it", lo.id(), e.whyNot(lo))
	}
	p.reason = fmt.Sprintf("%s; trying smaller widths %s, %s", lead, where, e.guideText(guided, g))
	return p, nil
}

// confirmation returns the widths [a, b] of depth hi.depth, above hi and
// at most a tolerance step wider, one of which must be trained and pass
// before the search may stop at hi; ok is false when none needs to be: the
// trusted fit's lower bound backs hi's pass, a width in that step is known
// already, none fits in the range, or the budget has no trial left for it.
// It is the answer's own check against luck, the one an exhaustive grid
// makes by showing the next width up.
func (e *engine) confirmation(hi *size) (a, b int, ok bool) {
	if e.g.target == nil || !hi.mlp() || (e.trusted && e.lower(hi) >= e.g.tq) {
		return 0, 0, false
	}
	if e.stepAbove(hi) != nil {
		return 0, 0, false
	}
	limit := float64(hi.width) * math.Exp2(e.s.tolerance)
	a = int(hi.width) + 1
	b = min(max(int(math.Floor(limit)), a), e.topAt(hi.depth))
	if b < a || e.free(hi.depth, a, b) == 0 {
		return 0, 0, false
	}
	if e.g.maxTrials != nil && len(e.trials) >= *e.g.maxTrials {
		return 0, 0, false
	}
	if kept, _ := e.affordWall(hi.depth, []int{a}); len(kept) == 0 {
		return 0, 0, false
	}
	return a, b, true
}

// stepAbove returns the narrowest known size of hi's depth wider than hi
// and at most a tolerance step wider; nil when there is none.
func (e *engine) stepAbove(hi *size) *size {
	limit := float64(hi.width) * math.Exp2(e.s.tolerance) * (1 + 1e-9)
	for _, t := range e.at(hi.depth) {
		if t.known && t.family == hi.family && t.width > hi.width && float64(t.width) <= limit {
			return t
		}
	}
	return nil
}

func (e *engine) confirmWhy(hi *size) string {
	if !e.trusted {
		return fmt.Sprintf("bound cannot vouch for it: %s)", e.untrustedWhy())
	}
	return fmt.Sprintf("%s %s bound there misses the target)", e.confText(), e.boundWord(false))
}

// grow handles the case where nothing reaches the quality target yet.
func (e *engine) grow() (plan, error) {
	var largest *size
	for _, s := range e.sizes {
		if s.mlp() && s.known {
			largest = s // sizes are sorted by params
		}
	}
	if largest == nil {
		return plan{status: StatusInfeasible, action: actionStop,
			reason: fmt.Sprintf("no MLP trial finished with a measured %s (%d trials: see their status and error columns), so there is nothing to fit or resize", e.g.metric, len(e.trials))}, nil
	}
	d := largest.depth
	top := e.topAt(d)
	p := plan{depth: d, lo: largest.width}
	if largest.costFail != "" {
		p.status, p.action = StatusInfeasible, actionStop
		p.reason = fmt.Sprintf("no model meets every requirement: the largest trained, %s, misses %s (%s) and already %s; a larger model would break that limit further", largest.id(), e.targetText(), e.qualityText(largest), largest.costFail)
		return p, nil
	}
	if int(largest.width) >= top || e.free(d, int(largest.width)+1, top) == 0 {
		p.status, p.action = StatusInfeasible, actionStop
		p.reason = fmt.Sprintf("no model in the declared range reaches %s: the largest, %s, has %s%s", e.targetText(), largest.id(), e.qualityText(largest), e.ceilingText(largest))
		return p, nil
	}
	p.status, p.action = StatusContinue, actionGrow
	a, b := int(largest.width)+1, top
	uL, uR := math.Log2(float64(largest.width)), math.Log2(float64(top))
	if e.trusted && e.g.target != nil && e.shapeOK && e.pl.Band(e.paramsAt(d, float64(top))).Hi < e.g.tq {
		// The fit already rules the target out; training the largest
		// allowed model is the one trial that can confirm it.
		p.targets = targets([]float64{uR}, a, b)
		p.reason = fmt.Sprintf("nothing reaches %s yet (the largest, %s, has %s) and the fit's %s upper bound at width %d is %s: training width %d to confirm",
			e.targetText(), largest.id(), e.qualityText(largest), e.confText(), top, e.fmtQ(e.g.toMetric(e.pl.Band(e.paramsAt(d, float64(top))).Hi)), top)
		return p, nil
	}
	g, guided := e.crossing(d, float64(largest.width), float64(top))
	if guided {
		p.targets = targets(place(uL, uR, false, true, &g, e.s.perRound, e.s.tolerance), a, b)
		p.reason = fmt.Sprintf("nothing reaches %s yet: the largest so far, %s, has %s; trying wider models up to width %d, %s", e.targetText(), largest.id(), e.qualityText(largest), top, e.guideText(guided, g))
		return p, nil
	}
	p.targets = targets(growSteps(uL, uR, e.s.perRound), a, b)
	p.reason = fmt.Sprintf("nothing reaches %s yet: the largest so far, %s, has %s; growing an octave at a time towards width %d (%s)", e.targetText(), largest.id(), e.qualityText(largest), top, e.unguidedGrowText())
	return p, nil
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

func (e *engine) unguidedGrowText() string {
	if !e.trusted {
		return fmt.Sprintf("the fit is not trusted yet: %s", e.untrustedWhy())
	}
	return "the fit's lower bound does not cross the target below the top"
}

// place returns target positions (log2 width) in the open interval
// (uL, uR), or with its ends when closedL / closedR say they may be tried,
// in order of priority. With a guide (the fit's predicted answer) the first
// two straddle it by 0.45 tolerance, so that if the fit is right the next
// bracket is within tolerance; the guide is first kept an eighth of the
// interval away from its open ends, so that a wrong fit still shrinks the
// bracket by an eighth or more. Without a guide the positions divide the
// interval evenly.
func place(uL, uR float64, closedL, closedR bool, guide *float64, k int, tol float64) []float64 {
	L := uR - uL
	if k < 1 || !(L > 0) {
		return nil
	}
	if guide == nil {
		var pts []float64
		switch {
		case closedR:
			for i := 1; i <= k; i++ {
				pts = append(pts, uL+L*float64(i)/float64(k))
			}
		case closedL:
			for i := 0; i < k; i++ {
				pts = append(pts, uL+L*float64(i)/float64(k))
			}
		default:
			for i := 1; i <= k; i++ {
				pts = append(pts, uL+L*float64(i)/float64(k+1))
			}
		}
		return pts
	}
	lo, hi := uL+L/8, uR-L/8
	if closedL {
		lo = uL
	}
	if closedR {
		hi = uR
	}
	g := math.Min(math.Max(*guide, lo), hi)
	// Each guided point keeps the same distance from the open ends as the
	// guide: a point hugging an end repeats what is known there.
	inside := func(u float64) float64 {
		minU, maxU := uL+L/8, uR-L/8
		if closedL {
			minU = uL
		}
		if closedR {
			maxU = uR
		}
		return math.Min(math.Max(u, minU), maxU)
	}
	var pts []float64
	if k == 1 {
		pts = []float64{g}
	} else {
		pts = []float64{inside(g + 0.45*tol), inside(g - 0.45*tol)}
	}
	for len(pts) < k {
		all := append([]float64{uL, uR}, pts...)
		slices.Sort(all)
		gi, gap := 0, -1.0
		for i := 1; i < len(all); i++ {
			if all[i]-all[i-1] > gap {
				gi, gap = i, all[i]-all[i-1]
			}
		}
		pts = append(pts, (all[gi-1]+all[gi])/2)
	}
	return pts
}

// materialize turns targets into distinct untried widths of depth d,
// keeping the order of priority: a target whose width is taken moves to
// the nearest free width of its range.
func (e *engine) materialize(d int32, ts []target) []int {
	used := map[int]bool{}
	for _, s := range e.at(d) {
		used[int(s.width)] = true
	}
	var out []int
	for _, t := range ts {
		if t.b < t.a {
			continue
		}
		w := min(max(int(math.Round(math.Exp2(t.u))), t.a), t.b)
		found := false
		// At most len(used) widths are taken, so the nearest free one is
		// at most that many steps away.
		for step := 0; step <= len(used)+1 && !found; step++ {
			for _, c := range []int{w - step, w + step} {
				if c >= t.a && c <= t.b && !used[c] {
					w, found = c, true
					break
				}
			}
		}
		if !found {
			continue
		}
		used[w] = true
		out = append(out, w)
	}
	return out
}

// finish applies the budget, builds the proposals and the decision.
func (e *engine) finish(p plan) (*decision, error) {
	d := &decision{
		round: e.round, status: p.status, action: p.action, strategy: e.s.strategy,
		chosen: p.chosen, metric: e.g.metric, target: e.g.target,
		trusted: e.trusted, confidence: e.s.confidence, tolerance: e.s.tolerance,
		trialsUsed: len(e.trials), lo: p.lo, hi: p.hi, depth: p.depth,
		costFit: e.costFit,
	}
	if e.pl != nil {
		d.fitPoints = e.pl.Points
		d.fitRMSE, d.fitR2 = e.pl.RMSE, e.pl.R2
		d.fitOut = e.summary()
	}
	d.measured, d.pred, d.predLo, d.predHi = math.NaN(), math.NaN(), math.NaN(), math.NaN()
	if c := p.chosen; c != nil {
		d.measured = e.g.toMetric(c.q)
		if e.pl != nil && c.mlp() {
			n := float64(c.params)
			d.pred = e.g.toMetric(e.pl.At(n))
			b := e.pl.Band(n)
			d.predLo, d.predHi = e.g.toMetric(b.Lo), e.g.toMetric(b.Hi)
			if e.g.metric == metricLoss {
				d.predLo, d.predHi = d.predHi, d.predLo
			}
		}
	}
	d.front = e.front()

	left := -1
	if e.g.maxTrials != nil {
		left = max(*e.g.maxTrials-len(e.trials), 0)
		d.trialsLeft = &left
	}
	reason := p.reason
	if p.status == StatusContinue {
		if !e.shapeOK {
			return nil, &sdk.InputError{Port: InputPort, Row: -1, Column: "params",
				Err: errors.New("cannot count the parameters of new widths: the candidates' params and flops are not those of a dense chain, and no requirements table gives n_features and n_classes")}
		}
		widths := e.materialize(p.depth, p.targets)
		wanted := len(widths)
		if left >= 0 {
			widths = widths[:min(wanted, left)]
		}
		widths, wallNote := e.affordWall(p.depth, widths)
		switch {
		case len(widths) == 0 && left == 0:
			d.status, d.action = StatusBudgetExhausted, actionStop
			reason = fmt.Sprintf("the trial budget is spent (%d trials used, max_trials = %d) before the search converged; %s", len(e.trials), *e.g.maxTrials, e.bestSoFar(p))
		case len(widths) == 0 && wallNote != "":
			d.status, d.action = StatusBudgetExhausted, actionStop
			reason = fmt.Sprintf("the wall-clock budget is spent (%s) before the search converged; %s", wallNote, e.bestSoFar(p))
		case len(widths) == 0:
			d.status, d.action = StatusConverged, actionStop
			reason = p.reason + "; but no untried width is left there, so the search stops"
		default:
			d.proposals = e.candidates(p.depth, widths)
			ws := make([]string, len(widths))
			for i, w := range d.proposals {
				ws[i] = fmt.Sprint(w.Width)
			}
			noun := "width"
			if len(ws) > 1 {
				noun = "widths"
			}
			reason = fmt.Sprintf("%s: proposing %s %s at depth %d", reason, noun, strings.Join(ws, ", "), p.depth)
			if left >= 0 && len(widths) < wanted && len(widths) == left {
				reason += fmt.Sprintf(" (the last %s of max_trials = %d)", plural(left, "trial", "trials"), *e.g.maxTrials)
			}
			if wallNote != "" {
				reason += " (" + wallNote + ")"
			}
		}
	}
	if len(e.notes) > 0 {
		reason += " [" + strings.Join(e.notes, "; ") + "]"
	}
	d.reason = reason
	return d, nil
}

// affordWall keeps the proposals whose predicted train time still fits the
// wall budget. The time spent is estimated as the sum of the trials' train
// seconds: the stage sees no clock of the run.
func (e *engine) affordWall(depth int32, widths []int) ([]int, string) {
	if e.g.maxWall == nil || len(widths) == 0 {
		return widths, ""
	}
	var spent float64
	for _, t := range e.trials {
		if t.trainSecs > 0 {
			spent += t.trainSecs
		}
	}
	var kept []int
	total := spent
	for _, w := range widths {
		pred := e.predictTrain(float64(e.exactParams(depth, w)))
		if total+pred > *e.g.maxWall {
			break
		}
		total += pred
		kept = append(kept, w)
	}
	note := ""
	if len(kept) < len(widths) {
		note = fmt.Sprintf("%.0f s of train time spent and %d more predicted to exceed max_wall = %.0f s", spent, len(widths)-len(kept), *e.g.maxWall)
	}
	return kept, note
}

func (e *engine) predictTrain(n float64) float64 {
	if f := e.costFit[CostTrainTime]; f != nil {
		return f.At(n)
	}
	return 0
}

// candidates builds the proposals, copying hyperparameters from the
// nearest evaluated size of the depth.
func (e *engine) candidates(d int32, widths []int) []tables.Candidate {
	slices.Sort(widths)
	ids := map[string]bool{}
	for _, t := range e.trials {
		ids[t.cand.ID] = true
	}
	var out []tables.Candidate
	for _, w := range widths {
		tpl := e.template(d, w)
		c := tpl.rep.cand
		c.Width = int32(w)
		c.Params, c.FLOPs = mlp.Count(mlp.LayerSizes(e.shape.in, int64(d), int64(w), e.shape.out))
		c.Round = e.round + 1
		c.ID = mlp.Name(c.Family, int(d), w)
		c.Name, c.Kind, c.Size, c.Knobs = c.ID, tables.KindMLP, float64(w), mlp.Knobs(int(d), w)
		if ids[c.ID] {
			c.ID = fmt.Sprintf("%s-r%d", c.ID, c.Round)
		}
		out = append(out, c)
	}
	return out
}

// template is the size of depth d nearest width w in log scale, preferring
// sizes with a finished trial.
func (e *engine) template(d int32, w int) *size {
	var best *size
	bestDist := math.Inf(1)
	for _, s := range e.at(d) {
		dist := math.Abs(math.Log(float64(s.width) / float64(w)))
		if !s.known {
			dist += 100 // only when nothing else exists at this depth
		}
		if dist < bestDist {
			best, bestDist = s, dist
		}
	}
	return best
}

// front lists the Pareto front over quality and every measured cost.
func (e *engine) front() []string {
	var pts [][]float64
	var ids []string
	for _, s := range e.sizes {
		if !s.known {
			continue
		}
		t := s.rep
		pts = append(pts, []float64{s.q, float64(s.params), t.latencyMs, t.modelBytes, t.trainSecs})
		ids = append(ids, s.id())
	}
	idx, err := fit.Pareto(pts, []bool{true, false, false, false, false})
	if err != nil {
		return nil
	}
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = ids[j]
	}
	return out
}

// summary reports the fitted parameters in the metric's units.
func (e *engine) summary() *fitSummary {
	f := e.pl
	s := &fitSummary{
		qinf: f.QInf, qinfLo: f.QInfCI.Lo, qinfHi: f.QInfCI.Hi,
		a: f.A, aLo: f.ACI.Lo, aHi: f.ACI.Hi,
		alpha: f.Alpha, alphaLo: f.AlphaCI.Lo, alphaHi: f.AlphaCI.Hi,
	}
	if e.g.metric == metricLoss {
		s.qinf, s.qinfLo, s.qinfHi = -f.QInf, -f.QInfCI.Hi, -f.QInfCI.Lo
	}
	return s
}

// Wording.

func (e *engine) fmtQ(v float64) string {
	if e.g.metric == metricAccuracy {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.4g", v)
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
	return fmt.Sprintf("%.4g", *e.g.target)
}

func (e *engine) targetText() string {
	if e.g.target == nil {
		return "the requirements"
	}
	if e.g.metric == metricAccuracy {
		return fmt.Sprintf("accuracy %.4g", *e.g.target)
	}
	return fmt.Sprintf("loss %.4g", *e.g.target)
}

// qualityText says how a size's quality was judged.
func (e *engine) qualityText(s *size) string {
	m := e.fmtQ(e.g.toMetric(s.q))
	if !e.trusted || !s.mlp() {
		return fmt.Sprintf("measured %s %s", e.g.metric, m)
	}
	if e.corroborating(s) != nil {
		return e.judgedText(s)
	}
	return fmt.Sprintf("%s, measured %s", e.judgedText(s), m)
}

// judgedText names the value a size is judged by: the fit's pessimistic
// bound when the fit is trusted, else the measurement.
func (e *engine) judgedText(s *size) string {
	if !e.trusted || !s.mlp() {
		return fmt.Sprintf("measured %s %s", e.g.metric, e.fmtQ(e.g.toMetric(s.q)))
	}
	b := e.pl.Band(float64(s.params))
	if c := e.corroborating(s); c != nil {
		return fmt.Sprintf("measured %s %s, corroborated by the wider %s (measured %s; the fit's %s %s bound, %s, is not met)",
			e.g.metric, e.fmtQ(e.g.toMetric(s.q)), c.id(), e.fmtQ(e.g.toMetric(c.q)), e.confText(), e.boundWord(false), e.fmtQ(e.g.toMetric(b.Lo)))
	}
	if e.g.metric == metricLoss {
		return fmt.Sprintf("%s upper bound on loss %s", e.confText(), e.fmtQ(-b.Lo))
	}
	return fmt.Sprintf("%s lower bound on accuracy %s", e.confText(), e.fmtQ(b.Lo))
}

// whyNot says why a size does not meet the requirements.
func (e *engine) whyNot(s *size) string {
	switch {
	case !s.known:
		return "no measurement"
	case !e.passQ(s):
		return e.qualityText(s)
	case s.costFail != "":
		return s.costFail
	}
	return e.qualityText(s)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf("%d %s", n, many)
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

func (e *engine) guideText(guided bool, g float64) string {
	if guided {
		return fmt.Sprintf("around width %.0f where the fit's %s lower bound crosses the target", math.Exp2(g), e.confText())
	}
	if !e.trusted {
		return fmt.Sprintf("by bisection in log width (the fit is not trusted yet: %s)", e.untrustedWhy())
	}
	return "by bisection in log width"
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
		return fmt.Sprintf("the curve explains %.0f%% of the variance, %.0f%% needed", 100*e.pl.R2, 100*minTrustedR2)
	default:
		return fmt.Sprintf("only %d of %d bootstrap refits succeeded", len(e.pl.Replicates), e.s.bootstrap)
	}
}

// ceilingText says what the fit knows about the top of the range.
func (e *engine) ceilingText(largest *size) string {
	if !e.trusted || e.g.target == nil {
		return fmt.Sprintf("; the fit cannot rule out a larger model (%s), but none may be tried: raise max_width, max_params or the model_choice width.max to search further", e.untrustedWhyShort())
	}
	b := e.pl.Band(float64(largest.params))
	ceiling := fmt.Sprintf("fitted ceiling %s [%s, %s]", e.fmtQ(e.g.toMetric(e.pl.QInf)), e.fmtQ(e.g.toMetric(e.pl.QInfCI.Lo)), e.fmtQ(e.g.toMetric(e.pl.QInfCI.Hi)))
	if e.g.metric == metricLoss {
		ceiling = fmt.Sprintf("fitted floor %s [%s, %s]", e.fmtQ(-e.pl.QInf), e.fmtQ(-e.pl.QInfCI.Hi), e.fmtQ(-e.pl.QInfCI.Lo))
	}
	if b.Hi < e.g.tq {
		return fmt.Sprintf(", and the fit's %s %s bound at that size is %s, short of the target (%s)", e.confText(), e.boundWord(true), e.fmtQ(e.g.toMetric(b.Hi)), ceiling)
	}
	return fmt.Sprintf("; the fit's %s %s bound there (%s; %s) does not rule the target out, but no larger model may be tried: raise max_width, max_params or the model_choice width.max to search further", e.confText(), e.boundWord(true), e.fmtQ(e.g.toMetric(b.Hi)), ceiling)
}

func (e *engine) untrustedWhyShort() string {
	if e.g.target == nil {
		return "no quality target"
	}
	return "not trusted: " + e.untrustedWhy()
}

// boundWord names the optimistic (upper on accuracy, lower on loss) or
// pessimistic bound in the metric's terms.
func (e *engine) boundWord(optimistic bool) string {
	if optimistic == (e.g.metric == metricAccuracy) {
		return "upper"
	}
	return "lower"
}

func (e *engine) bestSoFar(p plan) string {
	if p.chosen == nil {
		return "no model meets every requirement so far"
	}
	return fmt.Sprintf("the best so far is %s (%s)", p.chosen.id(), e.qualityText(p.chosen))
}

// isCatalog tells a search among known models (table and axis families)
// from one along an MLP's width.
func isCatalog(trials []trial, space []tables.Candidate) bool {
	for _, c := range space {
		if c.Kind != tables.KindMLP {
			return true
		}
	}
	for _, t := range trials {
		if t.cand.Kind != tables.KindMLP {
			return true
		}
	}
	return false
}
