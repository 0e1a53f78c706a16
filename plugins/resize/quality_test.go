package resize

import (
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/examples/zoo/zootruth"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The decision-quality suite: smallest_meeting (and the trade-off
// strategies) searched over many ladders whose every model is known in
// advance, each decision judged against a scan of the whole ladder made
// apart from the search. The ladders are synthetic laws with noise, laws
// with a structured misfit the power law cannot capture, non-monotone
// families with dips and lucky passes, latency that is not monotone in
// size under a cap, and the real measured sweeps of examples/zoo and
// examples/replay.

// qladder is one family of models, ordered by size, with what looking
// each model up measures.
type qladder struct {
	name string
	// kind: law, misfit, dips, latency or real.
	kind   string
	widths []int // ascending, distinct
	acc    []float64
	lat    []float64
	latCap *float64
	// alpha is the true exponent of a law ladder along params (0: none).
	alpha   float64
	targets []float64
}

func (l *qladder) n() int { return len(l.widths) }

// meets is the brute-force judgement of model i.
func (l *qladder) meets(i int, target float64) bool {
	return l.acc[i] >= target && (l.latCap == nil || l.lat[i] <= *l.latCap)
}

// truth is the smallest model meeting the target and the cap, and the
// next larger one meeting them; -1 when there is none.
func (l *qladder) truth(target float64) (first, second int) {
	first, second = -1, -1
	for i := range l.widths {
		if !l.meets(i, target) {
			continue
		}
		if first < 0 {
			first = i
		} else {
			second = i
			return first, second
		}
	}
	return first, second
}

// monotone reports whether measured quality never falls with size, and
// latency, under a cap, never falls either: the data the
// half-the-models goal speaks of.
func (l *qladder) monotone() bool {
	for i := 1; i < l.n(); i++ {
		if l.acc[i] < l.acc[i-1] {
			return false
		}
		if l.latCap != nil && l.lat[i] < l.lat[i-1] {
			return false
		}
	}
	return true
}

// geomWidths is n distinct widths from w0 growing by about g a step.
func geomWidths(w0 int, n int, top float64) []int {
	g := math.Pow(top/float64(w0), 1/float64(max(n-1, 1)))
	ws := []int{w0}
	for i := 1; i < n; i++ {
		ws = append(ws, max(ws[i-1]+1, int(math.Round(float64(w0)*math.Pow(g, float64(i))))))
	}
	return ws
}

// quantileTargets are targets between measured qualities (so that no
// target ties a measurement), at the given quantiles of the ladder.
func quantileTargets(acc []float64, qs ...float64) []float64 {
	s := slices.Clone(acc)
	slices.Sort(s)
	var out []float64
	for _, q := range qs {
		i := min(int(q*float64(len(s))), len(s)-1)
		t := s[i]
		if i > 0 && s[i-1] < t {
			t = (s[i-1] + t) / 2
		}
		out = append(out, math.Round(t*1e4)/1e4)
	}
	return slices.Compact(out)
}

var ladderSizes = []int{3, 4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64}

// lawLadders: q = qinf − a·N^(−alpha) along params N, with Gaussian
// noise (none on a third of them, which are then monotone).
func lawLadders() []*qladder {
	var out []*qladder
	for i, n := range ladderSizes {
		rng := rand.New(rand.NewPCG(uint64(100+i), 3))
		w0 := 2 + rng.IntN(6)
		ws := geomWidths(w0, n, float64(w0)*math.Exp2(4+4*rng.Float64()))
		qinf, alpha := 0.88+0.1*rng.Float64(), 0.3+0.4*rng.Float64()
		n0 := float64(simParams(1, int32(ws[0])))
		a := (0.2 + 0.2*rng.Float64()) * math.Pow(n0, alpha)
		noise := []float64{0, 0.003, 0.008}[i%3]
		l := &qladder{name: fmt.Sprintf("law-n%d-noise%g", n, noise), kind: "law", widths: ws, alpha: alpha}
		for _, w := range ws {
			nn := float64(simParams(1, int32(w)))
			l.acc = append(l.acc, qinf-a*math.Pow(nn, -alpha)+noise*rng.NormFloat64())
			l.lat = append(l.lat, 1e-3)
		}
		l.targets = append(quantileTargets(l.acc, 0.3, 0.6, 0.9), math.Round((slices.Max(l.acc)+0.01)*1e4)/1e4)
		out = append(out, l)
	}
	return out
}

// misfitLadders: a law bent in ways it cannot fit: a plateau then a
// jump, a bump, a hard ceiling reached early, a sigmoid transition.
func misfitLadders() []*qladder {
	var out []*qladder
	shapes := []string{"plateau", "bump", "ceiling", "sigmoid"}
	for i, n := range ladderSizes {
		rng := rand.New(rand.NewPCG(uint64(200+i), 3))
		shape := shapes[i%len(shapes)]
		w0 := 2 + rng.IntN(6)
		ws := geomWidths(w0, n, float64(w0)*math.Exp2(5+3*rng.Float64()))
		l := &qladder{name: fmt.Sprintf("misfit-%s-n%d", shape, n), kind: "misfit", widths: ws}
		for j := range ws {
			x := float64(j) / float64(max(n-1, 1)) // position in log size
			law := 0.95 - 0.3*math.Exp(-3*x)
			var q float64
			switch shape {
			case "plateau":
				q = law
				if x > 0.3 && x < 0.6 {
					q = 0.95 - 0.3*math.Exp(-0.9)
				}
			case "bump":
				q = law + 0.05*math.Exp(-math.Pow((x-0.35)/0.1, 2))
			case "ceiling":
				q = math.Min(law+0.1, 0.9)
			case "sigmoid":
				q = 0.6 + 0.35/(1+math.Exp(-(x-0.55)*25))
			}
			l.acc = append(l.acc, q+0.002*rng.NormFloat64())
			l.lat = append(l.lat, 1e-3)
		}
		l.targets = quantileTargets(l.acc, 0.3, 0.6, 0.9)
		out = append(out, l)
	}
	return out
}

// dipLadders: a rising family with runs of one to three failing models
// in its middle, and a lucky small model that passes, each placed by the
// seed.
func dipLadders() []*qladder {
	var out []*qladder
	for i, n := range ladderSizes {
		rng := rand.New(rand.NewPCG(uint64(300+i), 3))
		w0 := 2 + rng.IntN(6)
		ws := geomWidths(w0, n, float64(w0)*math.Exp2(4+4*rng.Float64()))
		l := &qladder{name: fmt.Sprintf("dips-n%d", n), kind: "dips", widths: ws}
		for j := range ws {
			x := float64(j) / float64(max(n-1, 1))
			l.acc = append(l.acc, 0.7+0.25*(1-math.Exp(-3*x))+0.004*rng.NormFloat64())
			l.lat = append(l.lat, 1e-3)
		}
		// Dips: a run of failures inside the rise.
		for range 1 + n/12 {
			at, length := n/3+rng.IntN(max(n/2, 1)), 1+rng.IntN(3)
			for k := at; k < min(at+length, n-1); k++ {
				l.acc[k] -= 0.08
			}
		}
		// A lucky pass in the lower third, on every other ladder.
		if i%2 == 0 && n >= 5 {
			l.acc[rng.IntN(n/3)+1] = 0.97
		}
		l.targets = quantileTargets(l.acc, 0.4, 0.6, 0.85)
		out = append(out, l)
	}
	return out
}

// latencyLadders: quality rises with size, latency grows with it but not
// monotonically (some larger models are faster), under a cap that cuts
// into the models reaching the target.
func latencyLadders() []*qladder {
	var out []*qladder
	for i, n := range ladderSizes {
		rng := rand.New(rand.NewPCG(uint64(400+i), 3))
		w0 := 2 + rng.IntN(6)
		ws := geomWidths(w0, n, float64(w0)*math.Exp2(4+4*rng.Float64()))
		l := &qladder{name: fmt.Sprintf("latency-n%d", n), kind: "latency", widths: ws}
		for j, w := range ws {
			x := float64(j) / float64(max(n-1, 1))
			l.acc = append(l.acc, 0.75+0.2*(1-math.Exp(-3*x))+0.003*rng.NormFloat64())
			// A slow and a fast kernel alternate with size.
			slow := 1.0
			if rng.IntN(3) == 0 {
				slow = 3
			}
			l.lat = append(l.lat, 0.01*math.Sqrt(float64(w))*slow)
		}
		lats := slices.Clone(l.lat)
		slices.Sort(lats)
		c := lats[len(lats)*2/3]
		l.latCap = &c
		l.targets = quantileTargets(l.acc, 0.3, 0.6, 0.85)
		out = append(out, l)
	}
	return out
}

// zooLadders are the real sweeps of examples/zoo: each family whole and
// thinned to every 2nd, 4th and 8th model, with targets across its
// range; the thinnest ladders of each family also run under a latency cap
// (the zoo's latencies are wall-clock measurements, not monotone in size).
func zooLadders(t testing.TB) []*qladder {
	rows, err := zootruth.Load(filepath.Join("..", "..", "examples", "zoo", "zoo.csv"))
	if err != nil {
		t.Fatalf("the zoo: %v", err)
	}
	var out []*qladder
	for _, fam := range zootruth.Families(rows) {
		var fr []zootruth.Row
		for _, r := range rows {
			if r.Family == fam {
				fr = append(fr, r)
			}
		}
		slices.SortFunc(fr, func(a, b zootruth.Row) int { return int(a.Params - b.Params) })
		for _, every := range []int{1, 2, 4, 8} {
			l := &qladder{name: fmt.Sprintf("zoo-%s-every%d", fam, every), kind: "real"}
			for i := 0; i < len(fr); i += every {
				r := fr[i]
				k := strings.LastIndex(r.Name, "-w")
				w, err := strconv.Atoi(r.Name[k+2:])
				if k < 0 || err != nil {
					t.Fatalf("zoo row %s: no width in its name", r.Name)
				}
				l.widths = append(l.widths, w)
				l.acc = append(l.acc, r.Accuracy)
				l.lat = append(l.lat, r.LatencyP95Ms)
			}
			l.targets = quantileTargets(l.acc, 0.3, 0.6, 0.9)
			l.targets = append(l.targets, 0.9, 0.95)
			slices.Sort(l.targets)
			l.targets = slices.Compact(l.targets)
			out = append(out, l)
			if every >= 4 {
				c := *l
				lats := slices.Clone(l.lat)
				slices.Sort(lats)
				cp := lats[len(lats)/2]
				c.latCap, c.name = &cp, l.name+"-latcap"
				out = append(out, &c)
			}
		}
	}
	return out
}

// spiralLadders are the real sweep of examples/replay: every MLP of depth
// 1 (widths 2..256) and depth 2 (widths 2..128) trained on two spirals,
// thinned to ladders of 16 to 64 models, with targets across the range.
func spiralLadders(t testing.TB) []*qladder {
	f, err := os.Open(filepath.Join("..", "..", "examples", "replay", "results.csv"))
	if err != nil {
		t.Fatalf("the spirals table: %v", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		t.Fatalf("the spirals table: %v", err)
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	type row struct {
		width    int
		acc, lat float64
	}
	byDepth := map[string][]row{}
	for i, r := range rows[1:] {
		if r[col["family"]] != "mlp" {
			continue
		}
		w, err1 := strconv.Atoi(r[col["width"]])
		acc, err2 := strconv.ParseFloat(r[col["accuracy"]], 64)
		lat, err3 := strconv.ParseFloat(r[col["latency_p95_ms"]], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatalf("the spirals table, line %d: %v", i+2, err)
		}
		byDepth[r[col["depth"]]] = append(byDepth[r[col["depth"]]], row{w, acc, lat})
	}
	var out []*qladder
	for _, c := range []struct {
		depth string
		every []int
	}{{"1", []int{4, 8, 16}}, {"2", []int{2, 4, 8}}} {
		rs := byDepth[c.depth]
		slices.SortFunc(rs, func(a, b row) int { return a.width - b.width })
		for _, every := range c.every {
			l := &qladder{name: fmt.Sprintf("spirals-d%s-every%d", c.depth, every), kind: "real"}
			for i := 0; i < len(rs); i += every {
				l.widths = append(l.widths, rs[i].width)
				l.acc = append(l.acc, rs[i].acc)
				l.lat = append(l.lat, rs[i].lat)
			}
			l.targets = quantileTargets(l.acc, 0.3, 0.6, 0.9)
			out = append(out, l)
		}
	}
	return out
}

// allLadders is the whole suite.
func allLadders(t testing.TB) []*qladder {
	var out []*qladder
	out = append(out, lawLadders()...)
	out = append(out, misfitLadders()...)
	out = append(out, dipLadders()...)
	out = append(out, latencyLadders()...)
	out = append(out, zooLadders(t)...)
	out = append(out, spiralLadders(t)...)
	return out
}

// Searches: the catalog search over the ladder as a table family, and
// the MLP search over its widths listed on the space port.
const (
	searchCatalog = "catalog"
	searchMLP     = "mlp"
)

// qrun is one search's outcome.
type qrun struct {
	d      *decision
	chosen int // index into the ladder; -1 when none
	looked int // distinct models measured
	// repeats counts the measurements of a model already measured.
	repeats int
	err     string
}

// startOf is round 0: model_choice's ladder (four models spread in log
// size, both ends) or its narrow start (the two smallest).
func startOf(l *qladder, start string) []int {
	idx := make([]int, l.n())
	for i := range idx {
		idx[i] = i
	}
	if start == "narrow" {
		return idx[:min(2, len(idx))]
	}
	if len(idx) <= 4 {
		return idx
	}
	var out []int
	for i := range 4 {
		j := int(math.Round(float64(i) * float64(len(idx)-1) / 3))
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out
}

// runLadder runs one search over a ladder as the host runs the loop, and
// checks every round against the models looked up so far: never
// infeasible while one of them meets every requirement, converged only on
// the smallest of them, never a model looked up twice or outside the
// ladder. A broken contract ends the run with err set.
func runLadder(cfg Config, l *qladder, search, start string) qrun {
	if l.latCap != nil {
		cfg.MaxLatencyMs = l.latCap
	}
	st, err := New(cfg)
	if err != nil {
		return qrun{chosen: -1, err: err.Error()}
	}
	s := st.(*Stage).s
	cand := func(i int) tables.Candidate {
		if search == searchMLP {
			return mcand(l.widths[i])
		}
		c := mcand(l.widths[i])
		name := fmt.Sprintf("%s-%d", l.name, i)
		c.ID, c.Name, c.Family, c.Kind, c.Size, c.Depth, c.Width = name, name, l.name, tables.KindTable, float64(c.Params), 0, 0
		return c
	}
	index := map[string]int{}
	var space []tables.Candidate
	for i := range l.widths {
		c := cand(i)
		index[c.Name] = i
		space = append(space, c)
	}
	target := cfg.MinAccuracy
	var trials []trial
	seen := map[int]bool{}
	run := qrun{chosen: -1}
	look := func(c tables.Candidate, round int32) string {
		i, ok := index[c.Name]
		if !ok {
			return fmt.Sprintf("proposed %s, which the ladder does not hold", c.Name)
		}
		switch {
		case c.Repeat > 0 && !seen[i]:
			return fmt.Sprintf("proposed repeat %d of %s, which was never measured", c.Repeat, c.Name)
		case c.Repeat > 0:
			// A repeat measures a model again; a ladder's row is what the
			// model measures, every time.
			run.repeats++
		case seen[i]:
			return fmt.Sprintf("proposed %s again", c.Name)
		}
		seen[i] = true
		c.Round = round
		// A ladder is a table holding one measurement of each model, as
		// replay reads the zoo's: its rows are exact.
		trials = append(trials, trial{cand: c, status: tables.StatusOK, accuracy: l.acc[i], loss: math.NaN(),
			latencyMs: l.lat[i], trainSecs: 0.01, modelBytes: math.NaN(), repeatsHeld: 1})
		return ""
	}
	for _, i := range startOf(l, start) {
		look(space[i], 0)
	}
	for round := 1; round <= 80; round++ {
		d, err := decide(s, trials, nil, space...)
		if err != nil {
			run.err = err.Error()
			return run
		}
		run.d, run.looked, run.chosen = d, len(seen), -1
		if d.chosen != nil {
			run.chosen = index[d.chosen.rep.cand.Name]
		}
		if target != nil {
			best := -1
			for i := range l.widths {
				if seen[i] && l.meets(i, *target) {
					best = i
					break
				}
			}
			switch {
			case d.status == StatusInfeasible && best >= 0:
				run.err = fmt.Sprintf("round %d: infeasible although %s was measured to meet every requirement: %s", round, space[best].Name, d.reason)
				return run
			case d.status == StatusConverged && cfg.Strategy == "" && run.chosen != best:
				run.err = fmt.Sprintf("round %d: converged on %s, but the smallest model measured to meet every requirement is %d: %s", round, d.chosenID(), best, d.reason)
				return run
			}
		}
		if msg := contradiction(d.reason); msg != "" {
			run.err = fmt.Sprintf("round %d: %s: %s", round, msg, d.reason)
			return run
		}
		if d.status != StatusContinue {
			return run
		}
		for _, p := range d.proposals {
			if msg := look(p, int32(round)); msg != "" {
				run.err = fmt.Sprintf("round %d: %s", round, msg)
				return run
			}
		}
	}
	run.err = "no stop in 80 rounds: " + run.d.reason
	return run
}

// tally sums the judgements of many runs of one strategy and search.
type tally struct {
	runs, exact, oneUp, below, falseInfeasible, broken int
	ratio, ratioMax                                    float64
	// mono16Max is the largest trials/size over monotone ladders of 16
	// models or more.
	mono16Max float64
	mono16    int
	// measured sums the measurements (repeats too) over ladder size.
	measured float64
	// small sums trials/size over the ladders of 3 to 12 models.
	small     float64
	smallRuns int
	covered   int
	fits      int
	// pairs counts the ladder and target pairs searched from both starts,
	// sameStart those where both starts gave the same verdict and model.
	pairs, sameStart int
	failures         []string
}

// count adds a run's models measured over ladder size to the figures by
// kind of ladder.
func (t *tally) count(l *qladder, ratio float64) {
	if l.n() >= 16 && l.monotone() {
		t.mono16++
		t.mono16Max = max(t.mono16Max, ratio)
	}
	if l.n() <= 12 {
		t.smallRuns++
		t.small += ratio
	}
}

// judge scores one smallest_meeting run against the ladder's truth.
func (t *tally) judge(l *qladder, target float64, r qrun, what string) {
	t.runs++
	ratio := float64(r.looked) / float64(l.n())
	t.ratio += ratio
	t.measured += float64(r.looked+r.repeats) / float64(l.n())
	t.ratioMax = max(t.ratioMax, ratio)
	t.count(l, ratio)
	first, second := l.truth(target)
	fail := func(why string) {
		t.failures = append(t.failures, fmt.Sprintf("%s, target %g: %s", what, target, why))
	}
	if r.err != "" {
		t.broken++
		fail(r.err)
		return
	}
	if r.looked > l.n() {
		fail(fmt.Sprintf("%d models measured of %d", r.looked, l.n()))
	}
	if r.chosen >= 0 && !l.meets(r.chosen, target) {
		t.below++
		fail(fmt.Sprintf("chose model %d, which misses the requirements (accuracy %.4f)", r.chosen, l.acc[r.chosen]))
	}
	switch {
	case r.d.status == StatusInfeasible && first >= 0:
		t.falseInfeasible++
		fail(fmt.Sprintf("infeasible, but model %d meets every requirement: %s", first, r.d.reason))
	case r.d.status == StatusInfeasible && first < 0:
		t.exact++
	case r.d.status == StatusConverged && r.chosen == first:
		t.exact++
	case r.d.status == StatusConverged && r.chosen == second && second >= 0:
		t.oneUp++
	}
	if l.alpha > 0 && r.d.fitOut != nil && r.d.fitPoints >= minTrustedSizes {
		t.fits++
		// On a noise-free law the interval shrinks to the exact exponent:
		// it covers it up to rounding.
		tol := 1e-6 * l.alpha
		if r.d.fitOut.alphaLo-tol <= l.alpha && l.alpha <= r.d.fitOut.alphaHi+tol {
			t.covered++
		}
	}
}

// qualityCase is one strategy and search the suite runs.
type qualityCase struct {
	name, search string
	cfg          Config
}

var qualityCases = []qualityCase{
	{"smallest_meeting/search=catalog", searchCatalog, Config{}},
	{"smallest_meeting/search=mlp", searchMLP, Config{}},
}

// runSuite runs a case over the ladders from both starts.
func runSuite(t testing.TB, c qualityCase, ladders []*qladder) *tally {
	var tl tally
	for _, l := range ladders {
		for _, target := range l.targets {
			var answers []string
			for _, start := range []string{"ladder", "narrow"} {
				cfg := c.cfg
				cfg.MinAccuracy = ptr(target)
				cfg.Bootstrap = ptr(60)
				r := runLadder(cfg, l, c.search, start)
				tl.judge(l, target, r, fmt.Sprintf("%s %s from %s", c.name, l.name, start))
				if r.d != nil {
					answers = append(answers, fmt.Sprint(r.d.status, r.chosen))
				}
			}
			tl.pairs++
			if len(answers) == 2 && answers[0] == answers[1] {
				tl.sameStart++
			}
		}
	}
	return &tl
}

// The hard goals are correctness: no answer below the target or over a
// cap, no infeasible verdict while a model meets every requirement, never
// more models measured than the ladder holds, and every round's contract
// kept. The test holds the suite's ladders of up to 24 models to them
// (every kind, and the zoo's thinned sweeps); BenchmarkDecisionQuality
// reports the figures over the whole suite.
func TestDecisionQualityHardGoals(t *testing.T) {
	all := allLadders(t)
	if len(all) < 50 {
		t.Fatalf("%d ladders, want at least 50", len(all))
	}
	var ladders []*qladder
	kinds := map[string]bool{}
	for _, l := range all {
		if l.n() <= 24 {
			ladders = append(ladders, l)
			kinds[l.kind] = true
		}
	}
	if len(kinds) != 5 {
		t.Fatalf("the subset holds ladders of %d kinds, want all 5", len(kinds))
	}
	for _, c := range qualityCases {
		t.Run(c.name, func(t *testing.T) {
			tl := runSuite(t, c, ladders)
			for _, f := range tl.failures {
				t.Error(f)
			}
			t.Logf("%d runs: %d exact, %d one step up, %d below target, %d false infeasible; %.2f of the ladder measured on average (at most %.2f; %.2f on %d monotone ladders of 16 or more)",
				tl.runs, tl.exact, tl.oneUp, tl.below, tl.falseInfeasible, tl.ratio/float64(tl.runs), tl.ratioMax, tl.mono16Max, tl.mono16)
		})
	}
}

// tradeoffCases are the strategies that weigh quality against params
// with no target, on the MLP search.
var tradeoffCases = []qualityCase{
	{"knee/search=mlp", searchMLP, Config{Strategy: KneeStrategy}},
	{"pareto/search=mlp", searchMLP, Config{Strategy: ParetoStrategy}},
	{"max_utility/search=mlp", searchMLP, Config{Strategy: MaxUtility, Price: ptr(0.01)}},
}

// utilityTruth is max_utility's answer by a scan of the whole ladder:
// the model of largest accuracy − price·log2(params).
func utilityTruth(l *qladder, price float64) int {
	best, bestU := 0, math.Inf(-1)
	for i, w := range l.widths {
		if u := l.acc[i] - price*math.Log2(float64(simParams(1, int32(w)))); u > bestU+1e-12 {
			best, bestU = i, u
		}
	}
	return best
}

// runTradeoffs runs a trade-off strategy over the ladders without a cap
// from both starts. Only max_utility has an answer defined apart from the
// search (the maximum over the ladder); knee and pareto are judged on
// their cost and contract alone.
func runTradeoffs(c qualityCase, ladders []*qladder) *tally {
	var tl tally
	for _, l := range ladders {
		if l.latCap != nil {
			continue
		}
		for _, start := range []string{"ladder", "narrow"} {
			cfg := c.cfg
			cfg.Bootstrap = ptr(60)
			r := runLadder(cfg, l, c.search, start)
			tl.runs++
			ratio := float64(r.looked) / float64(l.n())
			tl.ratio += ratio
			tl.measured += float64(r.looked+r.repeats) / float64(l.n())
			tl.ratioMax = max(tl.ratioMax, ratio)
			tl.count(l, ratio)
			what := fmt.Sprintf("%s %s from %s", c.name, l.name, start)
			switch {
			case r.err != "":
				tl.broken++
				tl.failures = append(tl.failures, what+": "+r.err)
				continue
			case r.looked > l.n():
				tl.failures = append(tl.failures, fmt.Sprintf("%s: %d models measured of %d", what, r.looked, l.n()))
			}
			if c.cfg.Strategy != MaxUtility || r.d.status != StatusConverged {
				continue
			}
			switch want := utilityTruth(l, *c.cfg.Price); r.chosen {
			case want:
				tl.exact++
			case want + 1:
				tl.oneUp++
			}
		}
	}
	return &tl
}

// BenchmarkDecisionQuality reports, per strategy and search, how its
// decisions over the suite's ladders compare with a scan of each whole
// ladder: exact answers, answers one model up (the next model meeting
// every requirement), answers below the target or over a cap (goal 0),
// infeasible verdicts while a model meets every requirement (goal 0), the
// share of ladders and targets where the ladder start and the narrow
// start give the same answer, distinct models measured over the ladder's
// size (mean, largest, and largest on monotone ladders of 16 models or
// more: goals at most 1 and 0.5; and the mean on ladders of 3 to 12
// models; measurements/size counts repeated measurements of a model too),
// and how often the fitted exponent's interval holds the law's true
// exponent on the law ladders (nominal 0.9). Fractions are of the runs:
// each ladder and target from the ladder start and the narrow start.
func BenchmarkDecisionQuality(b *testing.B) {
	ladders := allLadders(b)
	report := func(b *testing.B, tl *tally) {
		n := float64(tl.runs)
		b.ReportMetric(float64(len(ladders)), "ladders")
		b.ReportMetric(n, "runs")
		b.ReportMetric(tl.ratio/n, "trials/size")
		b.ReportMetric(tl.measured/n, "measurements/size")
		b.ReportMetric(tl.ratioMax, "max-trials/size")
		b.ReportMetric(tl.mono16Max, "mono16-max-trials/size")
		b.ReportMetric(tl.small/float64(tl.smallRuns), "small-trials/size")
		b.ReportMetric(float64(tl.broken), "broken")
		for _, f := range tl.failures {
			b.Log(f)
		}
	}
	for _, c := range qualityCases {
		b.Run(c.name, func(b *testing.B) {
			var tl *tally
			for b.Loop() {
				tl = runSuite(b, c, ladders)
			}
			n := float64(tl.runs)
			report(b, tl)
			b.ReportMetric(float64(tl.exact)/n, "exact")
			b.ReportMetric(float64(tl.oneUp)/n, "one-step-up")
			b.ReportMetric(float64(tl.below), "below-target")
			b.ReportMetric(float64(tl.falseInfeasible), "false-infeasible")
			b.ReportMetric(float64(tl.sameStart)/float64(tl.pairs), "same-both-starts")
			if tl.fits > 0 {
				b.ReportMetric(float64(tl.covered)/float64(tl.fits), "coverage")
				b.ReportMetric(float64(tl.fits), "coverage-fits")
			}
		})
	}
	for _, c := range tradeoffCases {
		b.Run(c.name, func(b *testing.B) {
			var tl *tally
			for b.Loop() {
				tl = runTradeoffs(c, ladders)
			}
			report(b, tl)
			if c.cfg.Strategy == MaxUtility {
				b.ReportMetric(float64(tl.exact)/float64(tl.runs), "exact")
				b.ReportMetric(float64(tl.oneUp)/float64(tl.runs), "one-step-up")
			}
		})
	}
}

var (
	meetsFigure   = regexp.MustCompile(`to meet (?:accuracy )?([0-9.]+) \((?:measured )?accuracy ([0-9.]+)`)
	latencyFigure = regexp.MustCompile(`latency p95 ([0-9.e+-]+) ms exceeds max_latency_ms = ([0-9.e+-]+)`)
)

// contradiction finds a figure a reason prints on the wrong side of the
// limit it is compared with: a pass printed below its target, a latency
// printed within the cap it is said to exceed.
func contradiction(reason string) string {
	for _, m := range meetsFigure.FindAllStringSubmatch(reason, -1) {
		t, _ := strconv.ParseFloat(m[1], 64)
		v, _ := strconv.ParseFloat(m[2], 64)
		if v < t {
			return fmt.Sprintf("a pass printed as %s against a target of %s", m[2], m[1])
		}
	}
	for _, m := range latencyFigure.FindAllStringSubmatch(reason, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		c, _ := strconv.ParseFloat(m[2], 64)
		if v <= c {
			return fmt.Sprintf("a latency printed as %s said to exceed a cap of %s", m[1], m[2])
		}
	}
	return ""
}

// The contradiction check itself finds what it looks for.
func TestContradictionCheck(t *testing.T) {
	for reason, want := range map[string]bool{
		"m is the smallest model of family f measured to meet accuracy 0.9478 (accuracy 0.947)": true,
		"m is the smallest model measured to meet 0.95 (measured accuracy 0.951, the fit's…)":   false,
		"best m 0.941, but latency p95 0.11 ms exceeds max_latency_ms = 0.11":                   true,
		"best m 0.941, but latency p95 0.151 ms exceeds max_latency_ms = 0.11":                  false,
	} {
		if got := contradiction(reason) != ""; got != want {
			t.Errorf("contradiction(%q) found %v, want %v", reason, got, want)
		}
	}
}
