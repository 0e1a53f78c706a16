package resize

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Quality metrics.
const (
	metricAccuracy = "accuracy"
	metricLoss     = "loss"
)

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
	// rows is the dataset's row count, when the requirements know it.
	rows *int64
}

func goalsFrom(s settings, req *tables.Requirements, trials []trial) goals {
	var g goals
	if req != nil {
		g.task, g.features, g.classes, g.rows = req.Task, req.Features, req.Classes, req.Rows
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
	// pruned counts the trials of the size a training stage's pruner
	// stopped (low-fidelity evidence: see pruned.go); prunedQ is the best
	// quality they reported (NaN when none did).
	pruned   int
	prunedQ  float64
	costFail string // the first cost limit the size breaks, "" if none
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
			s = &size{family: k.family, depth: k.depth, width: k.width, params: t.cand.Params, rep: t, q: math.NaN(), prunedQ: math.NaN()}
			s.costFail = costFailure(t, s.params, g)
			by[k] = s
			out = append(out, s)
		}
		q := g.quality(t)
		if t.status == trialPruned {
			s.pruned++
			if !math.IsNaN(q) && !(q <= s.prunedQ) {
				s.prunedQ = q
			}
		}
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
		return fmt.Sprintf("latency p95 %s ms exceeds max_latency_ms = %g", fmtAbove(t.latencyMs, *g.maxLatency), *g.maxLatency)
	case g.maxBytes != nil && t.modelBytes > float64(*g.maxBytes):
		return fmt.Sprintf("%.0f model bytes exceed max_model_bytes = %d", t.modelBytes, *g.maxBytes)
	case g.maxTrain != nil && t.trainSecs > *g.maxTrain:
		return fmt.Sprintf("training took %s s, over max_train_seconds = %g", fmtAbove(t.trainSecs, *g.maxTrain), *g.maxTrain)
	}
	return ""
}

// reaches reports whether a size's own measurements meet the quality
// requirements: the target, and max_loss when accuracy is the metric.
func (g goals) reaches(s *size) bool {
	if !s.known {
		return false
	}
	if g.maxLoss != nil && !(s.rep.loss <= *g.maxLoss) {
		return false
	}
	return g.target == nil || s.q >= g.tq
}

// meets reports whether a size meets every requirement as measured on the
// model itself: quality and every cost. Nothing is inferred from other
// models: quality and costs need not grow with size.
func (g goals) meets(s *size) bool { return g.reaches(s) && s.costFail == "" }
