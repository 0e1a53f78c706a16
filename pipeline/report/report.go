// Package report turns a run directory into one self-contained HTML page for
// the person deciding which model size to ship: the decision and its
// reason, the chosen model's measurements against the requirements, quality
// against size with the fitted curve, the costs against size, the Pareto
// fronts, every round's decision and the sortable table of trials.
//
// The page needs nothing but itself: the charts are SVG drawn here with
// gonum/plot, their font is embedded, and the few lines of script that sort
// the table are inline. It makes no network request when opened.
package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg/draw"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Option tunes Write.
type Option func(*options)

type options struct {
	mem  memory.Allocator
	live bool
}

// WithAllocator sets the allocator the run's Arrow files are read with
// (tests pass a checked one).
func WithAllocator(mem memory.Allocator) Option { return func(o *options) { o.mem = mem } }

// Write writes the report of run to w as one HTML document.
//
// It reads the run's tables by port name, not by stage address: the
// "results" port (trials), the "decision" port (one row per loop round)
// and the "requirements" port. A run that lacks some of them (it failed
// early, or has no resize stage) still gets a report of what it has.
func Write(w io.Writer, run *runstore.Run, opts ...Option) error {
	v, err := Build(run, opts...)
	if err != nil {
		return err
	}
	return v.WritePage(w)
}

//go:embed page.html.tmpl
var pageSource string

var pageTemplate = template.Must(template.Must(template.New("page").Parse(pageSource)).Parse(sectionsSource))

// page is what the template shows; every string is plain text that the
// template escapes, except the SVG and CSS, which are built here.
type page struct {
	Title, Pipeline, RunID, Status, StatusClass   string
	Started, Duration, TraceID, RunError          string
	Headline, Verdict, VerdictClass, Summary      string
	Reason                                        string
	Ship                                          *shipping
	Metrics                                       []metric
	Shape                                         string
	Requirements                                  []keyValue
	Legend                                        []legendItem
	Quality                                       chart
	Costs, Fronts                                 []chart
	Rounds                                        []roundView
	Table                                         tableView
	Warnings                                      []string
	FontCSS                                       template.CSS
	ResultsStage, DecisionStage, FailedNotPlotted string
	// OutrankedNotPlotted says how many trials tried a setting their search
	// did not choose ("" when none).
	OutrankedNotPlotted string
}

type metric struct {
	Label, Value, Note, Class string
}

type keyValue struct{ Key, Value string }

type legendItem struct {
	Swatch template.HTML
	Label  string
}

type roundView struct {
	Round                         int
	Status, Action, Class, Chosen string
	Reason, Fit, Bracket, Budget  string
	Trials                        int
	Trusted                       bool
}

type tableView struct {
	Headers []header
	Rows    []rowView
}

type header struct {
	Label, Title string
	Numeric      bool
}

type rowView struct {
	Chosen, Failed bool
	Title          string
	Cells          []cell
}

type cell struct {
	Text, Sort string
	Numeric    bool
	Title      string
}

func buildPage(d *data) (*page, error) {
	m := &d.manifest
	pg := &page{
		RunID:         m.RunID,
		Status:        m.Status,
		StatusClass:   statusClass(m.Status),
		TraceID:       m.TraceID,
		RunError:      m.Error,
		Warnings:      d.warnings,
		ResultsStage:  d.resultsStage,
		DecisionStage: d.decisionStage,
	}
	if len(m.Pipeline) > 0 {
		pg.Pipeline = strings.Join(m.Pipeline, ", ")
	}
	pg.Title = "sweetspot report · " + m.RunID
	if !m.StartedAt.IsZero() {
		pg.Started = m.StartedAt.Local().Format("2006-01-02 15:04:05 MST")
		if m.FinishedAt != nil {
			pg.Duration = fmtDuration(m.FinishedAt.Sub(m.StartedAt))
		}
	}
	css, err := fontCSS()
	if err != nil {
		return nil, err
	}
	pg.FontCSS = css

	headline(d, pg)
	pg.Metrics = chosenMetrics(d)
	if c := d.chosen; c != nil {
		pg.Shape = shapeText(c)
	}
	pg.Requirements = requirementRows(d)

	ss := seriesOf(d)
	pg.Legend = legend(d, ss)
	charts := chartSet(d)
	pg.Quality = charts[0]
	n := len(costAxes())
	pg.Costs = charts[1 : 1+n]
	pg.Fronts = charts[1+n:]

	failed, outranked := 0, 0
	for i := range d.trials {
		switch {
		case !d.trials[i].ok():
			failed++
		case d.trials[i].Outranked:
			outranked++
		}
	}
	if outranked > 0 {
		pg.OutrankedNotPlotted = fmt.Sprintf("%d trial(s) tried a setting their search did not choose for their size (setting in the table); only each size's chosen setting is plotted.", outranked)
	}
	if failed > 0 {
		pg.FailedNotPlotted = fmt.Sprintf("%d trial(s) did not finish with a measurement (see their status in the table) and are not plotted.", failed)
	}
	pg.Rounds = roundViews(d)
	pg.Table = trialTable(d)
	return pg, nil
}

