package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The charts are drawn server-side by gonum/plot into SVG and inlined in the
// page, so the file needs no script library and no network to show them.
// Their text is set in Liberation Sans, which the page embeds once
// (fontFace), so labels measured by gonum fit the same on every machine.

var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// Colours: one per depth (the Tableau 10 palette, told apart by people with
// the common colour-vision deficiencies), grey for non-MLP baselines.
var (
	depthColors = []color.NRGBA{
		{0x4e, 0x79, 0xa7, 0xff}, {0xf2, 0x8e, 0x2b, 0xff}, {0x59, 0xa1, 0x4f, 0xff},
		{0xb0, 0x7a, 0xa1, 0xff}, {0x76, 0xb7, 0xb2, 0xff}, {0xed, 0xc9, 0x48, 0xff},
		{0x9c, 0x75, 0x5f, 0xff}, {0xff, 0x9d, 0xa7, 0xff},
	}
	baselineColor = color.NRGBA{0x7f, 0x7f, 0x7f, 0xff}
	limitColor    = color.NRGBA{0xdc, 0x26, 0x26, 0xff}
	curveColor    = color.NRGBA{0x1e, 0x29, 0x3b, 0xff}
	bandColor     = color.NRGBA{0x64, 0x74, 0x8b, 0x40}
	chosenColor   = color.NRGBA{0x11, 0x18, 0x27, 0xff}
	frontColor    = color.NRGBA{0x0f, 0x76, 0x6e, 0xff}
	gridColor     = color.NRGBA{0xe5, 0xe7, 0xeb, 0xff}
	axisColor     = color.NRGBA{0x6b, 0x72, 0x80, 0xff}
	faded         = uint8(0x55)
)

// series is the trials of one family and depth, drawn in one colour and
// shape on every chart and listed once in the page's legend.
type series struct {
	key    string
	label  string
	color  color.NRGBA
	shape  draw.GlyphDrawer
	trials []*trial
}

func glyphFor(i int) draw.GlyphDrawer {
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}
	return shapes[i%len(shapes)]
}

// seriesOf groups the trials that finished with a measurement.
func seriesOf(d *data) []*series {
	byKey := map[string]*series{}
	var out []*series
	for i := range d.trials {
		t := &d.trials[i]
		if !t.ok() {
			continue
		}
		key := t.Family
		label := t.Family
		if t.Family == "mlp" || (t.Family == "" && t.Depth > 0) {
			key = fmt.Sprintf("mlp/%d", t.Depth)
			label = fmt.Sprintf("MLP, depth %d", t.Depth)
		} else if label == "" {
			label = "other"
		}
		s := byKey[key]
		if s == nil {
			s = &series{key: key, label: label}
			byKey[key] = s
			out = append(out, s)
		}
		s.trials = append(s.trials, t)
	}
	sort.SliceStable(out, func(i, j int) bool {
		mi, mj := strings.HasPrefix(out[i].key, "mlp/"), strings.HasPrefix(out[j].key, "mlp/")
		if mi != mj {
			return mi
		}
		return out[i].key < out[j].key
	})
	mlp := 0
	for _, s := range out {
		if strings.HasPrefix(s.key, "mlp/") {
			s.color, s.shape = depthColors[mlp%len(depthColors)], glyphFor(mlp)
			mlp++
		} else {
			s.color, s.shape = baselineColor, draw.RingGlyph{}
		}
	}
	return out
}

// chart is one rendered figure.
type chart struct {
	ID      string
	Title   string
	Caption string
	SVG     template.HTML
	Wide    bool
	Err     string
}

// axisKind chooses a scale and tick labels.
type axisKind int

const (
	linearAxis axisKind = iota
	logAxis
)

// axisSpec describes one axis of a chart.
type axisSpec struct {
	label string
	kind  axisKind
	// format writes a tick label.
	format func(float64) string
}

// limitLine is a requirement drawn across a chart.
type limitLine struct {
	value float64
	label string
}

// canvas collects plotters and the data range they need, so the axes can
// be fitted to the data, the limits near it and nothing else.
type canvas struct {
	p            *plot.Plot
	x, y         axisSpec
	xs, ys       []float64 // data the axes must show
	hlims, vlims []limitLine
	layers       []plot.Plotter
	err          error
}

