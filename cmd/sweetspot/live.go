package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/sweetspot-ml/sweetspot/pipeline/report"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// liveDisplay draws one live line per running stage on a terminal: trials
// done of total, the best result so far and the time left; everything else
// (decisions, failures) scrolls above the bars.
type liveDisplay struct {
	mu    sync.Mutex
	p     *mpb.Progress
	bars  map[string]*liveBar
	plain *eventPrinter // formats the lines written above the bars
}

type liveBar struct {
	bar  *mpb.Bar
	mu   sync.Mutex
	best liveBest
	msg  string
}

// liveBest is the best result a stage has reported so far, with the model
// that reached it when the progress says which.
type liveBest struct {
	metric string
	value  float64
	set    bool
	// model is the trial's candidate id (the model's name, with a suffix
	// for a quantized or pruned variant), "" when unknown; params its
	// parameter count, NaN when unknown.
	model  string
	params float64
}

// offer keeps v when it beats the best so far: higher is better, or lower.
func (b *liveBest) offer(metric string, v float64, higher bool, model string, params float64) {
	if b.set && b.metric == metric && ((higher && b.value >= v) || (!higher && b.value <= v)) {
		return
	}
	*b = liveBest{metric: metric, value: v, set: true, model: model, params: params}
}

// String is the best as the live line shows it: "accuracy 0.9510 ·
// big-model (35.69M params)".
func (b liveBest) String() string {
	if !b.set {
		return ""
	}
	s := fmt.Sprintf("%s %.4f", b.metric, b.value)
	if m := strings.TrimSpace(report.DescribeModel(b.model, "", b.params)); m != "" {
		s += " · " + m
	}
	return s
}

// progressTrial is the candidate id a progress message names: the evaluation
// stages write "trial ID: measurements" after each trial; "" when the
// message says otherwise.
func progressTrial(msg string) string {
	rest, ok := strings.CutPrefix(msg, "trial ")
	if !ok {
		return ""
	}
	id, _, ok := strings.Cut(rest, ":")
	if !ok || id == "" || strings.ContainsAny(id, " \t") {
		return ""
	}
	return id
}

func newLiveDisplay(w io.Writer, plain *eventPrinter) *liveDisplay {
	return &liveDisplay{
		p:     mpb.New(mpb.WithOutput(w), mpb.WithWidth(24), mpb.WithRefreshRate(150*time.Millisecond)),
		bars:  map[string]*liveBar{},
		plain: plain,
	}
}

func barKey(e runner.Event) string {
	if e.Round > 0 {
		return fmt.Sprintf("%s round %d", e.Stage, e.Round)
	}
	return e.Stage
}

func (d *liveDisplay) event(e runner.Event) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch e.Type {
	case runner.EventStageStarted:
		lb := &liveBar{}
		lb.bar = d.p.AddBar(0,
			mpb.BarFillerClearOnComplete(),
			mpb.PrependDecorators(
				decor.Name(barKey(e), decor.WC{W: 30, C: decor.DindentRight}),
				decor.CountersNoUnit("%d/%d", decor.WCSyncWidth),
			),
			mpb.AppendDecorators(
				decor.OnComplete(decor.AverageETA(decor.ET_STYLE_GO, decor.WC{W: 6}), "done"),
				decor.Any(func(decor.Statistics) string {
					lb.mu.Lock()
					defer lb.mu.Unlock()
					if lb.best.set {
						return "  best " + lb.best.String()
					}
					return "  " + lb.msg
				}),
			),
		)
		d.bars[barKey(e)] = lb
	case runner.EventProgress:
		lb := d.bars[barKey(e)]
		if lb == nil || e.Progress == nil {
			return
		}
		pr := e.Progress
		lb.mu.Lock()
		lb.msg = pr.Message
		model, params := progressTrial(pr.Message), math.NaN()
		if v, ok := pr.Metrics[tables.ColParams]; ok {
			params = v
		}
		if v, ok := pr.Metrics[tables.ColAccuracy]; ok && !math.IsNaN(v) {
			lb.best.offer(tables.ColAccuracy, v, true, model, params)
		} else if v, ok := pr.Metrics[tables.ColRMSE]; ok && !math.IsNaN(v) {
			lb.best.offer(tables.ColRMSE, v, false, model, params)
		}
		lb.mu.Unlock()
		if pr.Total > 0 {
			lb.bar.SetTotal(pr.Total, false)
		}
		lb.bar.SetCurrent(pr.Done)
	case runner.EventStageFinished, runner.EventStageFailed:
		if lb := d.bars[barKey(e)]; lb != nil {
			if e.Type == runner.EventStageFailed {
				lb.bar.Abort(false)
			} else {
				lb.bar.SetTotal(-1, true)
			}
			delete(d.bars, barKey(e))
		}
		if e.Type == runner.EventStageFailed || e.Source != "" {
			d.plain.write(d.p, e)
		}
	case runner.EventRunFinished:
		for k, lb := range d.bars {
			lb.bar.Abort(false)
			delete(d.bars, k)
		}
		d.plain.write(d.p, e)
	default:
		d.plain.write(d.p, e)
	}
}

// wait lets the bars draw their last state.
func (d *liveDisplay) wait() { d.p.Wait() }
