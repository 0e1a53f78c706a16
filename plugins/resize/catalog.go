package resize

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/fit"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The catalog search: families whose models are all known up front (table
// rows, axis grid points) are searched among those models only, so every
// proposal and every answer is a real, named model. A family's models are
// ordered by parameters (then size); a model meets the requirements when
// its measurement does: in a table there is no luck, the measurement is
// what the model does.
//
// Within a family the search keeps a bracket: the smallest model measured
// to meet the target (the pass) and the largest model below it measured to
// miss it (the failure). Untried models between them are bisected in log
// size, one per family per round; once none is left, the corroborate
// models below the failure are measured too (a dip check: quality is not
// monotone in size), unless the family's trusted fit rules them out. Only
// models smaller than the best pass over all families matter, so a family
// whose models below that size are all measured, or whose largest model
// below it and the corroborate below that miss the target, is done. The
// answer is the smallest pass over all families, once no family has an
// untried model to check.
//
// While nothing passes anywhere the verdict would be infeasible, and a
// failure proves nothing of the models around it: every model of every
// family is then measured, except those the family's trusted fit rules
// out (its bound on one measurement misses the target), the model
// farthest from every measurement first.

// corroborate is how many models just below a bracket's failure must fail
// too before the failure closes its bracket: measured quality is not
// monotone in size. The catalog search counts a family's models; the MLP
// search (bracket.go) counts steps of its resolution.
const corroborate = 3

// catalogFamily is one family's ordered models and what is known of them.
type catalogFamily struct {
	name   string
	models []tables.Candidate
}

// familyAnswer is one family's smallest model measured to meet the
// requirements, as the decision's family_answers reports it.
type familyAnswer struct {
	Name     string  `json:"name,omitempty"`
	Params   int64   `json:"params,omitempty"`
	Measured float64 `json:"measured,omitempty"`
	Settled  bool    `json:"settled"`
}