func newCanvas(x, y axisSpec) *canvas {
	p := plot.New()
	styleText(p)
	p.BackgroundColor = color.White
	p.X.Label.Text, p.Y.Label.Text = x.label, y.label
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.LineStyle.Color = axisColor
		ax.LineStyle.Width = vg.Points(0.6)
		ax.Tick.LineStyle.Color = axisColor
		ax.Tick.LineStyle.Width = vg.Points(0.6)
		ax.Tick.Length = vg.Points(4)
		ax.Padding = vg.Points(2)
	}
	p.X.Label.Padding = vg.Points(4)
	p.Y.Label.Padding = vg.Points(4)
	return &canvas{p: p, x: x, y: y}
}

// styleText sets every text of the plot in the embedded sans face.
func styleText(p *plot.Plot) {
	set := func(f *font.Font, size vg.Length) {
		*f = chartFont
		f.Size = size
	}
	set(&p.Title.TextStyle.Font, 11)
	set(&p.X.Label.TextStyle.Font, 10)
	set(&p.Y.Label.TextStyle.Font, 10)
	set(&p.X.Tick.Label.Font, 9)
	set(&p.Y.Tick.Label.Font, 9)
	set(&p.Legend.TextStyle.Font, 9)
	p.X.Label.TextStyle.Color = color.NRGBA{0x37, 0x41, 0x51, 0xff}
	p.Y.Label.TextStyle.Color = color.NRGBA{0x37, 0x41, 0x51, 0xff}
	p.X.Tick.Label.Color = axisColor
	p.Y.Tick.Label.Color = axisColor
}

func usable(kind axisKind, v float64) bool {
	return finite(v) && (kind == linearAxis || v > 0)
}

// points returns the (x, y) pairs both axes can show.
func (c *canvas) points(ts []*trial, x, y func(*trial) float64) (plotter.XYs, []*trial) {
	var xys plotter.XYs
	var kept []*trial
	for _, t := range ts {
		xv, yv := x(t), y(t)
		if usable(c.x.kind, xv) && usable(c.y.kind, yv) {
			xys = append(xys, plotter.XY{X: xv, Y: yv})
			kept = append(kept, t)
		}
	}
	return xys, kept
}

func (c *canvas) add(p plot.Plotter, err error) {
	if err != nil {
		if c.err == nil {
			c.err = err
		}
		return
	}
	c.layers = append(c.layers, p)
}

// scatter draws one series' points.
func (c *canvas) scatter(s *series, xys plotter.XYs, alpha uint8, radius vg.Length) {
	if len(xys) == 0 {
		return
	}
	sc, err := plotter.NewScatter(xys)
	if err == nil {
		col := s.color
		if alpha != 0 {
			col.A = alpha
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: col, Radius: radius, Shape: s.shape}
	}
	c.add(sc, err)
	for _, p := range xys {
		c.xs, c.ys = append(c.xs, p.X), append(c.ys, p.Y)
	}
}

// line draws a polyline; show adds its points to the range the axes cover.
func (c *canvas) line(xys plotter.XYs, col color.Color, width vg.Length, dashes []vg.Length, show bool) {
	var keep plotter.XYs
	for _, p := range xys {
		if usable(c.x.kind, p.X) && usable(c.y.kind, p.Y) {
			keep = append(keep, p)
		}
	}
	if len(keep) < 2 {
		return
	}
	l, err := plotter.NewLine(keep)
	if err == nil {
		l.LineStyle = draw.LineStyle{Color: col, Width: width, Dashes: dashes}
	}
	c.add(l, err)
	if show {
		for _, p := range keep {
			c.xs, c.ys = append(c.xs, p.X), append(c.ys, p.Y)
		}
	}
}

