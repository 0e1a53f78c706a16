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

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The charts are drawn server-side by gonum/plot into SVG and inlined in the
// page, so the file needs no script library and no network to show them.
// Their text is set in Liberation Sans, which the page embeds once
// (fontCSS), so labels measured by gonum fit the same on every machine.

var chartFont = font.Font{Typeface: "Liberation", Variant: "Sans"}

// Colours: one per series (the Tableau 10 palette, told apart by people
// with the common colour-vision deficiencies), MLP depths first; grey for
// the linear baseline.
var (
	seriesColors = []color.NRGBA{
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
	nameColor     = color.NRGBA{0x4b, 0x55, 0x63, 0xff}
	faded         = uint8(0x55)
)

// series is the trials of one family (and, for an MLP, one depth), drawn
// in one colour and shape on every chart and listed once in the page's
// legend, so that a run over several families tells them apart.
type series struct {
	key    string
	label  string
	color  color.NRGBA
	shape  draw.GlyphDrawer
	trials []*trial
	// mlp orders the MLP depths first; baseline is the linear model.
	mlp, baseline bool
}

func glyphFor(i int) draw.GlyphDrawer {
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}
	return shapes[i%len(shapes)]
}

// seriesKey places a trial in its series: an MLP family by depth, the
// linear baseline apart, any other family by its name.
func seriesKey(t *trial) (key, label string, mlp, baseline bool) {
	switch {
	case t.mlp() && t.Family == tables.FamilyLinear:
		return "linear", "linear baseline", false, true
	case t.mlp() && (t.Family == tables.FamilyMLP || (t.Family == "" && t.Depth > 0)):
		return fmt.Sprintf("mlp/%d", t.Depth), fmt.Sprintf("MLP, depth %d", t.Depth), true, false
	case t.mlp() && t.Family != "":
		return fmt.Sprintf("%s/%d", t.Family, t.Depth), fmt.Sprintf("%s (MLP, depth %d)", t.Family, t.Depth), true, false
	case t.Family == "":
		return "", "other", false, false
	default:
		return "~" + t.Family, fmt.Sprintf("%s (%s)", t.Family, t.Kind), false, false
	}
}

// seriesOf groups the trials that finished with a measurement.
func seriesOf(d *data) []*series {
	byKey := map[string]*series{}
	var out []*series
	for i := range d.trials {
		t := &d.trials[i]
		if !t.ok() || t.Outranked {
			continue
		}
		key, label, mlp, baseline := seriesKey(t)
		s := byKey[key]
		if s == nil {
			s = &series{key: key, label: label, mlp: mlp, baseline: baseline}
			byKey[key] = s
			out = append(out, s)
		}
		s.trials = append(s.trials, t)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].mlp != out[j].mlp {
			return out[i].mlp
		}
		if out[i].baseline != out[j].baseline {
			return out[j].baseline
		}
		return out[i].key < out[j].key
	})
	n := 0
	for _, s := range out {
		if s.baseline {
			s.color, s.shape = baselineColor, draw.RingGlyph{}
			continue
		}
		s.color, s.shape = seriesColors[n%len(seriesColors)], glyphFor(n)
		n++
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
	p    *plot.Plot
	size sizes
	// calloutUpLeft places the chosen model's name up and to the left,
	// where a rising curve leaves room.
	calloutUpLeft bool
	x, y          axisSpec
	xs, ys        []float64 // data the axes must show
	hlims, vlims  []limitLine
	callouts      []callout
	layers        []plot.Plotter
	err           error
}

// sizes are a chart's dimensions and type sizes, in points of its viewBox.
// The page scales the SVG to its column, so they are chosen for the width
// the chart is shown at: about 1.1 screen pixels per point.
type sizes struct {
	w, h                     vg.Length
	tick, label, limit, mark vg.Length
	glyph                    vg.Length
}

var (
	wideSize  = sizes{w: 1000, h: 400, tick: 10.5, label: 11.5, limit: 10, mark: 10.5, glyph: 4}
	smallSize = sizes{w: 300, h: 225, tick: 9.5, label: 10, limit: 9, mark: 9.5, glyph: 3.2}
)

func withSize(f font.Font, size vg.Length) font.Font {
	f.Size = size
	return f
}

func newCanvas(x, y axisSpec, sz sizes) *canvas {
	p := plot.New()
	styleText(p, sz)
	p.BackgroundColor = color.White
	// A one-space title reserves the room a real one takes (its height
	// is the font's line height whatever the text); axisTitles draws the
	// real ones.
	p.X.Label.Text, p.Y.Label.Text = " ", " "
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
	return &canvas{p: p, x: x, y: y, size: sz}
}

