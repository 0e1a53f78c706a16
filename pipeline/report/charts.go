package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// chartSet builds every chart of the report.
func chartSet(d *data) []chart {
	ss := seriesOf(d)
	var out []chart
	out = append(out, qualityChart(d, ss))
	costs := costAxes()
	for _, c := range costs {
		out = append(out, costChart(d, ss, c))
	}
	for _, c := range costs {
		out = append(out, paretoChart(d, ss, c))
	}
	return append(out, scalingCharts(d)...)
}

// costAxis is one cost a model has, against size and against quality.
type costAxis struct {
	id, name, short string
	axis            axisSpec
	value           func(*trial) float64
	limit           func(*requirements) float64
	limitName       string
	fit             func(*round) (coef, exp float64)
}

func costAxes() []costAxis {
	return []costAxis{{
		id: "latency", name: "Latency p95", short: "latency p95",
		axis:  axisSpec{label: "p95 latency per sample, ms (log)", kind: logAxis, format: plainNumber},
		value: func(t *trial) float64 { return t.LatencyP95 },
		limit: func(r *requirements) float64 { return r.MaxLatencyMs }, limitName: tables.ColMaxLatencyMs,
		fit: func(r *round) (float64, float64) { return r.LatencyCoef, r.LatencyExp },
	}, {
		id: "bytes", name: "Model size", short: "model bytes",
		axis:  axisSpec{label: "model size, bytes (log)", kind: logAxis, format: siNumber},
		value: func(t *trial) float64 { return t.ModelBytes },
		limit: func(r *requirements) float64 { return r.MaxModelBytes }, limitName: tables.ColMaxModelBytes,
		fit: func(r *round) (float64, float64) { return r.BytesCoef, r.BytesExp },
	}, {
		id: "train", name: "Train time", short: "train time",
		axis:  axisSpec{label: "train time, s (log)", kind: logAxis, format: plainNumber},
		value: func(t *trial) float64 { return t.TrainSeconds },
		limit: func(r *requirements) float64 { return r.MaxTrainSeconds }, limitName: tables.ColMaxTrainSeconds,
		fit: func(r *round) (float64, float64) { return r.TrainCoef, r.TrainExp },
	}}
}

// paramsAxis is the size axis of every chart against size: the real
// parameter count on a log scale, 100 to 10B on one axis if need be.
var paramsAxis = axisSpec{label: "parameters (log)", kind: logAxis, format: FormatParams}

func (d *data) qualityAxis() axisSpec {
	if d.metric == metricLoss {
		return axisSpec{label: "test loss (lower is better)", kind: linearAxis, format: plainNumber}
	}
	return axisSpec{label: "test accuracy", kind: linearAxis, format: plainNumber}
}

// clampQuality keeps an accuracy axis within [0, 1] and a loss axis at or
// above 0: a fitted curve or a band may run past what the metric can be.
func (d *data) clampQuality(lo, hi float64) (float64, float64) {
	if d.metric == metricAccuracy {
		lo = math.Max(lo, 0)
		if hi > 1 {
			hi = 1 + math.Min(hi-1, 0.01)
		}
	} else {
		lo = math.Max(lo, 0)
	}
	return lo, hi
}

func (d *data) targetLabel() string {
	t := d.target()
	if !finite(t) {
		return ""
	}
	if d.metric == metricLoss {
		return tables.ColMaxLoss + " " + plainNumber(roundSig(t, 4))
	}
	return tables.ColMinAccuracy + " " + plainNumber(roundSig(t, 4))
}

func limitLabel(name string, v float64, format func(float64) string) string {
	return name + " " + format(roundSig(v, 4))
}

func (d *data) chosenLabel() string {
	if d.chosen == nil {
		return ""
	}
	return "chosen: " + d.chosen.pointLabel()
}

// maxNamedPoints is how many points the quality chart names beside them;
// more would cover one another, and the table names them all.
const maxNamedPoints = 20