// band fills the area between lo and hi, both sampled at the same xs.
func (c *canvas) band(xs, lo, hi []float64) {
	var poly plotter.XYs
	for i, x := range xs {
		if usable(c.x.kind, x) && usable(c.y.kind, lo[i]) && usable(c.y.kind, hi[i]) {
			poly = append(poly, plotter.XY{X: x, Y: hi[i]})
		}
	}
	for i := len(xs) - 1; i >= 0; i-- {
		if usable(c.x.kind, xs[i]) && usable(c.y.kind, lo[i]) && usable(c.y.kind, hi[i]) {
			poly = append(poly, plotter.XY{X: xs[i], Y: lo[i]})
		}
	}
	if len(poly) < 4 {
		return
	}
	pg, err := plotter.NewPolygon(poly)
	if err == nil {
		pg.Color = bandColor
		pg.LineStyle.Width = 0
	}
	c.add(pg, err)
}

// mark rings a point and names it.
func (c *canvas) mark(x, y float64, label string) {
	if !usable(c.x.kind, x) || !usable(c.y.kind, y) {
		return
	}
	xy := plotter.XYs{{X: x, Y: y}}
	sc, err := plotter.NewScatter(xy)
	if err == nil {
		sc.GlyphStyle = draw.GlyphStyle{Color: chosenColor, Radius: vg.Points(6.5), Shape: thickRing{width: vg.Points(1.8)}}
	}
	c.add(sc, err)
	if label != "" {
		lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: []string{label}})
		if err == nil {
			for i := range lb.TextStyle {
				lb.TextStyle[i].Font = chartFont
				lb.TextStyle[i].Font.Size = 9
				lb.TextStyle[i].Color = chosenColor
				lb.TextStyle[i].Handler = c.p.TextHandler
			}
			lb.Offset = vg.Point{X: vg.Points(8), Y: vg.Points(5)}
		}
		c.add(lb, err)
	}
	c.xs, c.ys = append(c.xs, x), append(c.ys, y)
}

// thickRing is a ring glyph with its own line width, to stand out from the
// data's glyphs.
type thickRing struct{ width vg.Length }

func (r thickRing) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: r.width})
	var p vg.Path
	p.Move(vg.Point{X: pt.X + sty.Radius, Y: pt.Y})
	p.Arc(pt, sty.Radius, 0, 2*math.Pi)
	p.Close()
	c.Stroke(p)
}

// errorBar draws the interval [lo, hi] at x.
func (c *canvas) errorBar(x, lo, hi float64) {
	if !usable(c.x.kind, x) || !usable(c.y.kind, lo) || !usable(c.y.kind, hi) {
		return
	}
	mid := (lo + hi) / 2
	eb, err := plotter.NewYErrorBars(errPoint{x: x, y: mid, lo: mid - lo, hi: hi - mid})
	if err == nil {
		eb.LineStyle = draw.LineStyle{Color: chosenColor, Width: vg.Points(1.2)}
		eb.CapWidth = vg.Points(7)
	}
	c.add(eb, err)
}

type errPoint struct{ x, y, lo, hi float64 }

func (e errPoint) Len() int                      { return 1 }
func (e errPoint) XY(int) (float64, float64)     { return e.x, e.y }
func (e errPoint) YError(int) (float64, float64) { return e.lo, e.hi }

// hlimit and vlimit draw a requirement as a dashed line across the chart.
func (c *canvas) hlimit(v float64, label string) {
	if usable(c.y.kind, v) {
		c.hlims = append(c.hlims, limitLine{v, label})
	}
}

func (c *canvas) vlimit(v float64, label string) {
	if usable(c.x.kind, v) {
		c.vlims = append(c.vlims, limitLine{v, label})
	}
}

