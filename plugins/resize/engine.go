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
// shows, or noise on a plateau) and the bootstrap band mostly measures the
// misfit.
const minTrustedR2 = 0.95

// engine holds one decision's working state: the measurements, the fits
// and the family's widths. Strategies read it and plan; finish turns the
// plan into the decision.
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
	// listed holds, per depth, the MLP models the space lists, by width:
	// when a depth has any, they are the only widths the search proposes
	// there. A depth without is every integer width in range.
	listed map[int32][]tables.Candidate

	pl      *fit.PowerLawFit
	plErr   error
	trusted bool
	costFit map[string]*fit.LogLog
	notes   []string
}

// decide is the whole decision, a pure function of the config, the
// results, the requirements and the space.
func decide(s settings, trials []trial, req *tables.Requirements, space ...tables.Candidate) (*decision, error) {
	if len(trials) == 0 {
		return nil, &sdk.InputError{Port: InputPort, Row: -1, Err: errNoResults}
	}
	kind, ok := kindOf(s.strategy)
	if !ok {
		return nil, sdk.AttrError("strategy", "Unknown strategy", fmt.Sprintf("strategy must be one of %s; found %q.", strings.Join(strategies, ", "), s.strategy))
	}
	g := goalsFrom(s, req, trials)
	if kind.needsTarget && g.target == nil {
		return nil, sdk.AttrError("strategy", "No quality target",
			fmt.Sprintf("strategy %q looks for the smallest model meeting a quality target, but neither the requirements nor this stage set min_accuracy or max_loss. Set one, or choose strategy %s.", s.strategy, orList(namesWhere(func(k strategyKind) bool { return !k.needsTarget }))))
	}
	e := &engine{s: s, g: g, trials: trials, sizes: aggregate(trials, g)}
	for _, t := range trials {
		e.round = max(e.round, t.cand.Round)
	}
	if isCatalog(trials, space) {
		if !kind.catalog {
			return nil, sdk.AttrError("strategy", "Strategy needs the mlp family",
				fmt.Sprintf("strategy %q fits a curve along an MLP's width; table and axis families are searched with %s. Set strategy = %q.", s.strategy, orList(namesWhere(func(k strategyKind) bool { return k.catalog })), SmallestMeeting))
		}
		d, err := e.decideCatalog(space)
		if note := e.prunedNote(d, err); note != "" {
			d.reason += " [" + note + "]"
		}
		return e.withRepeats(d, err)
	}
	e.setListed(space)
	e.setShape()
	e.setRange()
	e.fitCurves()
	st := kind.build(s)
	if d, ok := st.(decider); ok {
		return d.decide(e)
	}
	p, err := st.plan(e)
	if err != nil {
		return nil, err
	}
	return e.withRepeats(e.finish(p))
}

// setListed keeps the space's MLP models, by depth and width.
func (e *engine) setListed(space []tables.Candidate) {
	for _, c := range space {
		if c.Kind != tables.KindMLP || c.Family == tables.FamilyLinear || c.Depth < 1 || c.Width < 1 {
			continue
		}
		if e.listed == nil {
			e.listed = map[int32][]tables.Candidate{}
		}
		e.listed[c.Depth] = append(e.listed[c.Depth], c)
	}
	for d, cs := range e.listed {
		slices.SortStableFunc(cs, func(a, b tables.Candidate) int { return cmp.Compare(a.Width, b.Width) })
		e.listed[d] = slices.CompactFunc(cs, func(a, b tables.Candidate) bool { return a.Width == b.Width })
	}
}

