package resize

import (
	"cmp"
	"encoding/json"
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

// computeOptimal is the compute_optimal strategy: for a compute budget C
// it finds the MLP size N and the training resource D that minimise the
// loss, by fitting
// L(N, D) = E + A·N^(−α) + B·D^(−β) to runs much cheaper than C and
// extrapolating (fit.FitScaling, fit.ScalingLaw.ComputeOptimal). The cost
// is C = 6·N·D FLOPs (budget_flops), or measured train seconds
// (budget_seconds: the median seconds per parameter and sample of the
// runs, times N·D).
//
// D is the data seen. With resource = "epochs" (the default) it is the
// dataset's rows times the candidate's epochs, and the search varies
// epochs: repeated passes over the same rows, which the law extrapolated
// in epochs follows only so far. With resource = "samples" it is the
// training rows a run trained on (the candidates' samples column, which
// the evaluation stage fills in its results) times its epochs, and the
// search varies the rows at the epochs the measured runs share: fresh
// data, up to the training split's rows (the most a run trained on).
//
// The search runs at one depth (the one with the most measurements) over
// widths and the resource:
//
//   - Design. Until the law can be fitted, it measures a small design: the
//     narrowest, middle and widest widths measured at three training
//     lengths (the ladder's epochs, a half and a quarter of it; doubled
//     and quadrupled when that is under one epoch), or with samples at
//     three amounts of data (every training row, a quarter and a
//     sixteenth of them).
//   - Extension. While the interval of N*(C) spans more than 2^(4·
//     tolerance) (a factor 2 at the default tolerance), it measures the
//     points, among IsoFLOP slices at C/4, C/16 and C/64 (each at a third
//     of, at and three times the slice's fitted N*), where the fitted
//     law's band is widest: where it is least certain. Those runs cost a
//     quarter of the budget at most each.
//   - Extrapolation. Once N*(C) is pinned, or no untried point is left, it
//     proposes the compute-optimal run itself: the width and epochs (or
//     rows) nearest N*(C) and D*(C). With samples, when D*(C) needs more
//     rows than the training split holds, it proposes the run at the
//     budget on every row instead, the widest the budget then buys.
//   - Check. When a run at the budget (within a factor √2 of it) is
//     measured, it converges on it, and the reason gives the loss the law
//     fitted on the cheaper runs predicted there, with the interval of one
//     run's measurement (fit.ScalingFit.RunBand), beside what was
//     measured.
//
// The decision's reason quotes the fitted exponents with their intervals,
// and the decision's scaling column holds the law, the frontier N*(C)
// with its band and the runs (tables.Scaling), for the report. With a
// quality target (max_loss or min_accuracy) the reason also gives the
// least compute that reaches it. The loss is the metric's: the
// cross-entropy loss, or with min_accuracy the gap below accuracy 1 (the
// law's saturating form).
type computeOptimal struct {
	flops, seconds float64
	// samples: the resource is the training rows (resource = "samples"),
	// not epochs.
	samples bool
}

// compute_optimal's resources.
const (
	resourceEpochs  = "epochs"
	resourceSamples = "samples"
)

var resources = []string{resourceEpochs, resourceSamples}

// leastSamplesShare bounds the smallest subsample the search proposes, as
// a share of the training rows: below it a run learns little that the
// law of the larger ones says.
const leastSamplesShare = 64

// axis maps the resource D to a candidate's training settings and back.
type axis struct {
	// name is what D counts, for the reason: "samples" (rows times
	// epochs) or "epochs" (when the rows are unknown).
	name string
	// rows is the rows of one epoch when the resource is epochs (1 when
	// unknown).
	rows float64
	// bySamples: the resource is the training rows, at epochs, up to full
	// (the most rows a run trained on: the training split's).
	bySamples bool
	epochs    int32
	full      int64
}

// d is the data candidate c sees.
func (a axis) d(c tables.Candidate) float64 {
	if a.bySamples {
		return float64(c.Samples) * float64(c.Epochs)
	}
	return a.rows * float64(c.Epochs)
}

// at is the training that sees data d: its epochs and samples (0 for the
// epochs resource); ok is false when it takes more rows than the training
// split holds or fewer than the least subsample.
func (a axis) at(d float64) (epochs int32, samples int64, ok bool) {
	if !a.bySamples {
		return int32(max(1, math.Round(d/a.rows))), 0, true
	}
	s := int64(math.Round(d / float64(a.epochs)))
	return a.epochs, s, s <= a.full && s >= max(1, a.full/leastSamplesShare)
}

// maxD is the most data one run can see: every training row at the
// epochs (+Inf for the epochs resource).
func (a axis) maxD() float64 {
	if a.bySamples {
		return float64(a.full) * float64(a.epochs)
	}
	return math.Inf(1)
}

// samplesAxis is the samples resource of runs: the epochs most of the
// runs that name their rows share (the larger on a tie), and the most
// rows a run trained on.
func samplesAxis(ts []trial) (axis, error) {
	a := axis{name: resourceSamples, bySamples: true}
	count := map[int32]int{}
	for _, t := range ts {
		if t.status != trialOK || t.cand.Samples <= 0 || t.cand.Epochs <= 0 {
			continue
		}
		a.full = max(a.full, t.cand.Samples)
		ep := t.cand.Epochs
		count[ep]++
		if a.epochs == 0 || count[ep] > count[a.epochs] || (count[ep] == count[a.epochs] && ep > a.epochs) {
			a.epochs = ep
		}
	}
	if a.full == 0 {
		return a, errors.New(`resource = "samples" counts the training rows each run trained on (the samples column), and no ok run names them: the evaluation stage writes them in its results; the exec and replay stages pass on a candidate's own`)
	}
	return a, nil
}

var _ decider = computeOptimal{}

// plan is never called: the engine asks a decider for the whole decision.
func (computeOptimal) plan(*engine) (plan, error) {
	return plan{}, errors.New("compute_optimal decides as a whole")
}

// Design constants of the search.
const (
	// sliceStep is the ratio between neighbouring IsoFLOP slices, and
	// slices how many there are below the budget.
	sliceStep = 4
	slices3   = 3
	// sliceSpread is how far either side of a slice's N* it measures.
	sliceSpread = 3
	// frontierPoints is how many budgets the frontier in the decision
	// samples.
	frontierPoints = 16
)

// scalingRun is one ok measurement at the search depth.
type scalingRun struct {
	t            trial
	n, d, c, val float64 // val: the metric's value (loss or accuracy)
}

func (co computeOptimal) budget() (float64, string) {
	if co.flops > 0 {
		return co.flops, "flops"
	}
	return co.seconds, "seconds"
}

func (co computeOptimal) decide(e *engine) (*decision, error) {
	depth := e.scalingDepth()
	if depth == 0 {
		return nil, &sdk.InputError{Port: InputPort, Row: -1, Column: "depth",
			Err: errors.New("compute_optimal searches an MLP's width and epochs, and no MLP (depth 1 or more) was measured")}
	}
	if !e.shapeOK {
		return nil, &sdk.InputError{Port: InputPort, Row: -1, Column: "params",
			Err: errors.New("cannot count the parameters of new widths: the candidates' params and flops are not those of a dense chain, and no requirements table gives n_features and n_classes")}
	}
	if e.g.target == nil {
		// Without an accuracy target the law is of the loss, which a
		// finite model and a finite resource each add to.
		e.g.metric = metricLoss
	}
	budget, costName := co.budget()
	ax := axis{name: "epochs", rows: 1}
	if co.samples {
		var err error
		if ax, err = samplesAxis(e.trials); err != nil {
			return nil, &sdk.InputError{Port: InputPort, Row: -1, Column: tables.ColSamples, Err: err}
		}
	} else if e.g.rows != nil && *e.g.rows > 0 {
		ax.name, ax.rows = "samples", float64(*e.g.rows)
	}
	resource := ax.name
	if costName == "flops" && resource != "samples" {
		return nil, &sdk.InputError{Port: RequirementsPort, Row: -1, Column: "rows",
			Err: errors.New("budget_flops counts 6·params·samples seen, and samples are the dataset's rows times epochs: connect the requirements table (it carries rows), or set budget_seconds")}
	}
	runs := e.scalingRuns(depth, ax)
	k := 6.0
	if costName == "seconds" {
		var per []float64
		for _, r := range runs {
			if r.t.trainSecs > 0 {
				per = append(per, r.t.trainSecs/(r.n*r.d))
			}
		}
		if len(per) == 0 {
			return nil, &sdk.InputError{Port: InputPort, Row: -1, Column: "train_seconds",
				Err: errors.New("budget_seconds needs measured train seconds, and no run has any")}
		}
		slices.Sort(per)
		k = fit.Quantile(per, 0.5)
	}
	for i := range runs {
		runs[i].c = k * runs[i].n * runs[i].d
	}
	d := &decision{
		round: e.round, strategy: e.s.strategy, metric: e.g.metric, target: e.g.target,
		confidence: e.s.confidence, tolerance: e.s.tolerance, trialsUsed: len(e.trials),
		depth: depth, costFit: e.costFit,
		measured: math.NaN(), pred: math.NaN(), predLo: math.NaN(), predHi: math.NaN(),
	}
	left := -1
	if e.g.maxTrials != nil {
		left = max(*e.g.maxTrials-len(e.trials), 0)
		d.trialsLeft = &left
	}
	budgetText := fmt.Sprintf("budget_%s = %.3g", costName, budget)
	atBudget := func(r scalingRun) bool { return r.c >= budget/math.Sqrt2 }
	var below, at []scalingRun
	for _, r := range runs {
		if atBudget(r) {
			at = append(at, r)
		} else {
			below = append(below, r)
		}
	}
	sf, err := e.fitScaling(below)
	if err != nil {
		// The design: too few runs for the law.
		props := e.scalingDesign(depth, runs, ax)
		if len(props) == 0 {
			d.status, d.action = StatusConverged, actionStop
			d.reason = fmt.Sprintf("%s: the law of %s against size and %s cannot be fitted (%v), and the design has no untried width and epochs left", budgetText, e.g.metric, resource, err)
			return d, nil
		}
		return co.propose(e, d, props, left, fmt.Sprintf("%s: %d runs below the budget cannot fit the law of %s against size and %s yet (%v); proposing the design", budgetText, len(below), e.g.metric, resource, err))
	}
	opt, err := sf.ComputeOptimal(budget, k)
	if err != nil {
		return nil, &sdk.InputError{Port: InputPort, Row: -1, Err: err}
	}
	sc := e.scalingRecord(sf, opt, runs, budget, k, costName, resource)
	law := e.lawText(sf, opt, depth, ax) + reachBeyond(below, opt) + cutShort(below, ax)
	if t := e.g.target; t != nil {
		law += "; " + e.reachText(sf, *t, k, costName)
	}
	if len(at) > 0 {
		// The check: the best run at the budget against the prediction of
		// the law fitted on the cheaper runs.
		best := at[0]
		for _, r := range at[1:] {
			if e.g.quality(r.t) > e.g.quality(best.t) {
				best = r
			}
		}
		band := sf.RunBand(best.n, best.d)
		pred := sf.Quality(best.n, best.d)
		sc.Held = &tables.HeldOut{ID: best.t.cand.ID, Predicted: tables.Estimate{Value: pred, Lo: band.Lo, Hi: band.Hi}, Measured: best.val, FitRuns: sf.Runs}
		d.chosen = &size{family: best.t.cand.Family, depth: best.t.cand.Depth, width: best.t.cand.Width, params: best.t.cand.Params, rep: best.t, known: true, q: e.g.quality(best.t)}
		d.measured, d.pred, d.predLo, d.predHi = best.val, pred, band.Lo, band.Hi
		d.status, d.action = StatusConverged, actionStop
		inside := "inside"
		// A rounding's width of slack: from exact runs the interval is a
		// point.
		slack := 1e-9 * math.Abs(pred)
		if !(fit.Interval{Lo: band.Lo - slack, Hi: band.Hi + slack}).Contains(best.val) {
			inside = "outside"
		}
		what := "the compute-optimal run"
		if opt.D > ax.maxD() && best.t.cand.Samples >= ax.full {
			what = fmt.Sprintf("the run at the budget on every training row (the compute-optimal one needs %.3g rows, more than the %d the split holds)", opt.D/float64(ax.epochs), ax.full)
		}
		d.reason = fmt.Sprintf("%s: %s is %s (width %d, %s, %s parameters); the law fitted on the %d cheaper runs predicted %s %s [%s, %s] there and it measured %s, %s the %s interval; %s",
			budgetText, best.t.cand.ID, what, best.t.cand.Width, ax.training(best.t.cand), fmtParams(best.t.cand.Params), sf.Runs, e.g.metric,
			e.fmtQ(pred), e.fmtQ(band.Lo), e.fmtQ(band.Hi), e.fmtQ(best.val), inside, e.confText(), law)
		return e.withScaling(d, sc)
	}
	pinned := opt.NCI.Hi <= opt.NCI.Lo*math.Pow(2, 4*e.s.tolerance)
	var props []tables.Candidate
	why := ""
	if !pinned {
		props = e.scalingExtend(sf, depth, runs, ax, budget, k)
		if len(props) > 0 {
			why = fmt.Sprintf("N*(C) is not pinned yet (its %s interval spans a factor %.3g, more than 2^(4·tolerance) = %.3g): proposing the IsoFLOP points where the law is least certain", e.confText(), opt.NCI.Hi/opt.NCI.Lo, math.Pow(2, 4*e.s.tolerance))
		}
	}
	if len(props) == 0 {
		n, dd, capped := opt.N, opt.D, ""
		if dd > ax.maxD() {
			// More rows than the split holds: the run at the budget on
			// every row, the widest the budget then buys.
			n, dd = budget/(k*ax.maxD()), ax.maxD()
			capped = fmt.Sprintf(" (D*(C) needs %.3g rows, more than the %d training rows: the run at the budget on every row instead)", opt.D/float64(ax.epochs), ax.full)
		}
		c := e.scalingCandidate(depth, n, dd, ax, true)
		if c == nil {
			d.status, d.action = StatusConverged, actionStop
			d.reason = fmt.Sprintf("%s: %s; the compute-optimal width and %s cannot be trained here (outside the width range, or measured already)%s", budgetText, law, ax.setting(), capped)
			return e.withScaling(d, sc)
		}
		props = []tables.Candidate{*c}
		why = "proposing the compute-optimal run, to measure the extrapolation" + capped
		if !pinned {
			why = "no untried IsoFLOP point is left; " + why
		}
	}
	sd, err := co.propose(e, d, props, left, fmt.Sprintf("%s: %s; %s", budgetText, law, why))
	if err != nil || sd.status == StatusBudgetExhausted {
		return sd, err
	}
	return e.withScaling(sd, sc)
}

// propose finishes a decision that proposes props, within the trials
// left (−1: no limit).
func (co computeOptimal) propose(e *engine, d *decision, props []tables.Candidate, left int, reason string) (*decision, error) {
	if left >= 0 && len(props) > left {
		props = props[:left]
	}
	if len(props) == 0 {
		d.status, d.action = StatusBudgetExhausted, actionStop
		d.reason = fmt.Sprintf("the trial budget is spent (%d trials used, max_trials = %d) before the search converged; %s", len(e.trials), *e.g.maxTrials, reason)
		return d, nil
	}
	d.status, d.action, d.proposals = StatusContinue, actionRefine, props
	ids := make([]string, len(props))
	for i, c := range props {
		ids[i] = c.ID
	}
	d.reason = fmt.Sprintf("%s: %s", reason, strings.Join(ids, ", "))
	return d, nil
}

// withScaling records the law in the decision.
func (e *engine) withScaling(d *decision, sc *tables.Scaling) (*decision, error) {
	b, err := json.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("encode the scaling law: %w", err)
	}
	d.scaling = string(b)
	return d, nil
}

