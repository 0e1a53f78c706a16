// Package prune stops trials early across trials: a pruner sees the
// intermediate values every trial reports at its steps (an epoch's
// validation accuracy, say) and tells a running trial to stop when it is
// doing worse than the others did at the same point. It is shared by the
// stages that train (exec, evaluation), which decide what a step and a
// value are and what stopping costs; Stage (history.go) is a stage run's
// pruner, fed with the trials of its earlier rounds.
//
// A pruner kind is one file: median.go (Optuna's MedianPruner: worse than
// the median of the finished trials at the same step) and asha.go
// (asynchronous successive halving). Block is the HCL block a stage
// declares (`pruner "median" { warmup_trials = 5 }`), checked by New.
//
// A trial that a pruner stopped did not run its budget: its last values
// are not a measurement of the model at full training, and the stages
// record it with status pruned, which the resize stage takes for
// low-fidelity evidence, never for a pass or a miss.
package prune

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Kinds of pruner.
const (
	KindMedian = "median"
	KindASHA   = "asha"
)

var kinds = []string{KindMedian, KindASHA}

// Directions.
const (
	Maximize = "maximize"
	Minimize = "minimize"
)

// Defaults.
const (
	DefaultMetric          = "accuracy"
	DefaultGrace           = 30 * time.Second
	DefaultWarmupTrials    = 5
	DefaultWarmupSteps     = 0
	DefaultMinResource     = 1
	DefaultReductionFactor = 3
)

// maximized and minimized are the metrics whose direction is known; any
// other metric needs direction.
var (
	maximized = []string{"accuracy", "r2", "accuracy_before", "val_accuracy", "val_r2"}
	minimized = []string{"loss", "val_loss", "rmse", "val_rmse", "loss_before", "rmse_before"}
)

// Block is the body of a `pruner "KIND" {}` block in a training stage.
type Block struct {
	Kind      string         `hcl:"kind,label"`
	Metric    string         `hcl:"metric,optional" doc:"The intermediate value judged: a key of the trial's epoch lines (default accuracy)."`
	Direction string         `hcl:"direction,optional" doc:"maximize or minimize: whether a larger metric is better (known for accuracy, r2, loss, rmse and their val_ forms; required for any other metric)."`
	Grace     *time.Duration `hcl:"grace,optional" doc:"How long a trial told to stop may take to end (write its final metrics, save its model) before its process group is killed (default 30s)."`

	WarmupTrials *int `hcl:"warmup_trials,optional" doc:"median: no trial is stopped before this many trials have finished their budget (default 5)."`
	WarmupSteps  *int `hcl:"warmup_steps,optional" doc:"median: no trial is stopped at a step below this one (default 0)."`

	MinResource     *int `hcl:"min_resource,optional" doc:"asha: the step of the first rung (default 1); rung k is at min_resource × reduction_factor^k."`
	ReductionFactor *int `hcl:"reduction_factor,optional" doc:"asha: a trial goes on past a rung only when it is in the best 1/reduction_factor of the trials that reached it (default 3, at least 2)."`
}

// Settings is a checked block.
type Settings struct {
	Kind     string
	Metric   string
	Maximize bool
	Grace    time.Duration

	WarmupTrials, WarmupSteps    int
	MinResource, ReductionFactor int
}

