package resize

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Noise is measured, not guessed. A model measured several times (the
// evaluation stages' repeats, a replay table's repeat column) is its
// repeats' mean (poolRepeats, read.go), and the spread of repeats about
// their models' means is the measurement noise (noise). The answer of a
// search with a quality target rests on at most two models: the
// smallest passing one and the failure just below it. When either lies
// within noiseMargins standard errors of the target (the noise over the
// square root of its repeats), a pass or a fail there could be the
// noise's, so that model is measured again, with the next repeat, before
// the search stops; up to max_repeats measurements of it. While no model
// has been measured twice the noise is unknown, and the closer of the two
// is measured again to learn it. Only where the results say the next
// repeat is a new measurement (repeatable): a replay table without
// repeats is exact, and holds no other measurement to give. (The scatter
// of the models about the fitted curve is no stand-in: models measured
// with one seed each may share its bias, and scatter nothing.)
//
// Every decision with a target says, for those models, how far from the
// target they lie and how noisy that is.

const (
	// DefaultMaxRepeats is max_repeats' default: the most measurements of
	// one model the automatic repeats take.
	DefaultMaxRepeats = 3
	// noiseMargins is how many standard errors from the target a model's
	// mean must lie for its pass or fail to stand.
	noiseMargins = 2.0
)

// noise is the standard deviation of one measurement of the quality,
// from repeats: the pooled within-model standard deviation
// √(Σ(nᵢ−1)·sᵢ² / Σ(nᵢ−1)) over the models measured nᵢ ≥ 2 times. sd is
// NaN when no model was.
type noise struct {
	sd     float64
	models int
}

func (n noise) known() bool { return !math.IsNaN(n.sd) }

// noise measures the noise, in the metric's units.
func (e *engine) noise() noise { return e.repeatNoise() }

// repeatNoise measures the noise from the repeats alone.
func (e *engine) repeatNoise() noise {
	seen := map[string]bool{}
	var ss float64
	var dof, models int
	for _, t := range e.trials {
		if seen[t.cand.ID] || t.reps < 2 {
			continue
		}
		seen[t.cand.ID] = true
		sd := t.accSD
		if e.g.metric == metricLoss {
			sd = t.lossSD
		}
		if math.IsNaN(sd) {
			continue
		}
		ss += float64(t.reps-1) * sd * sd
		dof += t.reps - 1
		models++
	}
	if dof == 0 {
		return noise{sd: math.NaN()}
	}
	return noise{sd: math.Sqrt(ss / float64(dof)), models: models}
}

// clusterIDs turns each fitted point's measured_from into a cluster id
// for fit.Options.Cluster: points derived from one measurement (a replay
// table's lookups interpolated nearest one measured row, and that row's
// own lookup) share one id; a point of its own ("") has its own. nil when
// every point is its own, the fit's default.
func clusterIDs(from []string) []int {
	if !slices.ContainsFunc(from, func(s string) bool { return s != "" }) {
		return nil
	}
	ids := make([]int, len(from))
	at := map[string]int{}
	for i, f := range from {
		if f == "" {
			ids[i] = len(at) + i + len(from) // unique: never a shared id
			continue
		}
		id, ok := at[f]
		if !ok {
			id = len(at)
			at[f] = id
		}
		ids[i] = id
	}
	return ids
}

// withRepeats adds the noise to a decision: the margins of the models it
// rests on, in the reason, and, when one lies within the noise of the
// target, a repeat of it before the answer stands.
func (e *engine) withRepeats(d *decision, err error) (*decision, error) {
	if err != nil || d == nil || e.g.target == nil {
		return d, err
	}
	ms := e.decisive(d)
	if len(ms) == 0 {
		return d, nil
	}
	nz := e.noise()
	texts := make([]string, len(ms))
	for i, s := range ms {
		texts[i] = e.marginText(s, nz)
	}
	d.reason += "; " + strings.Join(texts, "; ")
	if d.status != StatusConverged {
		return d, nil
	}

	if !nz.known() {
		// Learn the noise where it matters most: at the model nearest the
		// target.
		ms = slices.Clone(ms)
		slices.SortStableFunc(ms, func(a, b *size) int { return cmp.Compare(math.Abs(e.margin(a)), math.Abs(e.margin(b))) })
	}
	var again []tables.Candidate
	var why []string
	for _, s := range ms {
		if !e.withinNoise(s, nz) {
			continue
		}
		c, ok := e.nextRepeat(s)
		if !ok {
			continue
		}
		again = append(again, c)
		why = append(why, fmt.Sprintf("%s again (repeat %d)", s.id(), c.Repeat))
		if !nz.known() {
			break // one repeat measures the noise
		}
	}
	if len(again) == 0 {
		return d, nil
	}
	if d.trialsLeft != nil {
		if *d.trialsLeft == 0 {
			d.reason += "; no trial is left to measure it again"
			return d, nil
		}
		again = again[:min(len(again), *d.trialsLeft)]
		why = why[:len(again)]
	}
	lead := fmt.Sprintf("within %g standard errors of the target", noiseMargins)
	if !nz.known() {
		lead = "with the noise not yet measured (no model measured twice), a pass or fail this close may be the noise's"
	}
	d.status, d.action, d.proposals = StatusContinue, actionRefine, again
	d.reason += fmt.Sprintf("; %s, so the answer waits for %s", lead, strings.Join(why, " and "))
	return d, nil
}

// decisive returns the models a decision rests on: the chosen model when
// it reaches the target, and the failure just below it, the largest
// smaller model of its family (and depth) that misses the target.
func (e *engine) decisive(d *decision) []*size {
	c := d.chosen
	if c == nil || !c.known {
		return nil
	}
	var out []*size
	if e.reaches(c) {
		out = append(out, c)
	}
	var below *size
	for _, s := range e.sizes {
		if !s.known || s == c || s.family != c.family || s.depth != c.depth || s.params >= c.params {
			continue
		}
		if below == nil || s.params > below.params {
			below = s
		}
	}
	if below != nil && !e.reaches(below) {
		out = append(out, below)
	}
	return out
}

// margin is how far a model's mean lies above the target, on the
// higher-is-better scale.
func (e *engine) margin(s *size) float64 { return s.q - e.g.tq }

// reps is how many ok measurements a model's mean rests on.
func reps(s *size) int { return max(s.rep.reps, 1) }

// withinNoise reports whether a model's pass or fail could be the
// noise's: its mean within noiseMargins standard errors of the target,
// or the noise unknown.
func (e *engine) withinNoise(s *size, nz noise) bool {
	if !nz.known() {
		return true
	}
	return math.Abs(e.margin(s)) <= noiseMargins*nz.sd/math.Sqrt(float64(reps(s)))
}

// nextRepeat is the next measurement of a model: its candidate with the
// next repeat, in the next round; false when max_repeats measurements
// were taken or its latest row says the next would be no new
// measurement (an exact replay table, one that holds no more, a stage
// that does not say).
func (e *engine) nextRepeat(s *size) (tables.Candidate, bool) {
	limit := cmp.Or(e.s.maxRepeats, DefaultMaxRepeats)
	var rows int
	var last *trial
	for i, t := range e.trials {
		if t.cand.ID == s.id() {
			rows++
			if last == nil || t.cand.Repeat > last.cand.Repeat {
				last = &e.trials[i]
			}
		}
	}
	if last == nil || rows >= limit || !last.repeatable {
		return tables.Candidate{}, false
	}
	next := last.cand.Repeat + 1
	if held := last.repeatsHeld; held > 0 && next >= held {
		return tables.Candidate{}, false
	}
	c := s.rep.cand
	c.Repeat, c.Round = next, e.round+1
	return c, true
}

// marginText says how far a model lies from the target and how noisy its
// measurement is: "mlp-d1-w64 measured accuracy 0.8612 (3 repeats, sd
// 0.0041), 0.0112 above the target 0.85, 4.7 standard errors".
func (e *engine) marginText(s *size, nz noise) string {
	v := e.g.toMetric(s.q)
	diff := v - *e.g.target
	side := "above"
	if diff < 0 {
		side = "below"
	}
	var how string
	switch n := reps(s); {
	case n >= 2 && !math.IsNaN(e.ownSD(s)):
		how = fmt.Sprintf("%d repeats, sd %s", n, e.fmtNoise(e.ownSD(s)))
	case s.rep.repeatsHeld == 1:
		how = "exact: its table holds one measurement"
	case !nz.known() && !s.rep.repeatable:
		how = "1 measurement; the noise is not measured"
	case nz.known():
		how = "1 measurement"
	default:
		how = "1 measurement; the noise is not measured yet"
	}
	text := fmt.Sprintf("%s measured %s %s (%s), %s %s the target %s", s.id(), e.g.metric, e.fmtNoise(v), how, e.fmtNoise(math.Abs(diff)), side, e.targetValue())
	if nz.known() && s.rep.repeatsHeld != 1 && nz.sd > 1e-12 {
		se := nz.sd / math.Sqrt(float64(reps(s)))
		text += fmt.Sprintf(", %.1f standard errors (noise sd %s, from the repeats of %s)", math.Abs(diff)/se, e.fmtNoise(nz.sd), plural(nz.models, "one model", "models"))
	}
	return text
}

// ownSD is the spread of a model's own repeats in the metric.
func (e *engine) ownSD(s *size) float64 {
	if e.g.metric == metricLoss {
		return s.rep.lossSD
	}
	return s.rep.accSD
}

// fmtNoise writes a figure of the noise's scale, finer than fmtQ: an
// accuracy, a margin or a spread to four decimals, a loss to four
// significant digits.
func (e *engine) fmtNoise(v float64) string {
	if e.g.metric == metricAccuracy {
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