// axisRange returns the range that shows the data with a margin, and the
// limits too when they are near enough not to squash the data: a limit
// far beyond the data is named at the edge instead.
func axisRange(kind axisKind, data []float64, limits []limitLine) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, v := range data {
		if usable(kind, v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if lo > hi {
		// No data: show the limits alone.
		for _, l := range limits {
			lo, hi = math.Min(lo, l.value), math.Max(hi, l.value)
		}
		if lo > hi {
			return 0, 0, false
		}
	}
	for _, l := range limits {
		if near(kind, lo, hi, l.value) {
			lo, hi = math.Min(lo, l.value), math.Max(hi, l.value)
		}
	}
	if kind == logAxis {
		llo, lhi := math.Log10(lo), math.Log10(hi)
		pad := math.Max((lhi-llo)*0.06, 0.15)
		return math.Pow(10, llo-pad), math.Pow(10, lhi+pad), true
	}
	pad := (hi - lo) * 0.08
	if pad == 0 {
		pad = math.Max(math.Abs(hi)*0.05, 0.01)
	}
	return lo - pad, hi + pad, true
}

// near reports whether v is close enough to [lo, hi] to widen the axis for
// it: within the data's own span (linear) or two decades (log).
func near(kind axisKind, lo, hi, v float64) bool {
	if v >= lo && v <= hi {
		return true
	}
	if kind == logAxis {
		span := math.Max(math.Log10(hi)-math.Log10(lo), 0.5)
		d := math.Max(math.Log10(lo)-math.Log10(v), math.Log10(v)-math.Log10(hi))
		return d <= math.Max(2, span)
	}
	span := math.Max(hi-lo, math.Abs(hi)*0.1)
	return math.Max(lo-v, v-hi) <= span
}

// render fits the axes, draws the limits and returns the SVG.
func (c *canvas) render(w, h vg.Length, clampY func(lo, hi float64) (float64, float64)) (template.HTML, error) {
	if c.err != nil {
		return "", c.err
	}
	xlo, xhi, okx := axisRange(c.x.kind, c.xs, c.vlims)
	ylo, yhi, oky := axisRange(c.y.kind, c.ys, c.hlims)
	if !okx || !oky {
		return "", errNoData
	}
	if clampY != nil {
		ylo, yhi = clampY(ylo, yhi)
	}
	p := c.p
	for _, a := range []struct {
		ax   *plot.Axis
		spec axisSpec
	}{{&p.X, c.x}, {&p.Y, c.y}} {
		if a.spec.kind == logAxis {
			a.ax.Scale = plot.LogScale{}
		}
		a.ax.Tick.Marker = ticker{kind: a.spec.kind, format: a.spec.format}
	}
	grid := plotter.NewGrid()
	grid.Vertical = draw.LineStyle{Color: gridColor, Width: vg.Points(0.5)}
	grid.Horizontal = draw.LineStyle{Color: gridColor, Width: vg.Points(0.5)}
	p.Add(grid)
	p.Add(c.layers...)

	// Limits go on top, labelled at the chart's edge; one beyond the
	// shown range gets an arrow in its label instead of a line.
	var texts plotter.XYLabels
	var styles []labelStyle
	for _, l := range c.hlims {
		txt := l.label
		y := l.value
		switch {
		case y > yhi:
			txt, y = "↑ "+txt, yhi
		case y < ylo:
			txt, y = "↓ "+txt, ylo
		default:
			c.limitSegment(plotter.XYs{{X: xlo, Y: y}, {X: xhi, Y: y}})
		}
		texts.XYs = append(texts.XYs, plotter.XY{X: xhi, Y: y})
		texts.Labels = append(texts.Labels, txt)
		styles = append(styles, labelStyle{xalign: draw.XRight, yalign: draw.YBottom, dx: -3, dy: 2})
	}
	for _, l := range c.vlims {
		txt := l.label
		x := l.value
		switch {
		case x > xhi:
			txt, x = txt+" →", xhi
		case x < xlo:
			txt, x = "← "+txt, xlo
		default:
			c.limitSegment(plotter.XYs{{X: x, Y: ylo}, {X: x, Y: yhi}})
		}
		texts.XYs = append(texts.XYs, plotter.XY{X: x, Y: yhi})
		texts.Labels = append(texts.Labels, txt)
		xa := draw.XRight
		dx := vg.Length(-3)
		if x <= xlo {
			xa, dx = draw.XLeft, 3
		}
		styles = append(styles, labelStyle{xalign: xa, yalign: draw.YTop, dx: dx, dy: -3})
	}
	if len(texts.Labels) > 0 {
		lb, err := plotter.NewLabels(texts)
		if err != nil {
			return "", err
		}
		for i := range lb.TextStyle {
			st := &lb.TextStyle[i]
			st.Font = chartFont
			st.Font.Size = 8.5
			st.Color = limitColor
			st.Handler = p.TextHandler
			st.XAlign, st.YAlign = styles[i].xalign, styles[i].yalign
		}
		p.Add(perLabelOffset{lb, styles})
	}
	// Plot.Add widens the axes to every layer's data (a curve sampled past
	// the trials, a band); the ranges chosen above win.
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xlo, xhi, ylo, yhi

	cv := vgsvg.New(w, h)
	p.Draw(draw.New(cv))
	var buf bytes.Buffer
	if _, err := cv.WriteTo(&buf); err != nil {
		return "", err
	}
	return inlineSVG(buf.String()), nil
}

func (c *canvas) limitSegment(xys plotter.XYs) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return
	}
	l.LineStyle = draw.LineStyle{Color: limitColor, Width: vg.Points(1.1), Dashes: []vg.Length{vg.Points(5), vg.Points(3)}}
	c.p.Add(l)
}