// scalingDepth is the MLP depth with the most ok measurements (the
// shallowest on a tie); 0 when none is measured.
func (e *engine) scalingDepth() int32 {
	count := map[int32]int{}
	for _, t := range e.trials {
		if t.status == trialOK && t.cand.Family != tables.FamilyLinear && t.cand.Depth > 0 && t.cand.Width > 0 {
			count[t.cand.Depth]++
		}
	}
	var best int32
	for dep, n := range count {
		if best == 0 || n > count[best] || (n == count[best] && dep < best) {
			best = dep
		}
	}
	return best
}

// scalingRuns are the ok measurements at depth with a size, a resource
// and a value: each row its own run (a repeat trains from a seed of its
// own).
func (e *engine) scalingRuns(depth int32, ax axis) []scalingRun {
	var out []scalingRun
	for _, t := range e.trials {
		c := t.cand
		if t.status != trialOK || c.Family == tables.FamilyLinear || c.Depth != depth || c.Params <= 0 || c.Epochs <= 0 || (ax.bySamples && c.Samples <= 0) {
			continue
		}
		v := t.ownLoss
		if e.g.metric == metricAccuracy {
			v = t.ownAcc
		}
		if math.IsNaN(v) || math.IsInf(v, 0) || (e.g.metric == metricLoss && !(v > 0)) {
			continue
		}
		out = append(out, scalingRun{t: t, n: float64(c.Params), d: ax.d(c), val: v})
	}
	return out
}