func qualityChart(d *data, ss []*series) chart {
	ch := chart{ID: "quality", Title: "Quality against size", Wide: true}
	c := newCanvas(paramsAxis, d.qualityAxis(), wideSize)
	c.calloutUpLeft = d.metric == metricAccuracy
	q := func(t *trial) float64 { return t.quality(d.metric) }
	params := func(t *trial) float64 { return t.Params }

	// The curve spans the sizes tried and a little beyond, sampled evenly
	// in log size so its bend is smooth.
	var lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, t := range s.trials {
			if t.Params > 0 && finite(q(t)) {
				lo, hi = math.Min(lo, t.Params), math.Max(hi, t.Params)
			}
		}
	}
	fr := d.lastFit()
	var caption []string
	if fr != nil && lo <= hi {
		n := 160
		xs := make([]float64, n)
		ys := make([]float64, n)
		blo := make([]float64, n)
		bhi := make([]float64, n)
		a, b := math.Log(lo/1.5), math.Log(hi*1.5)
		for i := range n {
			x := math.Exp(a + (b-a)*float64(i)/float64(n-1))
			xs[i], ys[i] = x, fr.curve(x)
			blo[i], bhi[i] = fr.bandAt(x)
		}
		drawBand := fr.Trusted && fr.hasBand()
		if drawBand {
			c.band(xs, blo, bhi)
		}
		var dashes []vg.Length
		if !fr.Trusted {
			dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		var curve plotter.XYs
		for i := range xs {
			curve = append(curve, plotter.XY{X: xs[i], Y: ys[i]})
		}
		c.line(curve, curveColor, vg.Points(1.6), dashes, false)
		caption = append(caption, "The line is the fitted curve "+fr.formula()+" from round "+strconv.Itoa(fr.Round)+
			fmt.Sprintf(" (%s points, R² %s).", plainNumber(fr.FitPoints), fmt2(fr.FitR2)))
		switch {
		case drawBand:
			caption = append(caption, fmt.Sprintf("The shaded band holds every curve whose three parameters lie within their %s intervals.", confText(fr.Confidence)))
		case !fr.Trusted:
			caption = append(caption, "The resize stage did not trust this fit (dashed), so the decision rests on measured values and no band is drawn.")
		default:
			caption = append(caption, "The fit carries no parameter intervals, so no band is drawn.")
		}
	} else {
		caption = append(caption, "No curve was fitted in this run (too few sizes, or no resize stage), so only the measurements are shown.")
	}
	var named plotter.XYs
	var names []string
	for _, s := range ss {
		xys, kept := c.points(s.trials, params, q)
		c.scatter(s, xys, 0, c.size.glyph)
		for i, t := range kept {
			if t != d.chosen {
				named = append(named, xys[i])
				names = append(names, t.pointLabel())
			}
		}
	}
	if len(names) <= maxNamedPoints {
		c.names(named, names)
	}
	if t := d.target(); finite(t) {
		c.hlimit(t, d.targetLabel())
	}
	if v := d.limit(func(r *requirements) float64 { return r.MaxParams }); finite(v) {
		c.vlimit(v, limitLabel(tables.ColMaxParams, v, FormatParams))
	}
	if d.chosen != nil {
		if last := d.last(); last != nil && finite(last.PredLo) && finite(last.PredHi) && d.chosen.ID == last.Chosen {
			c.errorBar(d.chosen.Params, last.PredLo, last.PredHi)
			caption = append(caption, fmt.Sprintf("The bar at the chosen model is the fit's %s interval there: %s to %s.",
				confText(last.Confidence), fmtQuality(d.metric, math.Min(last.PredLo, last.PredHi)), fmtQuality(d.metric, math.Max(last.PredLo, last.PredHi))))
		}
		c.mark(d.chosen.Params, q(d.chosen), d.chosenLabel())
	}
	ch.Caption = strings.Join(caption, " ")
	svg, err := c.render(d.clampQuality)
	ch.SVG, ch.Err = svg, errText(err)
	return ch
}

func costChart(d *data, ss []*series, cost costAxis) chart {
	ch := chart{ID: "cost-" + cost.id, Title: cost.name + " against size"}
	c := newCanvas(paramsAxis, cost.axis, smallSize)
	params := func(t *trial) float64 { return t.Params }
	n := 0
	for _, s := range ss {
		xys, _ := c.points(s.trials, params, cost.value)
		n += len(xys)
		c.scatter(s, xys, 0, c.size.glyph)
	}
	if last := d.last(); last != nil {
		if coef, exp := cost.fit(last); finite(coef) && finite(exp) && coef > 0 && len(c.xs) > 0 {
			lo, hi := minMax(c.xs)
			var xys plotter.XYs
			for i := range 40 {
				x := lo * math.Pow(hi/lo, float64(i)/39)
				xys = append(xys, plotter.XY{X: x, Y: coef * math.Pow(x, exp)})
			}
			c.line(xys, curveColor, vg.Points(1), []vg.Length{vg.Points(2), vg.Points(2)}, false)
			ch.Caption = fmt.Sprintf("Dotted: the log-log fit %s ≈ %s·N^%s.", cost.short, fmtSig(coef), fmt2(exp))
		}
	}
	if v := d.limit(cost.limit); finite(v) {
		c.hlimit(v, limitLabel(cost.limitName, v, cost.axis.format))
	}
	if v := d.limit(func(r *requirements) float64 { return r.MaxParams }); finite(v) {
		c.vlimit(v, limitLabel(tables.ColMaxParams, v, FormatParams))
	}
	if d.chosen != nil {
		c.mark(d.chosen.Params, cost.value(d.chosen), "")
	}
	if n == 0 {
		ch.Err = "No trial recorded a " + cost.short + "."
		return ch
	}
	svg, err := c.render(nil)
	ch.SVG, ch.Err = svg, errText(err)
	return ch
}