func statusClass(s string) string {
	switch s {
	case runstore.StatusSucceeded, tables.DecisionConverged, tables.StatusOK:
		return "good"
	case runstore.StatusFailed, tables.DecisionInfeasible:
		return "bad"
	case runstore.StatusCanceled, runstore.StatusSkipped, tables.DecisionBudgetExhausted:
		return "warn"
	default:
		return "info"
	}
}

// headline says what to do with the run, in one line and a reason.
func headline(d *data, pg *page) {
	last := d.last()
	trials := len(d.trials)
	if last == nil {
		pg.Verdict = "no decision"
		pg.VerdictClass = "info"
		switch {
		case d.manifest.Status == runstore.StatusFailed:
			pg.Headline = "The run failed before a decision"
			pg.VerdictClass = "bad"
		case trials > 0:
			pg.Headline = "No decision recorded"
			pg.Reason = "This run has no resize stage, or it did not finish a round; the measurements below are all it recorded."
		default:
			pg.Headline = "No trials recorded"
			pg.Reason = "This run has no evaluation results to report."
		}
		pg.Summary = plural(trials, "trial")
		return
	}
	chosen := d.roundModel(last)
	switch last.Status {
	case tables.DecisionConverged:
		pg.Headline = "Ship " + chosen.text()
		if chosen.name == "" {
			pg.Headline = "Converged"
		}
	case tables.DecisionBudgetExhausted:
		pg.Headline = "Budget spent: best so far is " + chosen.text()
		if chosen.name == "" {
			pg.Headline = "Budget spent before any model met the requirements"
		}
	case tables.DecisionInfeasible:
		pg.Headline = "No model size meets the requirements"
	case tables.DecisionContinue:
		pg.Headline = "Stopped before converging"
		if chosen.name != "" {
			pg.Headline += ": best so far is " + chosen.text()
		}
	default:
		pg.Headline = "Decision: " + last.Status
	}
	pg.Verdict = strings.ReplaceAll(last.Status, "_", " ")
	pg.VerdictClass = statusClass(last.Status)
	// The loop may end on the runner's side (max_rounds) while the last
	// round asked to go on; the manifest says why it stopped.
	if md := d.manifest.Decision; last.Status == tables.DecisionContinue && md != nil && md.Status != "" && md.Status != last.Status {
		pg.Verdict = strings.ReplaceAll(md.Status, "_", " ")
		pg.VerdictClass = "warn"
	}
	pg.Reason = last.Reason
	if chosen.name != "" {
		pg.Ship = d.ship
	}
	parts := []string{plural(len(d.rounds), "round"), plural(trials, "trial")}
	if last.Strategy != "" {
		parts = append(parts, "strategy "+last.Strategy)
	}
	pg.Summary = strings.Join(parts, " · ")
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// check compares a value with a limit and says so.
func check(v, limit float64, lowerBetter bool, format func(float64) string) (note, class string) {
	if !finite(limit) {
		return "no limit set", ""
	}
	op := "≤"
	ok := v <= limit
	if !lowerBetter {
		op, ok = "≥", v >= limit
	}
	if !finite(v) {
		return "limit " + op + " " + format(limit) + " · not measured", "fail"
	}
	if ok {
		return "limit " + op + " " + format(limit) + " · met", "pass"
	}
	return "limit " + op + " " + format(limit) + " · missed", "fail"
}

func chosenMetrics(d *data) []metric {
	c := d.chosen
	if c == nil {
		return nil
	}
	var out []metric
	q := c.quality(d.metric)
	if d.metric == metricLoss {
		note, class := check(q, d.target(), true, fmtLoss)
		out = append(out, metric{Label: "Test loss", Value: fmtLoss(q), Note: note, Class: class})
	} else {
		note, class := check(q, d.target(), false, fmtAcc)
		out = append(out, metric{Label: "Test accuracy", Value: fmtAcc(q), Note: note, Class: class})
	}
	if finite(c.RMSE) {
		out = append(out, metric{Label: "Test RMSE", Value: fmtSig(c.RMSE)})
	}
	if finite(c.R2) {
		out = append(out, metric{Label: "Test R²", Value: fmt.Sprintf("%.3f", c.R2)})
	}
	if last := d.last(); last != nil && last.Chosen == c.ID && finite(last.Predicted) {
		v := fmtQuality(d.metric, last.Predicted)
		note := "the fitted curve at this size"
		if finite(last.PredLo) && finite(last.PredHi) {
			note = fmt.Sprintf("%s interval %s – %s", confText(last.Confidence),
				fmtQuality(d.metric, math.Min(last.PredLo, last.PredHi)), fmtQuality(d.metric, math.Max(last.PredLo, last.PredHi)))
		}
		if !last.Trusted {
			note += " · fit not trusted"
		}
		out = append(out, metric{Label: "Fit predicts", Value: v, Note: note})
	}
	note, class := check(c.LatencyP95, d.limit(func(r *requirements) float64 { return r.MaxLatencyMs }), true, fmtMs)
	out = append(out, metric{Label: "Latency p95", Value: fmtLatency(c.LatencyP95), Note: note, Class: class})
	note, class = check(c.Params, d.limit(func(r *requirements) float64 { return r.MaxParams }), true, FormatParams)
	if finite(c.Params) {
		note = fmtCount(c.Params) + " · " + note
	}
	out = append(out, metric{Label: "Parameters", Value: FormatParams(c.Params), Note: note, Class: class})
	note, class = check(c.ModelBytes, d.limit(func(r *requirements) float64 { return r.MaxModelBytes }), true, fmtBytes)
	out = append(out, metric{Label: "Model size", Value: fmtBytes(c.ModelBytes), Note: note, Class: class})
	note, class = check(c.TrainSeconds, d.limit(func(r *requirements) float64 { return r.MaxTrainSeconds }), true, fmtSeconds)
	out = append(out, metric{Label: "Train time", Value: fmtSeconds(c.TrainSeconds), Note: note, Class: class})
	return out
}

func shapeText(c *trial) string {
	var parts []string
	switch {
	case c.mlp() && (c.Family == tables.FamilyMLP || c.Depth > 0):
		parts = append(parts, fmt.Sprintf("MLP, %d hidden layer(s) of width %d", c.Depth, c.Width))
	case c.mlp() && c.Family != "":
		parts = append(parts, c.Family)
	case c.Family != "":
		parts = append(parts, fmt.Sprintf("%s (%s family)", c.Family, c.Kind))
	}
	if !c.mlp() && c.Knobs != "" {
		parts = append(parts, knobsText(c.Knobs))
	}
	// A table row or a replayed trial has no training settings: zeros.
	if finite(c.LearningRate) && c.LearningRate > 0 {
		parts = append(parts, "learning rate "+plainNumber(c.LearningRate))
	}
	if c.Preprocess != "" && c.Preprocess != tables.None {
		parts = append(parts, "preprocess "+c.Preprocess)
	}
	if c.Quantize != "" && c.Quantize != tables.None {
		parts = append(parts, "quantized "+c.Quantize)
	}
	if finite(c.PruneFraction) && c.PruneFraction > 0 {
		parts = append(parts, fmt.Sprintf("%.0f%% pruned", c.PruneFraction*100))
	}
	if finite(c.EpochsRun) && c.EpochsRun > 0 {
		parts = append(parts, plainNumber(c.EpochsRun)+" epochs")
	}
	if finite(c.Throughput) {
		parts = append(parts, siNumber(c.Throughput)+" samples/s")
	}
	return strings.Join(parts, " · ")
}

// knobsText writes a knobs object as "d_model 512, layers 6", in the
// object's key order (tables.Knobs.String sorts them); text that is not
// a knobs object is shown as it is.
func knobsText(s string) string {
	k, err := tables.ParseKnobs(s)
	if err != nil || len(k) == 0 {
		return s
	}
	keys := make([]string, 0, len(k))
	for name := range k {
		keys = append(keys, name)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, name := range keys {
		switch v := k[name].(type) {
		case float64:
			parts[i] = name + " " + plainNumber(v)
		default:
			parts[i] = fmt.Sprintf("%s %v", name, v)
		}
	}
	return strings.Join(parts, ", ")
}

func requirementRows(d *data) []keyValue {
	var out []keyValue
	add := func(k string, v float64, format func(float64) string) {
		if finite(v) {
			out = append(out, keyValue{k, format(v)})
		}
	}
	r := d.req
	if t := d.target(); finite(t) {
		if d.metric == metricLoss {
			out = append(out, keyValue{tables.ColMaxLoss, fmtLoss(t)})
		} else {
			out = append(out, keyValue{tables.ColMinAccuracy, fmtAcc(t)})
		}
	}
	if r == nil {
		return out
	}
	if d.metric == metricAccuracy {
		add(tables.ColMaxLoss, r.MaxLoss, fmtLoss)
	}
	add(tables.ColMaxLatencyMs, r.MaxLatencyMs, fmtMs)
	add(tables.ColMaxParams, r.MaxParams, FormatParams)
	add(tables.ColMaxModelBytes, r.MaxModelBytes, fmtBytes)
	add(tables.ColMaxTrainSeconds, r.MaxTrainSeconds, fmtSeconds)
	add(tables.ColMaxTrials, r.MaxTrials, fmtCount)
	add("max_wall", r.MaxWallSeconds, fmtSeconds)
	if r.Task != "" {
		out = append(out, keyValue{"task", r.Task})
	}
	var ds []string
	if finite(r.Rows) {
		ds = append(ds, fmtCount(r.Rows)+" rows")
	}
	if finite(r.Features) {
		ds = append(ds, plural(int(r.Features), "feature"))
	}
	if finite(r.Classes) && r.Classes > 0 {
		if r.Classes == 1 {
			ds = append(ds, "1 class")
		} else {
			ds = append(ds, plainNumber(r.Classes)+" classes")
		}
	}
	if len(ds) > 0 {
		out = append(out, keyValue{"dataset", strings.Join(ds, ", ")})
	}
	return out
}

func legend(d *data, ss []*series) []legendItem {
	var out []legendItem
	for _, s := range ss {
		out = append(out, legendItem{Swatch: glyphSwatch(s), Label: s.label})
	}
	if d.chosen != nil {
		out = append(out, legendItem{Swatch: `<svg viewBox="0 0 16 16"><circle cx="8" cy="8" r="6" fill="none" stroke="#111827" stroke-width="2"/></svg>`, Label: "chosen model"})
	}
	if fr := d.lastFit(); fr != nil {
		if fr.Trusted {
			out = append(out, legendItem{Swatch: `<svg viewBox="0 0 24 16"><rect x="0" y="3" width="24" height="10" fill="#64748b" fill-opacity="0.25"/><line x1="0" y1="8" x2="24" y2="8" stroke="#1e293b" stroke-width="2"/></svg>`, Label: "fitted curve and band"})
		} else {
			out = append(out, legendItem{Swatch: `<svg viewBox="0 0 24 16"><line x1="0" y1="8" x2="24" y2="8" stroke="#1e293b" stroke-width="2" stroke-dasharray="6 3"/></svg>`, Label: "fitted curve (not trusted)"})
		}
	}
	out = append(out,
		legendItem{Swatch: `<svg viewBox="0 0 24 16"><line x1="0" y1="8" x2="24" y2="8" stroke="#dc2626" stroke-width="1.6" stroke-dasharray="5 3"/></svg>`, Label: "requirement"},
		legendItem{Swatch: `<svg viewBox="0 0 24 16"><polyline points="0,13 8,13 8,7 16,7 16,3 24,3" fill="none" stroke="#0f766e" stroke-width="1.8"/></svg>`, Label: "Pareto front"},
	)
	return out
}

// glyphSwatch draws a series' marker as the charts do.
func glyphSwatch(s *series) template.HTML {
	col := fmt.Sprintf("#%02x%02x%02x", s.color.R, s.color.G, s.color.B)
	var shape string
	switch s.shape.(type) {
	case draw.RingGlyph:
		shape = fmt.Sprintf(`<circle cx="8" cy="8" r="4.5" fill="none" stroke="%s" stroke-width="1.5"/>`, col)
	case draw.PyramidGlyph:
		shape = fmt.Sprintf(`<polygon points="8,2 14,13 2,13" fill="%s"/>`, col)
	case draw.BoxGlyph:
		shape = fmt.Sprintf(`<rect x="3.5" y="3.5" width="9" height="9" fill="%s"/>`, col)
	case draw.TriangleGlyph:
		shape = fmt.Sprintf(`<polygon points="8,2.5 13.5,12.5 2.5,12.5" fill="none" stroke="%s" stroke-width="1.4"/>`, col)
	case draw.SquareGlyph:
		shape = fmt.Sprintf(`<rect x="3.5" y="3.5" width="9" height="9" fill="none" stroke="%s" stroke-width="1.4"/>`, col)
	case draw.CrossGlyph:
		shape = fmt.Sprintf(`<path d="M3,3L13,13M13,3L3,13" stroke="%s" stroke-width="1.6"/>`, col)
	case draw.PlusGlyph:
		shape = fmt.Sprintf(`<path d="M8,2V14M2,8H14" stroke="%s" stroke-width="1.6"/>`, col)
	default:
		shape = fmt.Sprintf(`<circle cx="8" cy="8" r="4.5" fill="%s"/>`, col)
	}
	return template.HTML(`<svg viewBox="0 0 16 16">` + shape + `</svg>`)
}

func roundViews(d *data) []roundView {
	perRound := map[int]int{}
	for i := range d.trials {
		perRound[d.trials[i].Round]++
	}
	var out []roundView
	for i := range d.rounds {
		r := &d.rounds[i]
		v := roundView{
			Round: r.Round, Status: strings.ReplaceAll(r.Status, "_", " "), Action: r.Action,
			Class: statusClass(r.Status), Chosen: d.roundModel(r).text(), Reason: r.Reason,
			Trials: perRound[r.Round], Trusted: r.Trusted,
		}
		if r.hasFit() {
			var parts []string
			q := "q∞ " + fmtSig(r.QInf)
			if finite(r.QInfLo) && finite(r.QInfHi) {
				q += fmt.Sprintf(" [%s, %s]", fmtSig(r.QInfLo), fmtSig(r.QInfHi))
			}
			a := "A " + fmtSig(r.A)
			if finite(r.ALo) && finite(r.AHi) {
				a += fmt.Sprintf(" [%s, %s]", fmtSig(r.ALo), fmtSig(r.AHi))
			}
			al := "α " + fmt2(r.Alpha)
			if finite(r.AlphaLo) && finite(r.AlphaHi) {
				al += fmt.Sprintf(" [%s, %s]", fmt2(r.AlphaLo), fmt2(r.AlphaHi))
			}
			parts = append(parts, q, a, al)
			if finite(r.FitPoints) {
				parts = append(parts, plainNumber(r.FitPoints)+" points")
			}
			if finite(r.FitR2) {
				parts = append(parts, "R² "+fmt2(r.FitR2))
			}
			if r.Trusted {
				parts = append(parts, "trusted")
			} else {
				parts = append(parts, "not trusted")
			}
			v.Fit = strings.Join(parts, " · ")
		}
		if finite(r.BracketLo) && finite(r.BracketHi) {
			v.Bracket = fmt.Sprintf("widths %s – %s", plainNumber(r.BracketLo), plainNumber(r.BracketHi))
		}
		if finite(r.TrialsUsed) {
			v.Budget = plainNumber(r.TrialsUsed) + " trials used"
			if finite(r.TrialsLeft) {
				v.Budget += ", " + plainNumber(r.TrialsLeft) + " left"
			}
		}
		out = append(out, v)
	}
	return out
}

// tableColumn is one column of the trials table, shown when the results
// carry it.
type tableColumn struct {
	label, title string
	numeric      bool
	value        func(*trial) float64
	text         func(*trial) string
	format       func(float64) string
	// cellTitle, when set, is a cell's tooltip.
	cellTitle func(*trial) string
	// varies shows the column only when trials differ in it.
	varies bool
	// when, if set, shows the column only when it holds for the run.
	when func(*data) bool
}

func tableColumns(d *data) []tableColumn {
	num := func(label, title string, v func(*trial) float64, f func(float64) string) tableColumn {
		return tableColumn{label: label, title: title, numeric: true, value: v, format: f}
	}
	// mlpOnly is an MLP's depth or width; other families have none.
	mlpOnly := func(v func(*trial) int) func(*trial) float64 {
		return func(t *trial) float64 {
			if !t.mlp() {
				return math.NaN()
			}
			return float64(v(t))
		}
	}
	cols := []tableColumn{
		num("round", "loop round the candidate was proposed in", func(t *trial) float64 { return float64(t.Round) }, plainNumber),
		{label: "model", title: "the model's name", text: (*trial).label,
			cellTitle: func(t *trial) string {
				if t.mlp() || t.Knobs == "" {
					return ""
				}
				return knobsText(t.Knobs)
			}},
		// The id tells a model's quantized and pruned variants apart.
		{label: "candidate", title: "candidate id: the model's name and its variant", text: func(t *trial) string { return t.ID },
			when: func(d *data) bool { return d.anyTrial(func(t *trial) bool { return t.ID != t.label() }) }},
		{label: "family", title: "the model's family (its kind in the tooltip)", text: func(t *trial) string { return t.Family },
			cellTitle: func(t *trial) string { return t.Kind }, varies: true},
		num("depth", "hidden layers (MLP)", mlpOnly(func(t *trial) int { return t.Depth }), plainNumber),
		num("width", "units per hidden layer (MLP)", mlpOnly(func(t *trial) int { return t.Width }), plainNumber),
		{label: "size", title: "the model's place on its family's size axis", numeric: true, format: plainSig,
			value: func(t *trial) float64 {
				if t.mlp() {
					return math.NaN() // the width
				}
				return t.Size
			},
			// A table family sized by its parameter count would show
			// the params twice.
			when: func(d *data) bool {
				return d.anyTrial(func(t *trial) bool { return !t.mlp() && finite(t.Size) && t.Size != t.Params })
			}},
		{label: "params", title: "parameters (the exact count in the tooltip)", numeric: true, value: func(t *trial) float64 { return t.Params }, format: FormatParams,
			cellTitle: func(t *trial) string { return fmtCount(t.Params) }},
		{label: "lr", title: "learning rate", numeric: true, value: func(t *trial) float64 { return t.LearningRate }, format: plainNumber, varies: true},
		{label: "preprocess", title: "preprocessing", text: func(t *trial) string { return t.Preprocess }, varies: true},
		{label: "quantize", title: "quantization", text: func(t *trial) string { return t.Quantize }, varies: true},
		{label: "pruned", title: "pruned fraction", numeric: true, value: func(t *trial) float64 { return t.PruneFraction }, format: plainNumber, varies: true},
		num("accuracy", "test accuracy", func(t *trial) float64 { return t.Accuracy }, fmtAcc),
		num("loss", "test loss", func(t *trial) float64 { return t.Loss }, fmtLoss),
		num("rmse", "test RMSE (regression)", func(t *trial) float64 { return t.RMSE }, fmtSig),
		num("r²", "test R² (regression)", func(t *trial) float64 { return t.R2 }, fmt3),
		num("p50 ms", "latency p50 per sample, ms", func(t *trial) float64 { return t.LatencyP50 }, plainSig),
		num("p95 ms", "latency p95 per sample, ms", func(t *trial) float64 { return t.LatencyP95 }, plainSig),
		num("model size", "serialized model bytes", func(t *trial) float64 { return t.ModelBytes }, fmtBytes),
		num("peak mem", "peak memory while training, bytes", func(t *trial) float64 { return t.PeakBytes }, fmtBytes),
		num("train s", "training wall time, seconds", func(t *trial) float64 { return t.TrainSeconds }, plainSig),
		num("epochs", "epochs run", func(t *trial) float64 { return t.EpochsRun }, plainNumber),
		{label: "status", title: strings.Join(tables.Statuses, ", "), text: func(t *trial) string { return t.Status }},
		{label: "setting", title: "the search setting the trial tried; outranked: not the one chosen for its size on validation", text: func(t *trial) string {
			if t.Outranked {
				return t.Setting + " (outranked)"
			}
			return t.Setting
		}, when: func(d *data) bool { return d.anyTrial(func(t *trial) bool { return t.Setting != "" }) }},
	}
	var keep []tableColumn
	for _, c := range cols {
		if c.when != nil && !c.when(d) {
			continue
		}
		present, distinct := false, map[string]bool{}
		for i := range d.trials {
			t := &d.trials[i]
			var key string
			if c.numeric {
				v := c.value(t)
				if finite(v) {
					present = true
				}
				key = strconv.FormatFloat(v, 'g', -1, 64)
			} else {
				s := c.text(t)
				if s != "" {
					present = true
				}
				key = s
			}
			distinct[key] = true
		}
		if present && (!c.varies || len(distinct) > 1) {
			keep = append(keep, c)
		}
	}
	return keep
}

func trialTable(d *data) tableView {
	cols := tableColumns(d)
	tv := tableView{}
	tv.Headers = append(tv.Headers, header{Label: "", Title: "★ marks the chosen model"})
	for _, c := range cols {
		tv.Headers = append(tv.Headers, header{Label: c.label, Title: c.title, Numeric: c.numeric})
	}
	idx := make([]int, len(d.trials))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool {
		ta, tb := &d.trials[idx[a]], &d.trials[idx[b]]
		if ta.Round != tb.Round {
			return ta.Round < tb.Round
		}
		return ta.row < tb.row
	})
	for _, i := range idx {
		t := &d.trials[i]
		r := rowView{Chosen: d.chosen == t, Failed: !t.ok(), Title: t.Error}
		mark := ""
		if r.Chosen {
			mark = "★"
		}
		r.Cells = append(r.Cells, cell{Text: mark, Sort: map[bool]string{true: "0", false: "1"}[r.Chosen]})
		for _, c := range cols {
			if c.numeric {
				v := c.value(t)
				cl := cell{Numeric: true}
				if finite(v) {
					cl.Text = c.format(v)
					cl.Sort = strconv.FormatFloat(v, 'g', -1, 64)
					if c.cellTitle != nil {
						cl.Title = c.cellTitle(t)
					}
				} else {
					cl.Text = "–"
				}
				r.Cells = append(r.Cells, cl)
			} else {
				s := c.text(t)
				cl := cell{Text: s, Sort: s}
				if c.cellTitle != nil {
					cl.Title = c.cellTitle(t)
				}
				if c.label == "status" && t.Error != "" {
					cl.Title = t.Error
				}
				r.Cells = append(r.Cells, cl)
			}
		}
		tv.Rows = append(tv.Rows, r)
	}
	return tv
}

// Number formats, chosen for an ML engineer reading them side by side.

func fmtAcc(v float64) string {
	if !finite(v) {
		return "–"
	}
	return fmt.Sprintf("%.3f", v)
}

func fmtLoss(v float64) string {
	if !finite(v) {
		return "–"
	}
	return plainSig(v)
}

func fmtQuality(metric string, v float64) string {
	if metric == metricLoss {
		return fmtLoss(v)
	}
	return fmtAcc(v)
}

func fmtMs(v float64) string {
	if !finite(v) {
		return "–"
	}
	return plainSig(v) + " ms"
}

// fmtLatency writes a per-sample latency in ms in the unit that reads
// best: batched inference of a small model takes well under a microsecond.
func fmtLatency(ms float64) string {
	switch {
	case !finite(ms):
		return "–"
	case ms < 0.001:
		return plainSig(ms*1e6) + " ns"
	case ms < 1:
		return plainSig(ms*1e3) + " µs"
	default:
		return plainSig(ms) + " ms"
	}
}

// plainSig writes three significant digits without an exponent.
func plainSig(v float64) string {
	if !finite(v) {
		return "–"
	}
	return plainNumber(roundSig(v, 3))
}

func fmtSig(v float64) string {
	if !finite(v) {
		return "–"
	}
	a := math.Abs(v)
	if a != 0 && (a < 1e-4 || a >= 1e6) {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return plainNumber(roundSig(v, 3))
}

func fmt2(v float64) string {
	if !finite(v) {
		return "–"
	}
	return fmt.Sprintf("%.2f", v)
}

func fmt3(v float64) string {
	if !finite(v) {
		return "–"
	}
	return fmt.Sprintf("%.3f", v)
}

// FormatParams writes a parameter count as people read one: 950, 12.5k,
// 35.69M, 1.2B (two decimals at most, in thousands, millions, billions or
// trillions). It is the one format of a count of parameters, shared by
// the report and the CLI; exports keep the exact count.
func FormatParams(v float64) string {
	if !finite(v) {
		return "–"
	}
	a := math.Abs(v)
	units := []struct {
		div float64
		sfx string
	}{{1, ""}, {1e3, "k"}, {1e6, "M"}, {1e9, "B"}, {1e12, "T"}}
	u := 0
	for u+1 < len(units) && a >= units[u+1].div {
		u++
	}
	if u == 0 {
		return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	}
	x := math.Round(v/units[u].div*100) / 100
	if math.Abs(x) >= 1000 && u+1 < len(units) {
		// 999,999 is 1000.00k at two decimals: one unit up, 1M.
		u++
		x = math.Round(v/units[u].div*100) / 100
	}
	return strconv.FormatFloat(x, 'f', -1, 64) + units[u].sfx
}

// fmtCount writes an integer count with thousands separators.
func fmtCount(v float64) string {
	if !finite(v) {
		return "–"
	}
	s := strconv.FormatFloat(math.Round(math.Abs(v)), 'f', 0, 64)
	var b strings.Builder
	if v < 0 {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func fmtBytes(v float64) string {
	if !finite(v) {
		return "–"
	}
	switch a := math.Abs(v); {
	case a >= 1e9:
		return plainSig(v/1e9) + " GB"
	case a >= 1e6:
		return plainSig(v/1e6) + " MB"
	case a >= 1e3:
		return plainSig(v/1e3) + " kB"
	default:
		return fmtCount(v) + " B"
	}
}

func fmtSeconds(v float64) string {
	if !finite(v) {
		return "–"
	}
	if v >= 90 {
		return fmtDuration(time.Duration(v * float64(time.Second)))
	}
	return plainSig(v) + " s"
}

func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func confText(c float64) string {
	if !finite(c) || c <= 0 || c >= 1 {
		return "confidence"
	}
	return plainNumber(math.Round(c*1000)/10) + "%"
}

var (
	fontOnce sync.Once
	fontRule template.CSS
	fontErr  error
)

// fontCSS embeds the chart font once for the whole page, so the SVGs'
// text renders with the metrics gonum measured it with, offline.
func fontCSS() (template.CSS, error) {
	fontOnce.Do(func() {
		face := font.DefaultCache.Lookup(chartFont, 10)
		if face.Face == nil {
			fontErr = fmt.Errorf("chart font %s %s is not registered", chartFont.Typeface, chartFont.Variant)
			return
		}
		var raw bytes.Buffer
		if _, err := face.Face.WriteSourceTo(nil, &raw); err != nil {
			fontErr = fmt.Errorf("chart font: %w", err)
			return
		}
		fontRule = template.CSS(`@font-face{font-family:"Liberation Sans";font-style:normal;font-weight:400;src:url(data:font/ttf;base64,` +
			base64.StdEncoding.EncodeToString(raw.Bytes()) + `) format("truetype");}`)
	})
	return fontRule, fontErr
}