// fitScaling fits the law to runs in the metric's units.
func (e *engine) fitScaling(runs []scalingRun) (*fit.ScalingFit, error) {
	n, d, y := make([]float64, len(runs)), make([]float64, len(runs)), make([]float64, len(runs))
	for i, r := range runs {
		n[i], d[i], y[i] = r.n, r.d, r.val
	}
	o := fit.ScalingOptions{Confidence: e.s.confidence, Bootstrap: e.s.bootstrap, Seed: e.s.seed}
	if e.g.metric == metricAccuracy {
		o.QMax = ptrTo(1.0)
	}
	return fit.FitScaling(n, d, y, o)
}

func ptrTo[T any](v T) *T { return &v }

// designEpochs are the three training lengths of the design: the most
// common epochs measured, a half and a quarter of it (doubled and
// quadrupled instead where that would be under one epoch).
func designEpochs(runs []scalingRun) []int32 {
	count := map[int32]int{}
	var base int32
	for _, r := range runs {
		ep := r.t.cand.Epochs
		count[ep]++
		if base == 0 || count[ep] > count[base] || (count[ep] == count[base] && ep > base) {
			base = ep
		}
	}
	if base == 0 {
		return nil
	}
	if base >= 4 {
		return []int32{base / 4, base / 2, base}
	}
	return []int32{base, 2 * base, 4 * base}
}