// styleText sets every text of the plot in the embedded sans face.
func styleText(p *plot.Plot, sz sizes) {
	p.Title.TextStyle.Font = withSize(chartFont, sz.label)
	p.X.Label.TextStyle.Font = withSize(chartFont, sz.label)
	p.Y.Label.TextStyle.Font = withSize(chartFont, sz.label)
	p.X.Tick.Label.Font = withSize(chartFont, sz.tick)
	p.Y.Tick.Label.Font = withSize(chartFont, sz.tick)
	p.Legend.TextStyle.Font = withSize(chartFont, sz.tick)
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
		co := callout{
			x: x, y: y, text: label, upLeft: c.calloutUpLeft,
			style: text.Style{Color: chosenColor, Font: withSize(chartFont, c.size.mark), Handler: c.p.TextHandler},
		}
		c.layers = append(c.layers, co)
		c.callouts = append(c.callouts, co)
	}
	c.xs, c.ys = append(c.xs, x), append(c.ys, y)
}

// names writes each point's name beside it, in small grey type, where it
// covers no marker, no name already written and not the chosen model's
// callout; a name with no such place is left out.
func (c *canvas) names(xys plotter.XYs, names []string) {
	if len(names) == 0 {
		return
	}
	c.layers = append(c.layers, pointNames{
		cv: c, xys: xys, names: names,
		style: text.Style{Color: nameColor, Font: withSize(chartFont, c.size.tick*0.85), Handler: c.p.TextHandler},
	})
}

// pointNames draws the names of names. It reads the canvas when drawn, so
// it avoids the markers and callouts added after it.
type pointNames struct {
	cv    *canvas
	xys   plotter.XYs
	names []string
	style text.Style
}

func (l pointNames) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	r := l.cv.size.glyph + 1
	var taken []vg.Rectangle
	for i := range l.cv.xs {
		px, py := trX(l.cv.xs[i]), trY(l.cv.ys[i])
		taken = append(taken, vg.Rectangle{Min: vg.Point{X: px - r, Y: py - r}, Max: vg.Point{X: px + r, Y: py + r}})
	}
	for _, co := range l.cv.callouts {
		taken = append(taken, co.box(c, p))
	}
	free := func(b vg.Rectangle) bool {
		if b.Min.X < c.Min.X || b.Max.X > c.Max.X || b.Min.Y < c.Min.Y || b.Max.Y > c.Max.Y {
			return false
		}
		for _, o := range taken {
			if b.Min.X < o.Max.X && o.Min.X < b.Max.X && b.Min.Y < o.Max.Y && o.Min.Y < b.Max.Y {
				return false
			}
		}
		return true
	}
	st := l.style
	st.XAlign, st.YAlign = draw.XLeft, draw.YBottom
	gap := r + 1
	for i, name := range l.names {
		px, py := trX(l.xys[i].X), trY(l.xys[i].Y)
		if !c.Contains(vg.Point{X: px, Y: py}) {
			continue
		}
		w, h := l.style.Width(name), l.style.Height(name)
		// Right of the point, else left, above, below.
		for _, at := range []vg.Point{
			{X: px + gap, Y: py - h/2}, {X: px - gap - w, Y: py - h/2},
			{X: px - w/2, Y: py + gap}, {X: px - w/2, Y: py - gap - h},
		} {
			b := vg.Rectangle{Min: at, Max: vg.Point{X: at.X + w, Y: at.Y + h}}
			if free(b) {
				taken = append(taken, b)
				c.FillText(st, vg.Point{X: at.X, Y: at.Y + l.style.FontExtents().Descent}, name)
				break
			}
		}
	}
}

// callout names a point on a white box, so the name stays legible over a
// band or a curve. It goes up and to the left of the point (up and to the
// right when upLeft is false), and flips to the other side at the data
// area's edge.
type callout struct {
	x, y   float64
	text   string
	style  text.Style
	upLeft bool
}

const calloutPad = 2

func (l callout) Plot(c draw.Canvas, p *plot.Plot) {
	box := l.box(c, p)
	c.SetColor(color.NRGBA{0xff, 0xff, 0xff, 0xe0})
	c.Fill(box.Path())
	st := l.style
	st.XAlign, st.YAlign = draw.XLeft, draw.YBottom
	c.FillText(st, vg.Point{X: box.Min.X + calloutPad, Y: box.Min.Y + calloutPad + l.style.FontExtents().Descent}, l.text)
}