// setRange sets the widths the search may propose: the config's, else the
// extremes evaluated or listed (model_choice's ladder always includes both
// ends of its declared range).
func (e *engine) setRange() {
	widen := func(w int) {
		if e.minW == 0 || w < e.minW {
			e.minW = w
		}
		e.maxW = max(e.maxW, w)
	}
	for _, s := range e.sizes {
		if s.mlp() {
			widen(int(s.width))
		}
	}
	for _, cs := range e.listed {
		for _, c := range cs {
			widen(int(c.Width))
		}
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
// top, lowered to respect max_params; with listed models, the widest
// listed one within both (minW − 1 when none is).
func (e *engine) topAt(d int32) int {
	if ls := e.listed[d]; ls != nil {
		for i := len(ls) - 1; i >= 0; i-- {
			c := ls[i]
			if int(c.Width) <= e.maxW && int(c.Width) >= e.minW && (e.g.maxParams == nil || c.Params <= *e.g.maxParams) {
				return int(c.Width)
			}
		}
		return e.minW - 1
	}
	top := e.maxW
	if e.g.maxParams == nil || !e.shapeOK || e.exactParams(d, top) <= *e.g.maxParams {
		return top
	}
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
	return lo
}

// paramsOf is the parameter count of the model of depth d and width w:
// the listed model's, else counted; false when it cannot be known.
func (e *engine) paramsOf(d int32, w int) (int64, bool) {
	if ls := e.listed[d]; ls != nil {
		i := slices.IndexFunc(ls, func(c tables.Candidate) bool { return int(c.Width) == w })
		if i < 0 || ls[i].Params < 1 {
			return 0, false
		}
		return ls[i].Params, true
	}
	if !e.shapeOK {
		return 0, false
	}
	return e.exactParams(d, w), true
}

// fitCurves fits quality against params over the MLP sizes with a known
// quality, and each cost likewise.
func (e *engine) fitCurves() {
	var n, q, lat, bytes, train []float64
	var from []string
	for _, s := range e.sizes {
		if !s.mlp() || !s.known {
			continue
		}
		from = append(from, s.rep.measuredFrom)
		n = append(n, float64(s.params))
		q = append(q, s.q)
		lat = append(lat, s.rep.latencyMs)
		bytes = append(bytes, s.rep.modelBytes)
		train = append(train, s.rep.trainSecs)
	}
	opts := fit.Options{Confidence: e.s.confidence, Bootstrap: e.s.bootstrap, Seed: e.s.seed, Cluster: clusterIDs(from)}
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

// reaches and meets judge a size by its own measurements (goals).
func (e *engine) reaches(s *size) bool { return e.g.reaches(s) }
func (e *engine) meets(s *size) bool   { return e.g.meets(s) }

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

// knownIn returns the narrowest known size of depth d with a width in
// [a, b]; nil when there is none.
func (e *engine) knownIn(d int32, a, b int) *size {
	for _, s := range e.at(d) {
		if s.known && int(s.width) >= a && int(s.width) <= b {
			return s
		}
	}
	return nil
}

// free counts the untried widths of depth d in [a, b] the search may
// propose: every integer width there, or the listed ones.
func (e *engine) free(d int32, a, b int) int {
	a, b = max(a, e.minW), min(b, e.maxW)
	if b < a {
		return 0
	}
	used := map[int]bool{}
	for _, s := range e.at(d) {
		used[int(s.width)] = !e.retryable(s)
	}
	if ls := e.listed[d]; ls != nil {
		n := 0
		for _, c := range ls {
			if w := int(c.Width); w >= a && w <= b && !used[w] {
				n++
			}
		}
		return n
	}
	n := b - a + 1
	for w, u := range used {
		if u && w >= a && w <= b {
			n--
		}
	}
	return n
}

// stepDown is the width one step below w at depth d: the next listed
// width, or a tolerance step down (at least one width); 0 when none is in
// range.
func (e *engine) stepDown(d int32, w int) int {
	if ls := e.listed[d]; ls != nil {
		for i := len(ls) - 1; i >= 0; i-- {
			if x := int(ls[i].Width); x < w {
				if x < e.minW {
					return 0
				}
				return x
			}
		}
		return 0
	}
	x := min(w-1, int(math.Round(float64(w)*math.Exp2(-e.s.tolerance))))
	if x < e.minW {
		return 0
	}
	return x
}

// stepUp is the width one step above w at depth d: the next listed width,
// or a tolerance step up (at least one width, at most the top); 0 when w
// is at the top.
func (e *engine) stepUp(d int32, w int) int {
	top := e.topAt(d)
	if w >= top {
		return 0
	}
	if ls := e.listed[d]; ls != nil {
		for _, c := range ls {
			if x := int(c.Width); x > w {
				return min(x, top)
			}
		}
		return 0
	}
	return min(max(w+1, int(math.Round(float64(w)*math.Exp2(e.s.tolerance)))), top)
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

// crossing returns log2 of the width at depth d where the fitted curve
// reaches the target, when the fit is trusted and that width lies in
// [a, b]. It guides where to measure; it decides nothing.
func (e *engine) crossing(d int32, a, b float64) (float64, bool) {
	if !e.trusted || e.g.target == nil || !e.shapeOK {
		return 0, false
	}
	n, ok := e.pl.SizeFor(e.g.tq)
	if !ok {
		return 0, false
	}
	w := e.widthFor(d, n)
	if !(w >= a && w <= b) {
		return 0, false
	}
	return math.Log2(w), true
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
	inside := func(u float64) float64 { return math.Min(math.Max(u, lo), hi) }
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
// the nearest free width of its range (the nearest listed one, in log
// width, when the depth's models are listed). A pruned model's width is
// taken only by a target with no untried width in its range: the search
// needs it there (pruned.go).
func (e *engine) materialize(d int32, ts []target) []int {
	used := map[int]bool{}
	var retry []int
	for _, s := range e.at(d) {
		used[int(s.width)] = true
		if e.retryable(s) {
			retry = append(retry, int(s.width))
		}
	}
	ls := e.listed[d]
	var out []int
	picked := map[int]bool{}
	for _, t := range ts {
		a, b := max(t.a, e.minW), min(t.b, e.maxW)
		if b < a {
			continue
		}
		w, found := e.nearestUntried(ls, used, t, a, b)
		if !found {
			w, found = nearestOf(retry, picked, t.u, a, b)
		}
		if !found {
			continue
		}
		used[w], picked[w] = true, true
		out = append(out, w)
	}
	return out
}

// nearestUntried is the width of [a, b] nearest the target that no trial
// has tried: every integer width, or the listed ones.
func (e *engine) nearestUntried(ls []tables.Candidate, used map[int]bool, t target, a, b int) (int, bool) {
	w, found := 0, false
	if ls != nil {
		best := math.Inf(1)
		for _, c := range ls {
			x := int(c.Width)
			if x < a || x > b || used[x] {
				continue
			}
			if dist := math.Abs(math.Log2(float64(x)) - t.u); dist < best-1e-12 {
				w, best, found = x, dist, true
			}
		}
	} else {
		w = min(max(int(math.Round(math.Exp2(t.u))), a), b)
		// At most len(used) widths are taken, so the nearest free one
		// is at most that many steps away.
		for step := 0; step <= len(used)+1 && !found; step++ {
			for _, c := range []int{w - step, w + step} {
				if c >= a && c <= b && !used[c] {
					w, found = c, true
					break
				}
			}
		}
	}
	return w, found
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
		if !e.shapeOK && e.listed[p.depth] == nil {
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
	if note := e.prunedNote(d, nil); note != "" {
		e.notes = append(e.notes, note)
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
		var pred float64
		if n, ok := e.paramsOf(depth, w); ok {
			pred = e.predictTrain(float64(n))
		}
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

// candidates builds the proposals: the listed models themselves, or new
// widths with the hyperparameters of the nearest evaluated size of the
// depth.
func (e *engine) candidates(d int32, widths []int) []tables.Candidate {
	slices.Sort(widths)
	ids := map[string]bool{}
	for _, t := range e.trials {
		ids[t.cand.ID] = true
	}
	var out []tables.Candidate
	for _, w := range widths {
		var c tables.Candidate
		if ls := e.listed[d]; ls != nil {
			c = ls[slices.IndexFunc(ls, func(c tables.Candidate) bool { return int(c.Width) == w })]
			c.Round = e.round + 1
			if c.ID == "" {
				c.ID = c.Name
			}
		} else {
			tpl := e.template(d, w)
			c = tpl.rep.cand
			c.Width, c.Repeat = int32(w), 0 // a new model's first measurement
			c.Params, c.FLOPs = mlp.Count(mlp.LayerSizes(e.shape.in, int64(d), int64(w), e.shape.out))
			c.Round = e.round + 1
			c.ID = mlp.Name(c.Family, int(d), w)
			c.Name, c.Kind, c.Size, c.Knobs = c.ID, tables.KindMLP, float64(w), mlp.Knobs(int(d), w)
		}
		if ids[c.ID] {
			c.ID = fmt.Sprintf("%s-r%d", c.ID, c.Round)
		}
		ids[c.ID] = true
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