// designSamples are the three amounts of data of the samples design:
// every training row, a quarter and a sixteenth of them.
func designSamples(ax axis) []int64 {
	return slices.Compact([]int64{max(1, ax.full/16), max(1, ax.full/4), ax.full})
}

// scalingDesign proposes the untried points of the design: the narrowest,
// middle and widest widths measured at the design's epochs (or rows).
func (e *engine) scalingDesign(depth int32, runs []scalingRun, ax axis) []tables.Candidate {
	var widths []int32
	for _, r := range runs {
		widths = append(widths, r.t.cand.Width)
	}
	for _, t := range e.trials {
		if t.cand.Depth == depth && t.cand.Family != tables.FamilyLinear && t.cand.Width > 0 {
			widths = append(widths, t.cand.Width)
		}
	}
	slices.Sort(widths)
	widths = slices.Compact(widths)
	if len(widths) == 0 {
		return nil
	}
	lo, hi := widths[0], widths[len(widths)-1]
	mid := int32(math.Round(math.Sqrt(float64(lo) * float64(hi))))
	pick := slices.Compact([]int32{lo, mid, hi})
	var out []tables.Candidate
	if ax.bySamples {
		for _, s := range designSamples(ax) {
			for _, w := range pick {
				if c := e.candidateAt(depth, int(w), ax.epochs, s, out); c != nil {
					out = append(out, *c)
				}
			}
		}
		return out
	}
	for _, ep := range designEpochs(runs) {
		for _, w := range pick {
			if c := e.candidateAt(depth, int(w), ep, 0, out); c != nil {
				out = append(out, *c)
			}
		}
	}
	return out
}