// decideCatalog decides a round of a catalog search.
func (e *engine) decideCatalog(space []tables.Candidate) (*decision, error) {
	byName := map[string]*size{}
	for _, s := range e.sizes {
		byName[s.rep.cand.Family+"\x00"+s.rep.cand.Name] = s
	}
	fams := catalogFamilies(space, e.trials)
	tried := func(c tables.Candidate) *size { return byName[c.Family+"\x00"+c.Name] }

	// The best pass over all families.
	var best *size
	for _, s := range e.sizes {
		if e.meetsMeasured(s) && (best == nil || s.params < best.params || (s.params == best.params && s.rep.cand.Name < best.rep.cand.Name)) {
			best = s
		}
	}
	type open struct {
		fam  *catalogFamily
		next tables.Candidate
		pass *size // the family's smallest pass in range, if any
	}
	var opens []open
	var done []string
	ruledOut := map[string]int{}
	answers := map[string]familyAnswer{}
	for _, f := range fams {
		// The models that could beat the best pass.
		inRange := f.models
		if best != nil && !e.s.perFamily {
			inRange = slices.DeleteFunc(slices.Clone(f.models), func(c tables.Candidate) bool {
				return sizeKey(c) >= float64(best.params) && tried(c) != best
			})
		}
		lo, hi := -1, len(inRange) // the failure below and the pass
		for i, c := range inRange {
			if s := tried(c); s != nil && s.known && e.meetsMeasured(s) {
				hi = i
				break
			}
		}
		for i := hi - 1; i >= 0; i-- {
			if s := tried(inRange[i]); s != nil && s.known && !e.meetsMeasured(s) {
				lo = i
				break
			}
		}
		// A failure closes the bracket only when the models just below it
		// fail too: measured quality is not monotone in size, and a single
		// failure often sits just above a smaller model that passes.
		from := lo + 1
		if lo >= 0 {
			from = max(lo-corroborate, 0)
			// Where the family's trusted fit rules out a model below the
			// failure, it rules out every smaller one (its bound falls
			// with size): the check stops there.
			if from < lo {
				pl, stray := e.familyFit(f, tried, corroborate)
				for i := lo - 1; i >= from; i-- {
					if e.fitRules(pl, stray, inRange[i]) {
						from = i + 1
						break
					}
				}
			}
		}
		var untried []int
		for i := from; i < hi; i++ {
			if !settled(tried(inRange[i])) {
				untried = append(untried, i)
			}
		}
		// While nothing passes anywhere, a failure proves nothing about
		// the other models of its family: the verdict would be
		// infeasible, which needs every model that could answer measured,
		// or ruled out by the family's trusted fit.
		evidence := best == nil && hi == len(inRange)
		var ruled int
		if evidence {
			untried, ruled = e.catalogUnsettled(f, inRange, tried)
		}
		ruledOut[f.name] = ruled
		ans := familyAnswer{Settled: len(untried) == 0}
		if hi < len(inRange) {
			p := tried(inRange[hi])
			ans.Name, ans.Params, ans.Measured = p.rep.cand.Name, p.params, e.g.toMetric(p.q)
		}
		answers[f.name] = ans
		if len(untried) == 0 {
			done = append(done, f.name)
			continue
		}
		var pass *size
		if hi < len(inRange) {
			pass = tried(inRange[hi])
		}
		var next int
		switch {
		case evidence && (lo >= 0 || hi < len(inRange)):
			next = farthest(inRange, untried, tried)
		case hi == len(inRange) && lo < 0:
			// Nothing measured in range: try its largest model first, which
			// tells at once whether the family can meet the target here.
			next = untried[len(untried)-1]
		case hi == len(inRange):
			// No pass yet above the failure: its largest model in range
			// decides whether the family is in the running.
			next = untried[len(untried)-1]
		case untried[len(untried)-1] > lo:
			// Narrow the bracket first: its failure may move up, and only
			// the final failure needs corroborating.
			inside := slices.DeleteFunc(slices.Clone(untried), func(i int) bool { return i < lo })
			next = bisect(inRange, inside)
		default:
			// Corroborate the failure: the nearest untried model below it.
			next = untried[len(untried)-1]
		}
		opens = append(opens, open{fam: f, next: inRange[next], pass: pass})
	}
	d := &decision{
		round: e.round, strategy: e.s.strategy, metric: e.g.metric, target: e.g.target,
		trialsUsed: len(e.trials), confidence: e.s.confidence, tolerance: e.s.tolerance,
		measured: math.NaN(), pred: math.NaN(), predLo: math.NaN(), predHi: math.NaN(),
		chosen: best, costFit: e.costFit,
	}
	if best != nil {
		d.measured = e.g.toMetric(best.q)
	}
	if b, err := json.Marshal(answers); err == nil {
		d.familyAnswers = string(b)
	}
	left := -1
	if e.g.maxTrials != nil {
		left = max(*e.g.maxTrials-len(e.trials), 0)
		d.trialsLeft = &left
	}
	if len(opens) == 0 {
		d.action = actionStop
		if best == nil {
			d.status = StatusInfeasible
			d.reason = fmt.Sprintf("no model of %s meets %s: %s; %s", familiesText(fams), e.targetText(), e.catalogMisses(fams, tried), e.catalogEvidence(fams, tried, ruledOut))
			return d, nil
		}
		d.status = StatusConverged
		d.reason = e.catalogWhy(best, fams, tried)
		return d, nil
	}
	// Families whose pass is smallest first: they are likeliest to hold
	// the answer; then the families with no pass yet, smallest first.
	slices.SortFunc(opens, func(a, b open) int {
		pa, pb := math.Inf(1), math.Inf(1)
		if a.pass != nil {
			pa = float64(a.pass.params)
		}
		if b.pass != nil {
			pb = float64(b.pass.params)
		}
		return cmp.Or(cmp.Compare(pa, pb), cmp.Compare(sizeKey(a.next), sizeKey(b.next)), strings.Compare(a.fam.name, b.fam.name))
	})
	n := len(opens)
	if left >= 0 {
		n = min(n, left)
	}
	if n == 0 {
		d.status, d.action = StatusBudgetExhausted, actionStop
		d.reason = fmt.Sprintf("the trial budget is spent (%d trials used, max_trials = %d) before the search converged; %s", len(e.trials), *e.g.maxTrials, e.catalogBest(best))
		return d, nil
	}
	var names []string
	for _, o := range opens[:n] {
		c := o.next
		c.Round = e.round + 1
		d.proposals = append(d.proposals, c)
		names = append(names, c.Name)
	}
	d.status, d.action = StatusContinue, actionRefine
	if best == nil {
		d.action = actionGrow
	}
	d.reason = fmt.Sprintf("%s; proposing %s", e.catalogBest(best), strings.Join(names, ", "))
	return d, nil
}

// meetsMeasured is a measured pass within every limit.
func (e *engine) meetsMeasured(s *size) bool {
	return s.known && s.q >= e.g.tq && s.costFail == ""
}

// bisect picks the untried model nearest the middle, in log size, of the
// bracket the untried models span.
func bisect(models []tables.Candidate, untried []int) int {
	lo, hi := math.Log(sizeKey(models[untried[0]])), math.Log(sizeKey(models[untried[len(untried)-1]]))
	mid := (lo + hi) / 2
	best := untried[0]
	for _, i := range untried {
		if math.Abs(math.Log(sizeKey(models[i]))-mid) < math.Abs(math.Log(sizeKey(models[best]))-mid) {
			best = i
		}
	}
	return best
}

