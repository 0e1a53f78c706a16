package resize

import (
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/fit"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// decision is one round's verdict, as written to the decision port.
type decision struct {
	round                          int32
	status, action, strategy       string
	reason                         string
	chosen                         *size
	metric                         string
	target                         *float64
	measured, pred, predLo, predHi float64 // metric units; NaN when unknown
	fitOut                         *fitSummary
	fitPoints                      int
	fitRMSE, fitR2                 float64
	trusted                        bool
	costFit                        map[string]*fit.LogLog
	lo, hi, depth                  int32 // 0 when unknown
	trialsUsed                     int
	trialsLeft                     *int
	proposals                      []tables.Candidate
	front                          []string
	familyAnswers                  string // JSON; "" outside a catalog search
	scaling                        string // JSON tables.Scaling; "" outside compute_optimal
	confidence, tolerance          float64
}

// fitSummary is the fitted quality curve in the metric's units.
type fitSummary struct {
	qinf, qinfLo, qinfHi    float64
	a, aLo, aHi             float64
	alpha, alphaLo, alphaHi float64
}

func (d *decision) chosenID() string {
	if d.chosen == nil {
		return ""
	}
	return d.chosen.id()
}

// buildDecision returns the decision as one row of tables.DecisionSchema. The
// caller releases it.
func buildDecision(mem memory.Allocator, d *decision) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, tables.DecisionSchema)
	defer b.Release()
	col := func(name string) array.Builder {
		return b.Field(tables.DecisionSchema.FieldIndices(name)[0])
	}
	str := func(name, v string) { col(name).(*array.StringBuilder).Append(v) }
	optStr := func(name string, ok bool, v string) {
		if ok {
			str(name, v)
		} else {
			col(name).AppendNull()
		}
	}
	num := func(name string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			col(name).AppendNull()
		} else {
			col(name).(*array.Float64Builder).Append(v)
		}
	}
	i32 := func(name string, v int32, ok bool) {
		if ok {
			col(name).(*array.Int32Builder).Append(v)
		} else {
			col(name).AppendNull()
		}
	}
	col("round").(*array.Int32Builder).Append(d.round)
	str("status", d.status)
	str("action", d.action)
	str("strategy", d.strategy)
	optStr(tables.ColChosenCandidateID, d.chosen != nil, d.chosenID())
	if c := d.chosen; c != nil {
		str(tables.ColChosenName, c.rep.cand.Name)
		str(tables.ColChosenFamily, c.family)
	} else {
		col(tables.ColChosenName).AppendNull()
		col(tables.ColChosenFamily).AppendNull()
	}
	if c := d.chosen; c != nil {
		i32("chosen_width", c.width, true)
		col("chosen_params").(*array.Int64Builder).Append(c.params)
	} else {
		i32("chosen_width", 0, false)
		col("chosen_params").AppendNull()
	}
	str("reason", d.reason)
	str("metric", d.metric)
	if d.target != nil {
		num("target", *d.target)
	} else {
		num("target", math.NaN())
	}
	num("chosen_measured", d.measured)
	num("predicted_accuracy", d.pred)
	num("predicted_lo", d.predLo)
	num("predicted_hi", d.predHi)
	f := d.fitOut
	if f == nil {
		nan := math.NaN()
		f = &fitSummary{nan, nan, nan, nan, nan, nan, nan, nan, nan}
	}
	num("fit_q_inf", f.qinf)
	num("fit_q_inf_lo", f.qinfLo)
	num("fit_q_inf_hi", f.qinfHi)
	num("fit_a", f.a)
	num("fit_a_lo", f.aLo)
	num("fit_a_hi", f.aHi)
	num("fit_alpha", f.alpha)
	num("fit_alpha_lo", f.alphaLo)
	num("fit_alpha_hi", f.alphaHi)
	i32("fit_points", int32(d.fitPoints), true)
	if d.fitOut != nil {
		num("fit_rmse", d.fitRMSE)
		num("fit_r2", d.fitR2)
	} else {
		num("fit_rmse", math.NaN())
		num("fit_r2", math.NaN())
	}
	col("fit_trusted").(*array.BooleanBuilder).Append(d.trusted)
	for _, c := range []struct{ key, name string }{{CostLatency, "latency"}, {CostBytes, "bytes"}, {CostTrainTime, "train"}} {
		if lf := d.costFit[c.key]; lf != nil {
			num("fit_"+c.name+"_coef", lf.Coef)
			num("fit_"+c.name+"_exp", lf.Exp)
		} else {
			num("fit_"+c.name+"_coef", math.NaN())
			num("fit_"+c.name+"_exp", math.NaN())
		}
	}
	i32("bracket_lo_width", d.lo, d.lo > 0)
	i32("bracket_hi_width", d.hi, d.hi > 0)
	i32("search_depth", d.depth, d.depth > 0)
	i32("trials_used", int32(d.trialsUsed), true)
	if d.trialsLeft != nil {
		i32("trials_left", int32(*d.trialsLeft), true)
	} else {
		i32("trials_left", 0, false)
	}
	i32("proposals", int32(len(d.proposals)), true)
	str("pareto_front", strings.Join(d.front, ","))
	optStr(tables.ColFamilyAnswers, d.familyAnswers != "", d.familyAnswers)
	num("confidence", d.confidence)
	num("tolerance", d.tolerance)
	optStr(tables.ColScaling, d.scaling != "", d.scaling)
	return b.NewRecordBatch()
}