// scalingExtend proposes up to proposals_per_round untried points of the
// IsoFLOP slices below the budget where the fitted law's band (of log
// loss) is widest.
func (e *engine) scalingExtend(sf *fit.ScalingFit, depth int32, runs []scalingRun, ax axis, budget, k float64) []tables.Candidate {
	type option struct {
		c     tables.Candidate
		width float64
	}
	var opts []option
	var taken []tables.Candidate
	for j := 1; j <= slices3; j++ {
		c := budget / math.Pow(sliceStep, float64(j))
		o, ok := sf.ScalingLaw.ComputeOptimal(c, k)
		if !ok {
			continue
		}
		for _, f := range []float64{1 / float64(sliceSpread), 1, sliceSpread} {
			n := o.N * f
			cand := e.scalingCandidate(depth, n, c/(k*n), ax, false)
			if cand == nil || slices.ContainsFunc(taken, func(t tables.Candidate) bool { return t.ID == cand.ID }) || e.nearRun(runs, cand, ax) {
				continue
			}
			taken = append(taken, *cand)
			nn, dd := float64(cand.Params), ax.d(*cand)
			iv := sf.Percentiles(func(l fit.ScalingLaw) float64 { return math.Log(l.At(nn, dd)) })
			opts = append(opts, option{*cand, iv.Hi - iv.Lo})
		}
	}
	slices.SortStableFunc(opts, func(a, b option) int { return cmp.Compare(b.width, a.width) })
	var out []tables.Candidate
	for _, o := range opts[:min(len(opts), e.s.perRound)] {
		out = append(out, o.c)
	}
	return out
}