// front returns the trials no other trial beats on both cost (lower) and
// quality, ordered by cost.
func front(ts []*trial, cost, quality func(*trial) float64, lowerBetter bool) []*trial {
	var pts []*trial
	for _, t := range ts {
		if finite(cost(t)) && finite(quality(t)) && cost(t) > 0 {
			pts = append(pts, t)
		}
	}
	better := func(a, b float64) bool {
		if lowerBetter {
			return a < b
		}
		return a > b
	}
	sort.SliceStable(pts, func(i, j int) bool {
		ci, cj := cost(pts[i]), cost(pts[j])
		if ci != cj {
			return ci < cj
		}
		return better(quality(pts[i]), quality(pts[j]))
	})
	var out []*trial
	for _, t := range pts {
		if len(out) == 0 || better(quality(t), quality(out[len(out)-1])) {
			out = append(out, t)
		}
	}
	return out
}

func paretoChart(d *data, ss []*series, cost costAxis) chart {
	ch := chart{ID: "pareto-" + cost.id, Title: "Pareto front: quality against " + strings.ToLower(cost.name)}
	c := newCanvas(cost.axis, d.qualityAxis(), smallSize)
	q := func(t *trial) float64 { return t.quality(d.metric) }
	var all []*trial
	for _, s := range ss {
		all = append(all, s.trials...)
	}
	fr := front(all, cost.value, q, d.metric == metricLoss)
	onFront := map[*trial]bool{}
	for _, t := range fr {
		onFront[t] = true
	}
	// The front as a staircase: each step holds the best quality reached
	// at that cost or less.
	var stairs plotter.XYs
	for i, t := range fr {
		if i > 0 {
			stairs = append(stairs, plotter.XY{X: cost.value(t), Y: q(fr[i-1])})
		}
		stairs = append(stairs, plotter.XY{X: cost.value(t), Y: q(t)})
	}
	c.line(stairs, frontColor, vg.Points(1.4), nil, false)
	n := 0
	for _, s := range ss {
		var on, off []*trial
		for _, t := range s.trials {
			if onFront[t] {
				on = append(on, t)
			} else {
				off = append(off, t)
			}
		}
		xys, _ := c.points(off, cost.value, q)
		c.scatter(s, xys, faded, c.size.glyph*0.85)
		n += len(xys)
		xys, _ = c.points(on, cost.value, q)
		c.scatter(s, xys, 0, c.size.glyph*1.1)
		n += len(xys)
	}
	if t := d.target(); finite(t) {
		c.hlimit(t, d.targetLabel())
	}
	if v := d.limit(cost.limit); finite(v) {
		c.vlimit(v, limitLabel(cost.limitName, v, cost.axis.format))
	}
	if d.chosen != nil {
		c.mark(cost.value(d.chosen), q(d.chosen), "")
	}
	if n == 0 {
		ch.Err = "No trial recorded both " + d.metric + " and " + cost.short + "."
		return ch
	}
	names := make([]string, len(fr))
	for i, t := range fr {
		names[i] = t.pointLabel()
	}
	ch.Caption = fmt.Sprintf("On the front (bold, joined): %s. Faded points are beaten by a cheaper, better model.", strings.Join(names, ", "))
	svg, err := c.render(d.clampQuality)
	ch.SVG, ch.Err = svg, errText(err)
	return ch
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	if err == errNoData {
		return "No trial has values for this chart."
	}
	return "This chart could not be drawn: " + err.Error()
}

// hasBand reports whether the round has intervals for all three
// parameters.
func (r *round) hasBand() bool {
	for _, v := range []float64{r.QInfLo, r.QInfHi, r.ALo, r.AHi, r.AlphaLo, r.AlphaHi} {
		if !finite(v) {
			return false
		}
	}
	return true
}

// bandAt returns the least and greatest q(n) over the box of the three
// parameter intervals. q is monotone in each parameter at fixed n, so the
// extremes lie at the box's corners. The box ignores how the parameters
// covary, so the band is wider than the bootstrap's own pointwise band:
// the safe side for a picture that promises "the curve lies in here".
func (r *round) bandAt(n float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, q := range []float64{r.QInfLo, r.QInfHi} {
		for _, a := range []float64{r.ALo, r.AHi} {
			for _, al := range []float64{r.AlphaLo, r.AlphaHi} {
				v := curveAt(r.Metric, q, a, al, n)
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	return lo, hi
}

func (r *round) formula() string {
	sign := "−"
	if r.Metric == metricLoss {
		sign = "+"
	}
	name := "accuracy"
	if r.Metric == metricLoss {
		name = "loss"
	}
	return fmt.Sprintf("%s(N) = %s %s %s·N^−%s", name, fmtSig(r.QInf), sign, fmtSig(r.A), fmt2(r.Alpha))
}
