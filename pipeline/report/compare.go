package report

import (
	"fmt"
	"html/template"
	"image/color"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// CompareColors are the colours CompareChart gives the runs, in order (the
// series palette, so a run reads as a series does in its own report).
func CompareColors() []string {
	out := make([]string, len(seriesColors))
	for i, c := range seriesColors {
		out[i] = fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B)
	}
	return out
}

// CompareChart draws the runs of views on one quality-against-size chart:
// each run's measured trials and its last fitted curve, in the run's
// colour (CompareColors). The runs must measure one metric to share the
// axis: the first run's metric is the chart's, and a run measuring
// another is left out and named in the caption.
func CompareChart(views []*View, labels []string) (svg template.HTML, caption string, err error) {
	if len(views) == 0 {
		return "", "", fmt.Errorf("no runs to compare")
	}
	metric := views[0].d.metric
	c := newCanvas(paramsAxis, views[0].d.qualityAxis(), wideSize)
	var left []string
	for i, v := range views {
		d := v.d
		label := v.pg.RunID
		if i < len(labels) {
			label = labels[i]
		}
		if d.metric != metric {
			left = append(left, fmt.Sprintf("%s (it measures %s)", label, d.metric))
			continue
		}
		col := seriesColors[i%len(seriesColors)]
		s := &series{label: label, color: col, shape: draw.CircleGlyph{}}
		var lo, hi = math.Inf(1), math.Inf(-1)
		for j := range d.trials {
			t := &d.trials[j]
			if t.ok() && !t.Outranked {
				s.trials = append(s.trials, t)
				if t.Params > 0 && finite(t.quality(metric)) {
					lo, hi = math.Min(lo, t.Params), math.Max(hi, t.Params)
				}
			}
		}
		xys, _ := c.points(s.trials, func(t *trial) float64 { return t.Params }, func(t *trial) float64 { return t.quality(metric) })
		c.scatter(s, xys, 0, c.size.glyph)
		if fr := d.lastFit(); fr != nil && lo <= hi {
			const n = 120
			var curve plotter.XYs
			a, b := math.Log(lo/1.5), math.Log(hi*1.5)
			for k := range n {
				x := math.Exp(a + (b-a)*float64(k)/float64(n-1))
				curve = append(curve, plotter.XY{X: x, Y: fr.curve(x)})
			}
			var dashes []vg.Length
			if !fr.Trusted {
				dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			}
			c.line(curve, color.NRGBA{col.R, col.G, col.B, 0xff}, vg.Points(2), dashes, false)
		}
		if t := d.target(); finite(t) && i == 0 {
			c.hlimit(t, d.targetLabel())
		}
		if d.chosen != nil {
			c.mark(d.chosen.Params, d.chosen.quality(metric), "")
		}
	}
	caption = "Each run's trials and its last fitted curve (dashed when the run did not trust it), in the run's colour; a ring marks each run's chosen model."
	if len(left) > 0 {
		caption += fmt.Sprintf(" Not drawn, as they measure another quality than %s: %v.", metric, left)
	}
	svg, err = c.render(views[0].d.clampQuality)
	return svg, caption, err
}