// nearRun reports whether a run lies within a tolerance step (2^tolerance)
// of a candidate in both size and resource: measuring there would add
// little, and the slices, which move a little with every refit, would
// otherwise never run out of points.
func (e *engine) nearRun(runs []scalingRun, c *tables.Candidate, ax axis) bool {
	n, d := float64(c.Params), ax.d(*c)
	return slices.ContainsFunc(runs, func(r scalingRun) bool {
		return math.Abs(math.Log2(r.n/n)) < e.s.tolerance && math.Abs(math.Log2(r.d/d)) < e.s.tolerance
	})
}

// scalingCandidate is the untried candidate at depth nearest size n and
// resource d: the width whose params are nearest n (within the width
// range, or, for the run at the budget, up to max_width or the largest
// width), the epochs (or rows) that see nearest d. nil when that point
// is measured already or outside the range.
func (e *engine) scalingCandidate(depth int32, n, d float64, ax axis, atBudget bool) *tables.Candidate {
	w := int(math.Round(e.widthFor(depth, n)))
	top := e.maxW
	if atBudget {
		top = maxWidth
		if e.s.maxWidth > 0 {
			top = e.s.maxWidth
		}
	}
	if w < e.minW || w > top {
		return nil
	}
	ep, samples, ok := ax.at(d)
	if !ok {
		return nil
	}
	return e.candidateAt(depth, w, ep, samples, nil)
}