// sizeKey orders a family's models: parameters when known, else size.
func sizeKey(c tables.Candidate) float64 {
	if c.Params > 0 {
		return float64(c.Params)
	}
	return math.Max(c.Size, math.SmallestNonzeroFloat64)
}

// catalogFamilies groups the space by family, each ordered by size; with
// no space, the models measured so far stand in for it.
func catalogFamilies(space []tables.Candidate, trials []trial) []*catalogFamily {
	if len(space) == 0 {
		for _, t := range trials {
			space = append(space, t.cand)
		}
	}
	by := map[string]*catalogFamily{}
	var out []*catalogFamily
	seen := map[string]bool{}
	for _, c := range space {
		key := c.Family + "\x00" + c.Name
		if seen[key] {
			continue
		}
		seen[key] = true
		f := by[c.Family]
		if f == nil {
			f = &catalogFamily{name: c.Family}
			by[c.Family] = f
			out = append(out, f)
		}
		f.models = append(f.models, c)
	}
	for _, f := range out {
		slices.SortStableFunc(f.models, func(a, b tables.Candidate) int {
			return cmp.Or(cmp.Compare(sizeKey(a), sizeKey(b)), cmp.Compare(a.Size, b.Size), strings.Compare(a.Name, b.Name))
		})
	}
	slices.SortFunc(out, func(a, b *catalogFamily) int { return strings.Compare(a.name, b.name) })
	return out
}

func familiesText(fams []*catalogFamily) string {
	if len(fams) == 1 {
		return "family " + fams[0].name
	}
	return fmt.Sprintf("the %d families", len(fams))
}

// catalogBest says what the best model so far is.
func (e *engine) catalogBest(best *size) string {
	if best == nil {
		return "no model measured so far meets " + e.targetText()
	}
	return fmt.Sprintf("the smallest model measured to meet %s so far is %s (family %s, %s parameters, %s %s)",
		e.targetText(), best.rep.cand.Name, best.rep.cand.Family, fmtParams(best.params), e.g.metric, e.fmtQ(e.g.toMetric(best.q)))
}

// catalogWhy explains a converged answer: what it measured, and what
// below it in each family was measured to miss.
func (e *engine) catalogWhy(best *size, fams []*catalogFamily, tried func(tables.Candidate) *size) string {
	var parts []string
	for _, f := range fams {
		// A family's models are in the order of its size key, which is the
		// size axis when the trainer counts the parameters: compare what
		// was measured, never the key, against the chosen model.
		var below *size
		for _, c := range f.models {
			s := tried(c)
			if s == nil || !s.known {
				continue
			}
			if s == best || s.params >= best.params {
				break
			}
			below = s
		}
		if below != nil && below != best {
			parts = append(parts, fmt.Sprintf("%s %s", below.rep.cand.Name, e.fmtQ(e.g.toMetric(below.q))))
		}
	}
	why := fmt.Sprintf("%s (family %s, %s parameters) is the smallest model of %s measured to meet %s (%s %s)",
		best.rep.cand.Name, best.rep.cand.Family, fmtParams(best.params), familiesText(fams), e.targetText(), e.g.metric, e.fmtQ(e.g.toMetric(best.q)))
	if len(parts) > 0 {
		why += "; the largest smaller models measured in each family miss it: " + strings.Join(parts, ", ")
	}
	return why
}

// catalogMisses names each family's best measured model.
func (e *engine) catalogMisses(fams []*catalogFamily, tried func(tables.Candidate) *size) string {
	var parts []string
	for _, f := range fams {
		var top *size
		for _, c := range f.models {
			if s := tried(c); s != nil && s.known && (top == nil || s.q > top.q) {
				top = s
			}
		}
		switch {
		case top == nil:
			parts = append(parts, f.name+": nothing measured")
		case top.costFail != "":
			parts = append(parts, fmt.Sprintf("%s: best %s %s, but %s", f.name, top.rep.cand.Name, e.fmtQ(e.g.toMetric(top.q)), top.costFail))
		default:
			parts = append(parts, fmt.Sprintf("%s: best %s %s", f.name, top.rep.cand.Name, e.fmtQ(e.g.toMetric(top.q))))
		}
	}
	return strings.Join(parts, "; ")
}

// fmtParams writes a parameter count readably: 35.69M, 1.2B, 5635.
func fmtParams(n int64) string {
	v := float64(n)
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.3gB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.4gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.4gk", v/1e3)
	}
	return fmt.Sprint(n)
}