// box is the callout's white box on the canvas.
func (l callout) box(c draw.Canvas, p *plot.Plot) vg.Rectangle {
	trX, trY := p.Transforms(&c)
	const gap, pad = 9, calloutPad
	w, h := l.style.Width(l.text), l.style.Height(l.text)
	px, py := trX(l.x), trY(l.y)
	left := l.upLeft
	if left && px-gap-w < c.Min.X {
		left = false
	} else if !left && px+gap+w > c.Max.X {
		left = true
	}
	x := px + gap
	if left {
		x = px - gap - w
	}
	y := py + gap
	if y+h > c.Max.Y {
		y = py - gap - h
	}
	return vg.Rectangle{Min: vg.Point{X: x - pad, Y: y - pad}, Max: vg.Point{X: x + w + pad, Y: y + h + pad}}
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
	// More room on top, where the limit labels and the chosen model's
	// name go.
	return lo - pad, hi + 1.5*pad, true
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
func (c *canvas) render(clampY func(lo, hi float64) (float64, float64)) (svg template.HTML, err error) {
	// gonum/plot reports some impossible inputs by panicking; the data
	// are the run's, so a chart that cannot be drawn says so in its place
	// and the rest of the report stands.
	defer func() {
		if r := recover(); r != nil {
			svg, err = "", fmt.Errorf("%v", r)
		}
	}()
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
	// A horizontal limit's label ends at the right edge, or just before a
	// vertical limit line near that edge, so the two do not cross.
	anchor := xhi
	for _, l := range c.vlims {
		if l.value < anchor && normAt(c.x.kind, l.value, xlo, xhi) > 0.6 {
			anchor = l.value
		}
	}
	for _, l := range c.hlims {
		txt := l.label
		y := l.value
		texts.XYs = append(texts.XYs, plotter.XY{X: anchor, Y: math.Min(math.Max(y, ylo), yhi)})
		switch {
		case y > yhi:
			texts.Labels = append(texts.Labels, "↑ "+txt)
			styles = append(styles, labelStyle{xalign: draw.XRight, yalign: draw.YTop, dx: -3, dy: -2})
			continue
		case y < ylo:
			texts.Labels = append(texts.Labels, "↓ "+txt)
			styles = append(styles, labelStyle{xalign: draw.XRight, yalign: draw.YBottom, dx: -3, dy: 2})
			continue
		}
		c.limitSegment(plotter.XYs{{X: xlo, Y: y}, {X: xhi, Y: y}})
		texts.Labels = append(texts.Labels, txt)
		if c.crowdedAbove(y, xlo, xhi, ylo, yhi) {
			styles = append(styles, labelStyle{xalign: draw.XRight, yalign: draw.YTop, dx: -3, dy: -2})
		} else {
			styles = append(styles, labelStyle{xalign: draw.XRight, yalign: draw.YBottom, dx: -3, dy: 2})
		}
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
		// At the foot of the line: a size or cost limit sits right of
		// the cheap models, and low quality at high cost is where no
		// trial lands, so the label rarely covers one.
		texts.XYs = append(texts.XYs, plotter.XY{X: x, Y: ylo})
		texts.Labels = append(texts.Labels, txt)
		xa := draw.XRight
		dx := vg.Length(-3)
		if x <= xlo {
			xa, dx = draw.XLeft, 3
		}
		styles = append(styles, labelStyle{xalign: xa, yalign: draw.YBottom, dx: dx, dy: 3})
	}
	if len(texts.Labels) > 0 {
		ll := limitLabels{xys: texts.XYs, texts: texts.Labels, styles: styles}
		for i := range texts.Labels {
			ll.style = append(ll.style, text.Style{
				Color: limitColor, Font: withSize(chartFont, c.size.limit), Handler: p.TextHandler,
				XAlign: styles[i].xalign, YAlign: styles[i].yalign,
			})
		}
		p.Add(ll)
	}
	p.Add(axisTitles{x: c.x.label, y: c.y.label, xs: p.X.Label.TextStyle, ys: p.Y.Label.TextStyle})
	// Plot.Add widens the axes to every layer's data (a curve sampled past
	// the trials, a band); the ranges chosen above win.
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xlo, xhi, ylo, yhi

	cv := vgsvg.New(c.size.w, c.size.h)
	p.Draw(draw.New(cv))
	var buf bytes.Buffer
	if _, err := cv.WriteTo(&buf); err != nil {
		return "", err
	}
	return inlineSVG(buf.String()), nil
}

// normAt is v's place on an axis from lo (0) to hi (1).
func normAt(kind axisKind, v, lo, hi float64) float64 {
	if kind == logAxis {
		return (math.Log(v) - math.Log(lo)) / (math.Log(hi) - math.Log(lo))
	}
	return (v - lo) / (hi - lo)
}

// crowdedAbove reports whether more points lie just above a horizontal
// line than just below it, near the right edge where its label goes.
func (c *canvas) crowdedAbove(y, xlo, xhi, ylo, yhi float64) bool {
	norm := normAt
	ny := norm(c.y.kind, y, ylo, yhi)
	above, below := 0, 0
	for i := range c.xs {
		if norm(c.x.kind, c.xs[i], xlo, xhi) < 0.6 {
			continue
		}
		switch d := norm(c.y.kind, c.ys[i], ylo, yhi) - ny; {
		case d > 0 && d < 0.12:
			above++
		case d <= 0 && d > -0.12:
			below++
		}
	}
	return above > below
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

// axisTitles draws the axis titles centred on the data area. gonum/plot
// centres a title's glyph box at the arithmetic middle of the axis range,
// which on a log axis lies near its far end, and shrinks the data area to
// make room for a box that is not there.
type axisTitles struct {
	x, y   string
	xs, ys text.Style
}

func (a axisTitles) Plot(c draw.Canvas, _ *plot.Plot) {
	// The plot fills the whole SVG, so its outer edges are at 0.
	c.FillText(a.xs, vg.Point{X: c.Center().X, Y: a.xs.FontExtents().Descent}, a.x)
	ys := a.ys
	ys.Rotation += math.Pi / 2
	c.FillText(ys, vg.Point{X: a.ys.Height(" ") - a.ys.FontExtents().Descent, Y: c.Center().Y}, a.y)
}

// limitLabels draws the requirement labels, each with its own alignment
// and offset, which plotter.Labels (one offset for all) cannot. It has no
// glyph boxes on purpose: the plot would shrink its data area to fit the
// labels inside it, and they belong on the lines, at the edge.
type limitLabels struct {
	xys    plotter.XYs
	texts  []string
	style  []text.Style
	styles []labelStyle
}

func (l limitLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	for i, label := range l.texts {
		pt := vg.Point{X: trX(l.xys[i].X) + l.styles[i].dx, Y: trY(l.xys[i].Y) + l.styles[i].dy}
		c.FillText(l.style[i], pt, label)
	}
}

var errNoData = fmt.Errorf("no trial has both values")

// svgHeader matches the XML prologue and the size vgsvg writes in points.
// The page scales each chart to its column; plain width and height give the
// browser the aspect ratio for height:auto, which a size in pt does not.
var svgHeader = regexp.MustCompile(`(?s)^.*?<svg width="[^"]*" height="[^"]*" viewBox="0 0 ([0-9.]+) ([0-9.]+)"`)

func inlineSVG(s string) template.HTML {
	s = svgHeader.ReplaceAllString(s, `<svg class="chart" role="img" width="$1" height="$2" viewBox="0 0 $1 $2"`)
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
		return linearTicks(lo, hi, f)
	}
	if !(lo > 0) || !(hi > lo) {
		return nil
	}
	decades := math.Log10(hi) - math.Log10(lo)
	var mults []float64
	switch {
	case decades < 1.2:
		mults = []float64{1, 2, 3, 5}
	case decades < 2.2:
		mults = []float64{1, 2, 5}
	case decades < 3.2:
		mults = []float64{1, 3}
	default:
		mults = []float64{1}
	}
	// Past six decades (parameter counts from a hundred to ten billion)
	// every power of ten would crowd the axis: label every step-th, with
	// no ticks between the powers.
	step, minors := 1, 9
	if decades > 6 {
		step, minors = int(math.Ceil(decades/6)), 1
	}
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		base := math.Pow(10, e)
		for m := 1; m <= minors; m++ {
			v := base * float64(m)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			label := ""
			for _, mm := range mults {
				if float64(m) == mm && (int(e)%step+step)%step == 0 {
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

// linearTicks returns five to ten round values (steps of 1, 2, 2.5 or 5
// times a power of ten) labelled with the digits the step needs, and a
// minor tick between each.
func linearTicks(lo, hi float64, f func(float64) string) []plot.Tick {
	if !(hi > lo) || !finite(lo) || !finite(hi) {
		return nil
	}
	rough := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(rough)))
	step := mag
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= rough {
			step = m * mag
			break
		}
	}
	digits := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	if math.Abs(step/math.Pow(10, -float64(digits))-math.Round(step/math.Pow(10, -float64(digits)))) > 1e-6 {
		digits++
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		label := strconv.FormatFloat(v, 'f', digits, 64)
		if digits == 0 {
			label = f(math.Round(v))
		}
		if label == "-0" {
			label = "0"
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
		if m := v + step/2; m <= hi {
			ticks = append(ticks, plot.Tick{Value: m})
		}
	}
	if first := math.Ceil(lo/step)*step - step/2; first >= lo {
		ticks = append(ticks, plot.Tick{Value: first})
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