type labelStyle struct {
	xalign draw.XAlignment
	yalign draw.YAlignment
	dx, dy vg.Length
}

// perLabelOffset draws labels each with its own offset, which
// plotter.Labels (one offset for all) cannot.
type perLabelOffset struct {
	*plotter.Labels
	styles []labelStyle
}

func (l perLabelOffset) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i, label := range l.Labels.Labels {
		pt := vg.Point{X: trX(l.XYs[i].X) + l.styles[i].dx, Y: trY(l.XYs[i].Y) + l.styles[i].dy}
		c.FillText(l.TextStyle[i], pt, label)
	}
}

// DataRange keeps the labels out of the axis ranges, which render set.
func (l perLabelOffset) DataRange() (xmin, xmax, ymin, ymax float64) {
	return math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
}

var errNoData = fmt.Errorf("no trial has both values")

// svgHeader matches the XML prologue and the fixed size vgsvg writes; the
// page sizes the chart by its viewBox instead, so it scales with the
// column.
var svgHeader = regexp.MustCompile(`(?s)^.*?<svg width="[^"]*" height="[^"]*"`)

func inlineSVG(s string) template.HTML {
	s = svgHeader.ReplaceAllString(s, `<svg class="chart" role="img" preserveAspectRatio="xMidYMid meet"`)
	// vgsvg escapes every text it draws, trial ids included.
	return template.HTML(s)
}

// ticker places ticks: a handful of round values on a linear axis; on a log
// axis the powers of ten, with 2 and 5 between them when the axis spans
// less than three decades.
type ticker struct {
	kind   axisKind
	format func(float64) string
}

func (t ticker) Ticks(lo, hi float64) []plot.Tick {
	f := t.format
	if f == nil {
		f = plainNumber
	}
	if t.kind == linearAxis {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = f(ticks[i].Value)
			}
		}
		return ticks
	}
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	decades := math.Log10(hi) - math.Log10(lo)
	mults := []float64{1}
	if decades < 1.2 {
		mults = []float64{1, 2, 3, 5}
	} else if decades < 3 {
		mults = []float64{1, 2, 5}
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m <= 9; m++ {
			v := base * float64(m)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			label := ""
			for _, mm := range mults {
				if float64(m) == mm {
					label = f(v)
				}
			}
			ticks = append(ticks, plot.Tick{Value: v, Label: label})
		}
	}
	labelled := 0
	for _, tk := range ticks {
		if tk.Label != "" {
			labelled++
		}
	}
	if labelled < 2 {
		// A narrow log axis between two labelled values: label its ends.
		ticks = append(ticks, plot.Tick{Value: lo, Label: f(lo)}, plot.Tick{Value: hi, Label: f(hi)})
	}
	return ticks
}

// plainNumber writes a tick value without an exponent.
func plainNumber(v float64) string {
	if v == 0 {
		return "0"
	}
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if len(s) > 10 {
		s = strconv.FormatFloat(v, 'g', 3, 64)
	}
	return s
}

// siNumber writes counts and byte sizes as 950, 1.2k, 35k, 2M.
func siNumber(v float64) string {
	a := math.Abs(v)
	for _, u := range []struct {
		div float64
		sfx string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if a >= u.div {
			return strconv.FormatFloat(roundSig(v/u.div, 3), 'f', -1, 64) + u.sfx
		}
	}
	return strconv.FormatFloat(roundSig(v, 3), 'f', -1, 64)
}