// catalogUnsettled lists the models of a family with no pass that could
// still answer: untried, and not ruled out by the family's trusted fit
// (its optimistic bound on one measurement misses the target). It
// returns them with the number the fit rules out.
func (e *engine) catalogUnsettled(f *catalogFamily, models []tables.Candidate, tried func(tables.Candidate) *size) ([]int, int) {
	pending := 0
	for _, c := range models {
		if !settled(tried(c)) {
			pending++
		}
	}
	pl, stray := e.familyFit(f, tried, pending)
	var out []int
	ruled := 0
	for i, c := range models {
		if settled(tried(c)) {
			continue
		}
		if e.fitRules(pl, stray, c) {
			ruled++
			continue
		}
		out = append(out, i)
	}
	return out, ruled
}

// fitRules reports whether a family's trusted fit (nil: none) rules a
// model out: its bound on one measurement there, the band's upper edge
// raised by stray, misses the target.
func (e *engine) fitRules(pl *fit.PowerLawFit, stray float64, c tables.Candidate) bool {
	if pl == nil || e.g.target == nil || c.Params <= 0 {
		return false
	}
	hi := pl.Band(float64(c.Params)).Hi + stray
	if pl.QMax != nil {
		hi = min(hi, *pl.QMax)
	}
	return hi < e.g.tq
}

// familyFit fits quality against params over a family's measured models,
// and returns the fit when it may rule models out (as the MLP search's
// own: minRuleOutSizes distinct sizes, converged, explaining the
// variance), with
// how far a measurement of any of m untried models strays above it
// (strayOf). nil when the fit
// is not trusted: it then rules nothing out.
func (e *engine) familyFit(f *catalogFamily, tried func(tables.Candidate) *size, m int) (*fit.PowerLawFit, float64) {
	var n, q []float64
	for _, c := range f.models {
		if s := tried(c); s != nil && s.known && c.Params > 0 {
			n = append(n, float64(c.Params))
			q = append(q, s.q)
		}
	}
	if len(n) < minRuleOutSizes {
		return nil, 0
	}
	qmax := 1.0
	if e.g.metric == metricLoss {
		qmax = 0
	}
	pl, err := fit.FitPowerLaw(n, q, fit.Options{Confidence: e.s.confidence, Bootstrap: e.s.bootstrap, Seed: e.s.seed, QMax: &qmax})
	if err != nil || !(pl.Distinct >= minRuleOutSizes && pl.Converged && pl.R2 >= minTrustedR2 && len(pl.Replicates) >= e.s.bootstrap/2) {
		return nil, 0
	}
	return pl, strayOf(pl, n, q, e.s.confidence, m)
}

// strayOf is how far above a fitted curve any of m untried models'
// measurements may land: the measurement noise at the confidence, shared
// among the m models (each gets (1 − conf)/2m of the upper tail, so that
// ruling out all of them together holds at the confidence: the largest of
// 40 measurements strays above the curve by twice the noise), with
// Student's t quantile for a noise estimated from few points (the fit's
// three parameters leave points − 3 degrees of freedom); or the farthest a
// measured point (n, q) landed above the curve, whichever is larger.
func strayOf(pl *fit.PowerLawFit, n, q []float64, conf float64, m int) float64 {
	df := float64(max(pl.Points-3, 1))
	stray := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: df}.Quantile(1-(1-conf)/2/float64(max(m, 1))) * pl.Noise
	for i := range n {
		stray = max(stray, q[i]-pl.At(n[i]))
	}
	return max(stray, 0)
}

// farthest picks the untried model farthest, in log size, from every
// measured model of the family: while gathering evidence, the measurements
// spread out, and the family's fit gains distinct sizes fastest.
func farthest(models []tables.Candidate, untried []int, tried func(tables.Candidate) *size) int {
	best, bestD := untried[len(untried)-1], -1.0
	for j := len(untried) - 1; j >= 0; j-- {
		i := untried[j]
		u := math.Log(sizeKey(models[i]))
		dist := math.Inf(1)
		for _, c := range models {
			if s := tried(c); s != nil && s.known {
				dist = min(dist, math.Abs(u-math.Log(sizeKey(c))))
			}
		}
		if dist > bestD+1e-12 {
			best, bestD = i, dist
		}
	}
	return best
}

// catalogEvidence says what an infeasible verdict rests on: each family's
// models measured, and those its fit rules out.
func (e *engine) catalogEvidence(fams []*catalogFamily, tried func(tables.Candidate) *size, ruledOut map[string]int) string {
	measured, ruled, total := 0, 0, 0
	for _, f := range fams {
		total += len(f.models)
		ruled += ruledOut[f.name]
		for _, c := range f.models {
			if settled(tried(c)) {
				measured++
			}
		}
	}
	if ruled == 0 {
		return fmt.Sprintf("every one of the %d models was measured, as measured on the model itself (a failure says nothing of the models around it)", total)
	}
	return fmt.Sprintf("of the %d models, %d were measured and the other %d are ruled out by their family's trusted fit (its %s upper bound on one measurement misses the target there)",
		total, measured, ruled, e.confText())
}