// candidateAt builds the candidate of depth, width, epochs and samples
// (0: the epochs resource, where the rows are not the search's) with the
// hyperparameters of the nearest measured size of the depth; nil when it
// is measured already or among taken.
func (e *engine) candidateAt(depth int32, w int, epochs int32, samples int64, taken []tables.Candidate) *tables.Candidate {
	same := func(c tables.Candidate) bool {
		return int(c.Width) == w && c.Epochs == epochs && (samples == 0 || c.Samples == samples)
	}
	for _, t := range e.trials {
		if t.cand.Depth == depth && t.cand.Family != tables.FamilyLinear && same(t.cand) {
			return nil
		}
	}
	if slices.ContainsFunc(taken, same) {
		return nil
	}
	tpl := e.template(depth, w)
	if tpl == nil {
		return nil
	}
	c := tpl.rep.cand
	c.Width, c.Epochs, c.Samples, c.Repeat = int32(w), epochs, samples, 0
	c.Params, c.FLOPs = mlp.Count(mlp.LayerSizes(e.shape.in, int64(depth), int64(w), e.shape.out))
	c.Round = e.round + 1
	c.ID = fmt.Sprintf("%s-e%d", mlp.Name(c.Family, int(depth), w), epochs)
	if samples > 0 {
		c.ID += fmt.Sprintf("-s%d", samples)
	}
	c.Name, c.Kind, c.Size, c.Knobs = c.ID, tables.KindMLP, float64(w), mlp.Knobs(int(depth), w)
	return &c
}

// lawText quotes the fitted exponents and the optimum with intervals.
func (e *engine) lawText(sf *fit.ScalingFit, opt *fit.OptimumFit, depth int32, ax axis) string {
	ex := sf.Percentiles(func(l fit.ScalingLaw) float64 { return l.Beta / (l.Alpha + l.Beta) })
	w := e.widthFor(depth, opt.N)
	seen := fmt.Sprintf("%.3g epochs", opt.D/ax.rows)
	if ax.bySamples {
		seen = fmt.Sprintf("%.3g rows at %d epochs", opt.D/float64(ax.epochs), ax.epochs)
	}
	return fmt.Sprintf("fitted on %d runs, alpha = %.3g [%.3g, %.3g] (size), beta = %.3g [%.3g, %.3g] (%s), so N* grows as C^%.3g [%.3g, %.3g]; the compute-optimal size is N* = %s [%s, %s] parameters (width %.0f at depth %d) trained on D* = %.3g [%.3g, %.3g] %s (%s), predicted %s %s [%s, %s]",
		sf.Runs, sf.Alpha, sf.AlphaCI.Lo, sf.AlphaCI.Hi, sf.Beta, sf.BetaCI.Lo, sf.BetaCI.Hi, ax.name,
		sf.Beta/(sf.Alpha+sf.Beta), ex.Lo, ex.Hi,
		fmtParams(int64(opt.N)), fmtParams(int64(opt.NCI.Lo)), fmtParams(int64(math.Min(opt.NCI.Hi, 1e18))), w, depth,
		opt.D, opt.DCI.Lo, opt.DCI.Hi, ax.name, seen,
		e.g.metric, e.fmtQ(opt.Loss), e.fmtQ(math.Min(opt.LossCI.Lo, opt.LossCI.Hi)), e.fmtQ(math.Max(opt.LossCI.Lo, opt.LossCI.Hi)))
}

// reachBeyond says how far the optimum lies beyond the runs fitted: the
// law is measured only over their sizes and resources, and beyond them
// it is an extrapolation (in epochs, one that repeated data may not
// follow).
func reachBeyond(fitted []scalingRun, opt *fit.OptimumFit) string {
	var n, d float64
	for _, r := range fitted {
		n, d = max(n, r.n), max(d, r.d)
	}
	if !(n > 0) || !(d > 0) || (opt.N <= n && opt.D <= d) {
		return ""
	}
	return fmt.Sprintf(" (an extrapolation: N* is %.3g times the largest size fitted, D* %.3g times the largest resource)", opt.N/n, opt.D/d)
}

// training says how c was trained, for the reason.
func (a axis) training(c tables.Candidate) string {
	if a.bySamples {
		return fmt.Sprintf("%d rows, %d epochs", c.Samples, c.Epochs)
	}
	return fmt.Sprintf("%d epochs", c.Epochs)
}

// setting names what the search varies beside width.
func (a axis) setting() string {
	if a.bySamples {
		return "rows"
	}
	return "epochs"
}