func roundSig(v float64, sig int) float64 {
	if v == 0 || !finite(v) {
		return v
	}
	p := math.Pow(10, float64(sig)-math.Ceil(math.Log10(math.Abs(v))))
	return math.Round(v*p) / p
}

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
	return out
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
		axis:  axisSpec{label: "latency p95 (ms per sample, log)", kind: logAxis, format: plainNumber},
		value: func(t *trial) float64 { return t.LatencyP95 },
		limit: func(r *requirements) float64 { return r.MaxLatencyMs }, limitName: "max_latency_ms",
		fit: func(r *round) (float64, float64) { return r.LatencyCoef, r.LatencyExp },
	}, {
		id: "bytes", name: "Model size", short: "model bytes",
		axis:  axisSpec{label: "model size (bytes, log)", kind: logAxis, format: siNumber},
		value: func(t *trial) float64 { return t.ModelBytes },
		limit: func(r *requirements) float64 { return r.MaxModelBytes }, limitName: "max_model_bytes",
		fit: func(r *round) (float64, float64) { return r.BytesCoef, r.BytesExp },
	}, {
		id: "train", name: "Train time", short: "train time",
		axis:  axisSpec{label: "train time (seconds, log)", kind: logAxis, format: plainNumber},
		value: func(t *trial) float64 { return t.TrainSeconds },
		limit: func(r *requirements) float64 { return r.MaxTrainSeconds }, limitName: "max_train_seconds",
		fit: func(r *round) (float64, float64) { return r.TrainCoef, r.TrainExp },
	}}
}

var paramsAxis = axisSpec{label: "parameters (log)", kind: logAxis, format: siNumber}

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
		return "max_loss " + plainNumber(roundSig(t, 4))
	}
	return "min_accuracy " + plainNumber(roundSig(t, 4))
}

func limitLabel(name string, v float64, format func(float64) string) string {
	return name + " " + format(roundSig(v, 4))
}

func (d *data) chosenLabel() string {
	if d.chosen == nil {
		return ""
	}
	return "chosen: " + d.chosen.ID
}

func qualityChart(d *data, ss []*series) chart {
	ch := chart{ID: "quality", Title: "Quality against size", Wide: true}
	c := newCanvas(paramsAxis, d.qualityAxis())
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
	for _, s := range ss {
		xys, _ := c.points(s.trials, params, q)
		c.scatter(s, xys, 0, vg.Points(3.6))
	}
	if t := d.target(); finite(t) {
		c.hlimit(t, d.targetLabel())
	}
	if v := d.limit(func(r *requirements) float64 { return r.MaxParams }); finite(v) {
		c.vlimit(v, limitLabel("max_params", v, siNumber))
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
	svg, err := c.render(vg.Points(760), vg.Points(330), d.clampQuality)
	ch.SVG, ch.Err = svg, errText(err)
	return ch
}

func costChart(d *data, ss []*series, cost costAxis) chart {
	ch := chart{ID: "cost-" + cost.id, Title: cost.name + " against size"}
	c := newCanvas(paramsAxis, cost.axis)
	params := func(t *trial) float64 { return t.Params }
	n := 0
	for _, s := range ss {
		xys, _ := c.points(s.trials, params, cost.value)
		n += len(xys)
		c.scatter(s, xys, 0, vg.Points(3.2))
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
		c.vlimit(v, limitLabel("max_params", v, siNumber))
	}
	if d.chosen != nil {
		c.mark(d.chosen.Params, cost.value(d.chosen), "")
	}
	if n == 0 {
		ch.Err = "No trial recorded a " + cost.short + "."
		return ch
	}
	svg, err := c.render(vg.Points(380), vg.Points(270), nil)
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
	c := newCanvas(cost.axis, d.qualityAxis())
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
		c.scatter(s, xys, faded, vg.Points(3))
		n += len(xys)
		xys, _ = c.points(on, cost.value, q)
		c.scatter(s, xys, 0, vg.Points(3.6))
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
	ids := make([]string, len(fr))
	for i, t := range fr {
		ids[i] = t.ID
	}
	ch.Caption = fmt.Sprintf("On the front (bold, joined): %s. Faded points are beaten by a cheaper, better model.", strings.Join(ids, ", "))
	svg, err := c.render(vg.Points(380), vg.Points(270), d.clampQuality)
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