// Check checks a block; its diagnostics' paths start with attr (the
// block's name in the stage, "pruner").
func Check(attr string, b Block) (Settings, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	bad := func(field, summary, detail string) {
		path := []string{attr}
		if field != "" {
			path = append(path, field)
		}
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	s := Settings{
		Kind: b.Kind, Metric: b.Metric, Grace: DefaultGrace,
		WarmupTrials: DefaultWarmupTrials, WarmupSteps: DefaultWarmupSteps,
		MinResource: DefaultMinResource, ReductionFactor: DefaultReductionFactor,
	}
	if !slices.Contains(kinds, b.Kind) {
		bad("", "Unknown pruner", fmt.Sprintf("A pruner is median or asha; found %q.%s", b.Kind, suggest.Hint(b.Kind, kinds)))
	}
	if s.Metric == "" {
		s.Metric = DefaultMetric
	}
	switch b.Direction {
	case Maximize:
		s.Maximize = true
	case Minimize:
	case "":
		switch {
		case slices.Contains(maximized, s.Metric):
			s.Maximize = true
		case slices.Contains(minimized, s.Metric):
		default:
			bad("direction", "Missing direction", fmt.Sprintf("Whether a larger %s is better is not known: set direction = \"maximize\" or \"minimize\".", s.Metric))
		}
	default:
		bad("direction", "Unknown direction", fmt.Sprintf("direction is maximize or minimize; found %q.%s", b.Direction, suggest.Hint(b.Direction, []string{Maximize, Minimize})))
	}
	if b.Grace != nil {
		if *b.Grace < 0 {
			bad("grace", "Invalid grace", fmt.Sprintf("grace is a duration of at least 0s; found %s.", *b.Grace))
		}
		s.Grace = *b.Grace
	}
	intAttr := func(name string, v *int, least int, dst *int, kind string) {
		if v == nil {
			return
		}
		if b.Kind != kind && slices.Contains(kinds, b.Kind) {
			bad(name, "Attribute of another pruner", fmt.Sprintf("%s is an attribute of the %s pruner, not of %s.", name, kind, b.Kind))
			return
		}
		if *v < least {
			bad(name, "Invalid "+strings.ReplaceAll(name, "_", " "), fmt.Sprintf("%s must be at least %d; found %d.", name, least, *v))
			return
		}
		*dst = *v
	}
	intAttr("warmup_trials", b.WarmupTrials, 0, &s.WarmupTrials, KindMedian)
	intAttr("warmup_steps", b.WarmupSteps, 0, &s.WarmupSteps, KindMedian)
	intAttr("min_resource", b.MinResource, 1, &s.MinResource, KindASHA)
	intAttr("reduction_factor", b.ReductionFactor, 2, &s.ReductionFactor, KindASHA)
	return s, diags
}

// Pruner judges running trials by their intermediate values. Trials are
// named by a key unique to each trial. Safe for concurrent use (New's
// pruners lock around the kind's).
type Pruner interface {
	// Report records a trial's value at a step and says whether the
	// trial should stop, and why.
	Report(trial string, step int, value float64) (stop bool, reason string)
	// Finish records a trial's end: complete when it ran its whole
	// budget (not stopped, not failed).
	Finish(trial string, complete bool)
}

// kind is a pruner kind's rule; locked is its Pruner.
type kind interface {
	report(trial string, step int, value float64) (bool, string)
	finish(trial string, complete bool)
}

type locked struct {
	mu sync.Mutex
	k  kind
}

func (l *locked) Report(trial string, step int, value float64) (bool, string) {
	if math.IsNaN(value) || math.IsInf(value, 0) || step < 0 {
		return false, "" // nothing to judge
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.k.report(trial, step, value)
}

func (l *locked) Finish(trial string, complete bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.k.finish(trial, complete)
}

// New returns a fresh pruner of checked settings.
func New(s Settings) Pruner {
	d := direction{maximize: s.Maximize, metric: s.Metric}
	switch s.Kind {
	case KindASHA:
		return &locked{k: newASHA(d, s.MinResource, s.ReductionFactor)}
	default:
		return &locked{k: newMedian(d, s.WarmupTrials, s.WarmupSteps)}
	}
}

// direction compares values of one metric.
type direction struct {
	maximize bool
	metric   string
}

// better reports whether a is strictly better than b.
func (d direction) better(a, b float64) bool {
	if d.maximize {
		return a > b
	}
	return a < b
}

// best is the better of a and b.
func (d direction) best(a, b float64) float64 {
	if d.better(b, a) {
		return b
	}
	return a
}

// sortBestFirst sorts values best first.
func (d direction) sortBestFirst(vs []float64) {
	slices.Sort(vs)
	if d.maximize {
		slices.Reverse(vs)
	}
}

func num(v float64) string { return fmt.Sprintf("%.4g", v) }