// cutShort says how many of the runs fitted early stopping ended before
// their epochs, with the samples resource, whose D counts the epochs a
// run was given: the law then counts data those runs did not see (the
// evaluation stage's patience = 0 trains every epoch and still keeps the
// best weights).
func cutShort(fitted []scalingRun, ax axis) string {
	if !ax.bySamples {
		return ""
	}
	n := 0
	for _, r := range fitted {
		if r.t.epochsRun > 0 && r.t.epochsRun < r.t.cand.Epochs {
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of the %d runs fitted stopped before their epochs, so D overstates the data they saw: set the evaluation stage's patience = 0)", n, len(fitted))
}

// reachText gives the least compute reaching the target.
func (e *engine) reachText(sf *fit.ScalingFit, target, k float64, costName string) string {
	r, err := sf.ComputeFor(target, k)
	if err != nil {
		return fmt.Sprintf("%s = %s is beyond the law's reach: %v", e.g.metric, e.fmtQ(target), err)
	}
	hi := "unbounded"
	if !math.IsInf(r.CCI.Hi, 1) {
		hi = fmt.Sprintf("%.3g", r.CCI.Hi)
	}
	return fmt.Sprintf("the least compute reaching %s = %s is %.3g %s [%.3g, %s] (N = %s parameters)", e.g.metric, e.fmtQ(target), r.C, costName, r.CCI.Lo, hi, fmtParams(int64(r.N)))
}

// scalingRecord is the decision's scaling column.
func (e *engine) scalingRecord(sf *fit.ScalingFit, opt *fit.OptimumFit, runs []scalingRun, budget, k float64, costName, resource string) *tables.Scaling {
	est := func(v float64, iv fit.Interval) tables.Estimate {
		return tables.Estimate{Value: v, Lo: iv.Lo, Hi: iv.Hi}
	}
	ex := sf.Percentiles(func(l fit.ScalingLaw) float64 { return l.Beta / (l.Alpha + l.Beta) })
	sc := &tables.Scaling{
		Metric: e.g.metric, Resource: resource, Cost: costName, K: k,
		E: est(sf.E, sf.ECI), A: est(sf.A, sf.ACI), Alpha: est(sf.Alpha, sf.AlphaCI), B: est(sf.B, sf.BCI), Beta: est(sf.Beta, sf.BetaCI),
		Exponent: est(sf.Beta/(sf.Alpha+sf.Beta), ex),
		Budget:   budget, NOpt: est(opt.N, opt.NCI), DOpt: est(opt.D, opt.DCI),
		Predicted: tables.Estimate{Value: opt.Loss, Lo: math.Min(opt.LossCI.Lo, opt.LossCI.Hi), Hi: math.Max(opt.LossCI.Lo, opt.LossCI.Hi)},
	}
	cmin := budget
	for _, r := range runs {
		cmin = math.Min(cmin, r.c)
		sc.Runs = append(sc.Runs, tables.ScalingRun{ID: r.t.cand.ID, N: r.n, D: r.d, C: r.c, Value: r.val})
	}
	for i := range frontierPoints {
		c := cmin * math.Pow(budget/cmin, float64(i)/float64(frontierPoints-1))
		if o, err := sf.ComputeOptimal(c, k); err == nil && allFinite(o.N, o.NCI.Lo, o.NCI.Hi) {
			sc.Frontier = append(sc.Frontier, tables.FrontierPoint{C: c, N: o.N, Lo: o.NCI.Lo, Hi: o.NCI.Hi})
		}
	}
	// JSON has no infinities: an interval open above is written as its
	// estimate's own bound.
	for _, p := range []*tables.Estimate{&sc.E, &sc.A, &sc.Alpha, &sc.B, &sc.Beta, &sc.Exponent, &sc.NOpt, &sc.DOpt, &sc.Predicted} {
		if !allFinite(p.Lo) {
			p.Lo = p.Value
		}
		if !allFinite(p.Hi) {
			p.Hi = p.Value
		}
	}
	return sc
}

func allFinite(v ...float64) bool {
	for _, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
