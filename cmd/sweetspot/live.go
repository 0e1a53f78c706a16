package main

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
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
	best string
	msg  string
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
					if lb.best != "" {
						return "  best " + lb.best
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
		if v, ok := pr.Metrics["accuracy"]; ok && !math.IsNaN(v) {
			lb.best = betterOf(lb.best, "accuracy", v, true)
		} else if v, ok := pr.Metrics["rmse"]; ok && !math.IsNaN(v) {
			lb.best = betterOf(lb.best, "rmse", v, false)
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

// betterOf keeps the best value seen of a metric, as display text.
func betterOf(cur, name string, v float64, higher bool) string {
	var old float64
	if _, err := fmt.Sscanf(cur, name+" %g", &old); err == nil {
		if (higher && old >= v) || (!higher && old <= v) {
			return cur
		}
	}
	return fmt.Sprintf("%s %.4f", name, v)
}
