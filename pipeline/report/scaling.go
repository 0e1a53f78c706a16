package report

import (
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The charts of a compute_optimal search, drawn from the last decision's
// scaling column (tables.Scaling): the frontier N*(C) with its band, and
// IsoFLOP curves, loss against size along a few budgets.

// lastScaling is the newest decision's fitted law of loss against size
// and resource; nil when no decision carries one.
func (d *data) lastScaling() *tables.Scaling {
	for i := len(d.rounds) - 1; i >= 0; i-- {
		if s := d.rounds[i].Scaling; s != nil {
			return s
		}
	}
	return nil
}

// scalingCharts are the compute_optimal charts, none without a law.
func scalingCharts(d *data) []chart {
	sc := d.lastScaling()
	if sc == nil {
		return nil
	}
	return []chart{frontierChart(sc), isoFLOPChart(sc)}
}

// runSeries draws the runs in one colour and shape.
var runSeries = &series{key: "runs", label: "runs", color: seriesColors[0], shape: draw.CircleGlyph{}}

func costLabel(sc *tables.Scaling) string {
	if sc.Cost == "seconds" {
		return "compute, train seconds (log)"
	}
	return "compute, FLOPs (log)"
}

// frontierChart draws N*(C) with its band over the budgets, the runs at
// their cost and size, and the optimum at the budget.
func frontierChart(sc *tables.Scaling) chart {
	ch := chart{ID: "frontier", Title: "Compute-optimal size against compute", Wide: true}
	c := newCanvas(axisSpec{label: costLabel(sc), kind: logAxis, format: siNumber}, paramsAxis, wideSize)
	var xs, lo, hi []float64
	var line plotter.XYs
	for _, p := range sc.Frontier {
		xs, lo, hi = append(xs, p.C), append(lo, p.Lo), append(hi, p.Hi)
		line = append(line, plotter.XY{X: p.C, Y: p.N})
	}
	if len(xs) > 1 {
		c.band(xs, lo, hi)
	}
	c.line(line, curveColor, vg.Points(1.6), nil, true)
	var pts plotter.XYs
	var names []string
	for _, r := range sc.Runs {
		pts = append(pts, plotter.XY{X: r.C, Y: r.N})
		names = append(names, r.ID)
	}
	c.scatter(runSeries, pts, 0, c.size.glyph)
	if len(names) <= maxNamedPoints {
		c.names(pts, names)
	}
	c.vlimit(sc.Budget, "budget "+siNumber(sc.Budget))
	c.mark(sc.Budget, sc.NOpt.Value, "N* "+FormatParams(sc.NOpt.Value))
	ch.Caption = fmt.Sprintf("The line is the compute-optimal size N*(C) = G·(C/%s)^%s of the law %s fitted to the runs (points), the band its interval at each budget; N* at the budget is %s [%s, %s], with α = %s [%s, %s] and β = %s [%s, %s].",
		siNumber(sc.K), fmt3(sc.Exponent.Value), lawText(sc), FormatParams(sc.NOpt.Value), FormatParams(sc.NOpt.Lo), FormatParams(sc.NOpt.Hi),
		fmt3(sc.Alpha.Value), fmt3(sc.Alpha.Lo), fmt3(sc.Alpha.Hi), fmt3(sc.Beta.Value), fmt3(sc.Beta.Lo), fmt3(sc.Beta.Hi))
	if h := sc.Held; h != nil {
		ch.Caption += fmt.Sprintf(" At the budget, %s was predicted %s [%s, %s] from %d cheaper runs and measured %s.",
			h.ID, fmt3(h.Predicted.Value), fmt3(h.Predicted.Lo), fmt3(h.Predicted.Hi), h.FitRuns, fmt3(h.Measured))
	}
	svg, err := c.render(nil)
	ch.SVG, ch.Err = svg, errText(err)
	return ch
}

// isoFLOPChart draws the law's loss against size along budgets a factor 4
// apart up to the budget, each curve's minimum marked, and the runs.
func isoFLOPChart(sc *tables.Scaling) chart {
	ch := chart{ID: "isoflop", Title: "IsoFLOP curves: " + sc.Metric + " against size at fixed compute", Wide: true}
	c := newCanvas(paramsAxis, axisSpec{label: sc.Metric, kind: linearAxis, format: plainNumber}, wideSize)
	at := func(n, d float64) float64 {
		l := sc.E.Value + sc.A.Value*math.Pow(n, -sc.Alpha.Value) + sc.B.Value*math.Pow(d, -sc.Beta.Value)
		if sc.Metric == "accuracy" {
			return 1 - l
		}
		return l
	}
	var budgets []string
	for j := 3; j >= 0; j-- {
		cb := sc.Budget / math.Pow(4, float64(j))
		nopt := optimumAt(sc, cb)
		if !finite(nopt) {
			continue
		}
		var curve plotter.XYs
		for i := range 120 {
			n := nopt / 30 * math.Pow(900, float64(i)/119)
			curve = append(curve, plotter.XY{X: n, Y: at(n, cb/(sc.K*n))})
		}
		dashes := []vg.Length{vg.Points(5), vg.Points(3)}
		if j == 0 {
			dashes = nil
		}
		c.line(curve, curveColor, vg.Points(1.3), dashes, true)
		c.scatter(&series{color: frontColor, shape: draw.BoxGlyph{}}, plotter.XYs{{X: nopt, Y: at(nopt, cb/(sc.K*nopt))}}, 0, c.size.glyph*1.2)
		budgets = append(budgets, siNumber(cb))
	}
	var pts plotter.XYs
	for _, r := range sc.Runs {
		pts = append(pts, plotter.XY{X: r.N, Y: r.Value})
	}
	c.scatter(runSeries, pts, faded, c.size.glyph*0.9)
	ch.Caption = fmt.Sprintf("Each curve is the fitted law along one budget C = %s·N·D (%s; solid: the budget), its minimum, the compute-optimal size, marked by a square. The faded points are the runs, at their own budgets.",
		siNumber(sc.K), strings.Join(budgets, ", "))
	svg, err := c.render(nil)
	ch.SVG, ch.Err = svg, errText(err)
	return ch
}

// optimumAt is N*(C) of the law in the record, by the closed form
// N* = G·(C/k)^(β/(α+β)), G = (αA/(βB))^(1/(α+β)).
func optimumAt(sc *tables.Scaling, c float64) float64 {
	a, b := sc.Alpha.Value, sc.Beta.Value
	g := math.Pow(a*sc.A.Value/(b*sc.B.Value), 1/(a+b))
	return g * math.Pow(c/sc.K, b/(a+b))
}

func lawText(sc *tables.Scaling) string {
	return fmt.Sprintf("L = %s + %s/N^%s + %s/D^%s", fmt3(sc.E.Value), siNumber(sc.A.Value), fmt3(sc.Alpha.Value), siNumber(sc.B.Value), fmt3(sc.Beta.Value))
}
