// Package resize is the "resize" stage: it closes the sweetspot loop. From
// the results of every round so far it fits quality and cost against model
// size, decides whether the search has found its answer, and proposes the
// next sizes to train.
//
// # Ports
//
// Input "input" is the evaluation stage's results table (every round so
// far; the `round` column tells them apart). Input "requirements"
// (optional) is the requirements table, for the targets and the budget;
// the stage's own target attributes override it.
//
// Output "decision" is one row per call (the host concatenates the rounds);
// output "proposals" is the next round's candidates, in the candidates
// schema of the model_choice stage. The stage declares the loop
// {decision, proposals}: the host runs the loop again while the decision's
// status is "continue" and feeds the proposals to the loop_to stage.
//
// # Rounds
//
// `round` counts candidate generations: model_choice's ladder is round 0.
// The decision row's round is the latest round among the results it judged,
// and its proposals carry that round plus one.
//
// # Size, quality, cost
//
// Size is the parameter count N. Quality is test accuracy, or, when the
// target is a max_loss (or the task is regression with no accuracy target),
// the loss, handled internally as −loss so that higher is better. Quality is
// fitted as q(N) = q_inf − A·N^(−alpha) over the MLP sizes evaluated so far
// (for a loss: loss(N) = q_inf + A·N^(−alpha), and fit_q_inf is the loss
// floor), with bootstrap intervals at the declared confidence. Latency p95,
// model bytes and train seconds are each fitted as Coef·N^Exp.
//
// The fit is trusted once it rests on at least five distinct sizes, its
// optimizer converged, it explains at least 95% of the variance of the
// qualities and most bootstrap refits succeeded.
//
// A model meets the requirements when its own measurements do: its
// quality meets the target and each cost is within its limit, as measured
// on that model. Nothing is inferred from other models, and the fit never
// vetoes a measured pass: a measurement is what the model did, and a
// table's rows (replay) have no luck in them. The fit steers the search
// (where to measure next) and is evidence of what cannot be reached (its
// upper confidence bound), never of what a measured model did. Where the
// trusted fit's lower bound at a measured pass misses the target, the
// search looks up the step above the pass before stopping, and the reason
// says what the fit said and what that neighbour measured; the pass is
// kept either way.
//
// # The search
//
// The search runs along width at one depth: the depth of the current best
// model (or of the largest model while none is good enough). Proposals copy
// depth, family and hyperparameters from the nearest evaluated model of
// that depth; their params and FLOPs are exact, counted as model_choice
// counts them. An evaluated (depth, width) is never proposed again. When
// the space port lists MLP models of the depth, they are the only widths
// the search proposes there (each listed model as it is listed), so it
// never trains more models than the list holds.
//
// The search's resolution is a step: a tolerance step of width (a ratio of
// 2^tolerance, at least one width), or one listed model. smallest_meeting
// (bracket.go) brackets the answer between the smallest model measured to
// meet every requirement and the widest measured below it, and proposes
// widths inside the bracket (evenly in log width, or, with a trusted fit,
// around the width where the fitted curve reaches the target: two
// proposals half a tolerance either side, kept an eighth of the bracket
// from its ends so the bracket shrinks by an eighth at least even when the
// fit is wrong). The bracket is closed when it is within the tolerance or
// holds no untried width. With nothing meeting every requirement but a
// model reaching the quality target while breaking a cost limit, it
// brackets below that model the same way. With nothing reaching the target
// it grows towards the top of the range: an octave at a time from the
// widest failing width (proposals_per_round octaves per round, the last at
// the top), or around where the trusted fitted curve reaches the target.
// Growing geometrically keeps the search's cost a small multiple of its
// answer's when the answer is small: started from model_choice's narrow
// start (start = "narrow", with max_width set to the range's top) it never
// trains the wide models at all.
//
// # No monotonicity assumed
//
// Measured quality is not monotone in width (small models train unevenly,
// a table's rows are noisy), and no cost is assumed to grow with size: a
// model's latency, bytes and train time are checked on the model itself.
// A failure therefore does not prove that every smaller model fails, and
// a bracket's failure could hide a smaller model that passes behind a
// dip. The search bounds that risk: before it stops, the three models
// measured next below the bracket's failure must fail too, each within a
// step of the one above it (a tolerance step apart at most, or with no
// untried width between; with listed models, the three listed just
// below), and where a link is missing the search measures a width a step
// below the last one (corroborate, as the catalog search does for table
// families). A pass found there becomes the new answer and the bracket
// moves below it. A smaller model that passes is then missed only if it
// lies below a run of four failures each within a step of the next (a dip
// at least four steps long: about an octave at the default tolerance; four
// listed models), or if it passes alone between two of those failures,
// less than a step apart: a pass narrower than the search's resolution.
// The check stops where the trusted fit rules out the next model
// below (its bound on one measurement misses the target, see Infeasible):
// the bound falls with width, so it rules out every narrower model too.
// The check costs at most
// three trials per search, each of a model narrower than the answer, and
// fewer when earlier rounds measured those widths already (a narrow start
// has, below its first octave). docs/search.md states the guarantee.
//
// # Infeasible
//
// "infeasible" needs evidence: nothing measured meets every requirement,
// and every step of the range at the search's depth holds a measured
// model, except the steps the trusted fit rules out (once it rests on six
// distinct sizes, so that three residuals measure the noise): its
// optimistic bound on one measurement misses the target there. That bound is the upper
// edge of the curve's band raised by how far one measurement may land
// above the curve (the noise at Student's t quantile, shared among the
// steps, or the farthest a measured model landed above it): the band
// bounds the curve, and a model's own measurement scatters about it. The
// fitted curves rise with size, so a bound missing at the top rules out
// every step. Until then the
// search keeps measuring the steps left, the one farthest from every
// measurement first. When the target is above the fitted ceiling this
// costs nothing beyond the top and five sizes for a trusted fit; when the
// quality can be reached but a cost limit is broken wherever it is, it
// costs a trial per step where the fit lets the target be reached (about
// half the grid of a 4..1024 range), since an unmeasured model's cost is
// unknown. The reason says what was measured and what the fit ruled out.
//
// # Families of known models
//
// When the candidates are table rows or axis points (family_kind table or
// axis), every model that exists is known: model_choice's space port lists
// them, and the stage's optional "space" input takes it. The search then
// proposes only untried models of the space, and answers only with a
// measured one, by name (catalog.go): within each family it keeps the
// smallest model measured to meet every requirement and the largest
// model below it measured to miss, and looks up the untried model in the
// middle of that bracket (in log size), one per family per round,
// families with the smallest passes first. A failure closes the bracket
// only once the three models just below it fail too, since measured
// quality is not monotone in size. Only models smaller than the best pass
// over all families are searched, unless per_family is set, when every
// family is searched to its own answer; the decision's family_answers
// gives each family's. Interpolating between rows would be a prediction,
// never an answer, so no model is invented. knee, pareto and max_utility
// need the MLP family's fitted curve and refuse such candidates.
//
// knee, pareto and max_utility locate an optimum of the fitted curves over
// the feasible widths (Kneedle on quality against log cost; the point of
// the curve nearest the ideal of best quality at least cost, axes scaled
// to [0, 1]; quality minus price·log2(cost)) and converge when an evaluated
// model lies within half a tolerance of it. Until the fit is trusted they
// choose among the evaluated models and refine both sides of the choice.
// Models failing a requirement are never chosen; while none meets the
// requirements they search as smallest_meeting does.
//
// # Compute-optimal
//
// compute_optimal (compute_optimal.go) answers another question: for a
// compute budget (budget_flops or budget_seconds), the width and epochs
// that minimise the loss. It fits loss against size and samples seen
// together on runs much cheaper than the budget, extends the design of
// widths x epochs where the fit is least certain, then proposes the
// compute-optimal run and, once it is measured, reports the prediction
// beside the measurement.
//
// # Code
//
// Each strategy is a file of its own behind one small interface
// (strategy.go): smallest_meeting.go, knee.go, pareto.go, max_utility.go,
// compute_optimal.go;
// the trade-off strategies share optimum.go. engine.go holds the
// measurements, the fits, the budget and the proposals; bracket.go the
// bracket engine; wording.go the reasons; catalog.go the catalog search.
//
// # Budget
//
// max_trials counts every row of the results (every trial of every round,
// failed ones included); a round never proposes more than the trials left.
// max_wall is compared with the time spent, estimated as the sum of the
// trials' train_seconds, plus the predicted train time of the proposals.
// When nothing more can be afforded the status is budget_exhausted and the
// best model so far is reported.
package resize

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "resize"

// Port names.
const (
	InputPort        = sdk.PrimaryInput
	RequirementsPort = "requirements"
	SpacePort        = "space"
	DecisionPort     = "decision"
	ProposalsPort    = "proposals"
)

// Strategies.
const (
	SmallestMeeting = "smallest_meeting"
	KneeStrategy    = "knee"
	ParetoStrategy  = "pareto"
	MaxUtility      = "max_utility"
	ComputeOptimal  = "compute_optimal"
)

// Costs a strategy may weigh quality against.
const (
	CostParams    = "params"
	CostLatency   = "latency"
	CostBytes     = "bytes"
	CostTrainTime = "train_time"
)

var costs = []string{CostParams, CostLatency, CostBytes, CostTrainTime}

// Decision statuses.
const (
	StatusContinue        = "continue"
	StatusConverged       = "converged"
	StatusInfeasible      = "infeasible"
	StatusBudgetExhausted = "budget_exhausted"
)

// Config is the body of a `stage "resize" "NAME" {}` block. loop_to and
// max_rounds belong to the host and are not part of it.
type Config struct {
	Strategy          string   `hcl:"strategy,optional" doc:"How to choose: smallest_meeting (default: the smallest model measured to meet every requirement), knee (Kneedle on quality against log cost), pareto (the point of the quality/cost front nearest the ideal), max_utility (quality minus price per doubling of cost) or compute_optimal (the width and epochs that minimise the loss for budget_flops or budget_seconds). smallest_meeting works from any start and is cheapest from model_choice's start = \"narrow\" with max_width set; knee, pareto and max_utility look for an optimum across the range, so start them from model_choice's ladder."`
	Tolerance         *float64 `hcl:"tolerance,optional" doc:"Stop when the answer is pinned to within this many doublings of width (default 0.25, a ratio of 2^0.25, about 19%)."`
	ProposalsPerRound *int     `hcl:"proposals_per_round,optional" doc:"Sizes proposed per round (default 2)."`
	MaxRepeats        *int     `hcl:"max_repeats,optional" doc:"Most measurements of one model (default 3): when the smallest passing model, or the failure just below it, lies within two standard errors of the target (the noise measured by the repeats; before any model has two, one repeat measures it), it is measured again, with the next repeat, up to this many times, where the results say a repeat is a new measurement (the evaluation and exec stages, a replay table holding more). 1 turns the automatic repeats off."`
	Confidence        *float64 `hcl:"confidence,optional" doc:"Two-sided level of the fit's confidence intervals (default 0.9)."`
	Price             *float64 `hcl:"price,optional" doc:"For max_utility: the quality one doubling of cost is worth (0.01: doubling the cost must buy at least one point of accuracy)."`
	Cost              string   `hcl:"cost,optional" doc:"The cost knee, pareto and max_utility weigh quality against: params (default), latency, bytes or train_time."`
	Sensitivity       *float64 `hcl:"sensitivity,optional" doc:"For knee: Kneedle's sensitivity S (default 1; larger calls fewer knees)."`
	Bootstrap         *int     `hcl:"bootstrap,optional" doc:"Bootstrap replicates behind the confidence intervals (default 200)."`
	Seed              *int64   `hcl:"seed,optional" doc:"Seed of the bootstrap (default 1)."`
	MinWidth          *int     `hcl:"min_width,optional" doc:"Narrowest width to propose (default: the narrowest evaluated)."`
	PerFamily         bool     `hcl:"per_family,optional" doc:"Table and axis families: search every family down to its own smallest model meeting the requirements (the decision's family_answers), not only the families that could beat the overall answer (default false)."`
	BudgetFLOPs       *float64 `hcl:"budget_flops,optional" doc:"For compute_optimal: the training compute budget in FLOPs, counted as 6·params·samples seen (samples: the dataset's rows times epochs)."`
	BudgetSeconds     *float64 `hcl:"budget_seconds,optional" doc:"For compute_optimal: the training budget in seconds of train time, counted as the measured seconds per parameter and sample times params·samples."`
	Resource          string   `hcl:"resource,optional" doc:"For compute_optimal: the training resource D it varies beside size, epochs (default: D is the dataset's rows times epochs) or samples (D is the training rows a run trains on, its samples column, times its epochs: fresh data, at the epochs the measured runs share)."`
	MaxWidth          *int     `hcl:"max_width,optional" doc:"Widest width to propose (default: the widest evaluated); set it above the ladder to let the search grow, and to the range's top with model_choice's start = \"narrow\", which trains only the narrowest widths first."`

	MinAccuracy   *float64       `hcl:"min_accuracy,optional" doc:"Overrides the requirements' min_accuracy."`
	MaxLoss       *float64       `hcl:"max_loss,optional" doc:"Overrides the requirements' max_loss."`
	MaxLatencyMs  *float64       `hcl:"max_latency_ms,optional" doc:"Overrides the requirements' max_latency_ms (p95 per sample)."`
	MaxParams     *int64         `hcl:"max_params,optional" doc:"Overrides the requirements' max_params."`
	MaxModelBytes *int64         `hcl:"max_model_bytes,optional" doc:"Overrides the requirements' max_model_bytes."`
	MaxTrainTime  *time.Duration `hcl:"max_train_time,optional" doc:"Overrides the requirements' max_train_seconds, as a duration such as \"90s\"."`
	MaxTrials     *int           `hcl:"max_trials,optional" doc:"Overrides the requirements' max_trials: most trials over all rounds."`
	MaxWall       *time.Duration `hcl:"max_wall,optional" doc:"Overrides the requirements' max_wall_seconds, as a duration such as \"15m\"."`
}

// InputSchema lists the results columns the stage reads; the evaluation
// stage's results carry them and more.
var InputSchema = arrow.NewSchema(append(slices.Clone(tables.CandidatesSchema.Fields()),
	arrow.Field{Name: "accuracy", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "latency_p95_ms", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "model_bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	arrow.Field{Name: "train_seconds", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "status", Type: arrow.BinaryTypes.String},
), nil)

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		Description: "Fits quality and cost against model size, decides grow, shrink or converged, and proposes the next sizes to train.",
		Inputs: []sdk.Port{{
			Name:        InputPort,
			Description: "The evaluation results of every round so far.",
			Schema:      InputSchema,
		}, {
			Name:        RequirementsPort,
			Description: "The requirements table (targets and budget). Optional: the stage's own target attributes can stand in for it.",
			Schema:      tables.RequirementsSchema,
			Optional:    true,
		}, {
			Name:        SpacePort,
			Description: "Every model of the table and axis families (model_choice's space port): what the search may propose. Optional: without it only the models already measured are known.",
			Schema:      tables.CandidatesSchema,
			Optional:    true,
		}},
		Outputs: []sdk.Port{{
			Name:        DecisionPort,
			Description: "One row per round: status, chosen model, reason, fitted curve with intervals, bracket and budget.",
			Schema:      tables.DecisionSchema,
		}, {
			Name:        ProposalsPort,
			Description: "The candidates to evaluate next round (empty unless the status is continue).",
			Schema:      tables.CandidatesSchema,
		}},
		Loop: &sdk.Loop{DecisionPort: DecisionPort, ProposalsPort: ProposalsPort},
	}
}

// Register adds the resize stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// settings is a checked config with defaults applied.
type settings struct {
	strategy    string
	tolerance   float64
	perRound    int
	maxRepeats  int // 0: DefaultMaxRepeats
	confidence  float64
	price       float64
	cost        string
	sensitivity float64
	bootstrap   int
	seed        uint64
	minWidth    int
	maxWidth    int
	perFamily   bool
	// budgetFLOPs and budgetSeconds are compute_optimal's budget; 0 when
	// unset.
	budgetFLOPs, budgetSeconds float64
	// resource is compute_optimal's resource: resourceEpochs or
	// resourceSamples.
	resource  string
	overrides overrides
}

// overrides are the target attributes of the stage block.
type overrides struct {
	minAccuracy, maxLoss, maxLatencyMs, maxTrainSeconds, maxWallSeconds *float64
	maxParams, maxModelBytes                                            *int64
	maxTrials                                                           *int
}

// Stage decides one round when run.
type Stage struct {
	s settings
}

var _ sdk.Stage = (*Stage)(nil)

// Limits that keep config values meaningful.
const (
	maxPerRound  = 64
	maxRepeats   = 100
	maxBootstrap = 10000
	minBootstrap = 20
	maxWidth     = 1 << 20
)

// New checks a config and returns the stage.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: strings.Split(path, ".")})
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	s := settings{strategy: SmallestMeeting, tolerance: 0.25, perRound: 2, confidence: 0.9, cost: CostParams, sensitivity: 1, bootstrap: 200, seed: 1}
	if c.Strategy != "" {
		s.strategy = c.Strategy
		if !slices.Contains(strategies, c.Strategy) {
			bad("strategy", "Unknown strategy", fmt.Sprintf("strategy must be one of %s; found %q.%s", strings.Join(strategies, ", "), c.Strategy, suggest.Hint(c.Strategy, strategies)))
		}
	}
	kind, _ := kindOf(s.strategy)
	priced := namesWhere(func(k strategyKind) bool { return k.priced })
	weighing := namesWhere(func(k strategyKind) bool { return k.weighsCost })
	if v := c.Tolerance; v != nil {
		s.tolerance = *v
		if !(*v > 0 && *v <= 10) {
			bad("tolerance", "Invalid tolerance", fmt.Sprintf("tolerance is a number of doublings of width, above 0 and at most 10 (0.25 stops within about 19%%); found %g.", *v))
		}
	}
	if v := c.ProposalsPerRound; v != nil {
		s.perRound = *v
		if *v < 1 || *v > maxPerRound {
			bad("proposals_per_round", "Invalid proposals per round", fmt.Sprintf("proposals_per_round must be between 1 and %d; found %d.", maxPerRound, *v))
		}
	}
	if v := c.MaxRepeats; v != nil {
		s.maxRepeats = *v
		if *v < 1 || *v > maxRepeats {
			bad("max_repeats", "Invalid max repeats", fmt.Sprintf("max_repeats must be between 1 and %d measurements of one model; found %d.", maxRepeats, *v))
		}
	}
	if v := c.Confidence; v != nil {
		s.confidence = *v
		if !(*v > 0 && *v < 1) {
			bad("confidence", "Invalid confidence", fmt.Sprintf("confidence is the level of the intervals, strictly between 0 and 1 (0.9 for 90%%); found %g.", *v))
		}
	}
	if v := c.Price; v != nil {
		s.price = *v
		switch {
		case !(*v >= 0 && finite(*v)):
			bad("price", "Invalid price", fmt.Sprintf("price is the quality one doubling of cost is worth, a number of 0 or more; found %g.", *v))
		case !kind.priced:
			bad("price", "Price without "+orList(priced), fmt.Sprintf("price weighs quality against cost for strategy %s; this stage's strategy is %q. Remove price or set strategy = %q.", orList(priced), s.strategy, priced[0]))
		}
	} else if kind.priced {
		bad("price", "Missing price", fmt.Sprintf("strategy %q maximizes quality minus price·log2(cost): set price, the quality one doubling of cost is worth (for example 0.01).", s.strategy))
	}
	if c.Cost != "" {
		s.cost = c.Cost
		switch {
		case !slices.Contains(costs, c.Cost):
			bad("cost", "Unknown cost", fmt.Sprintf("cost must be one of %s; found %q.%s", strings.Join(costs, ", "), c.Cost, suggest.Hint(c.Cost, costs)))
		case !kind.weighsCost:
			bad("cost", "Cost without a trade-off strategy", fmt.Sprintf("cost names what %s weigh quality against; %s uses size alone. Remove cost or choose one of those strategies.", orList(weighing), s.strategy))
		}
	}
	if v := c.Sensitivity; v != nil {
		s.sensitivity = *v
		if !(*v > 0 && finite(*v)) {
			bad("sensitivity", "Invalid sensitivity", fmt.Sprintf("sensitivity is Kneedle's S, a positive number (1 is the paper's default); found %g.", *v))
		}
	}
	if v := c.Bootstrap; v != nil {
		s.bootstrap = *v
		if *v < minBootstrap || *v > maxBootstrap {
			bad("bootstrap", "Invalid bootstrap", fmt.Sprintf("bootstrap must be between %d and %d replicates; found %d.", minBootstrap, maxBootstrap, *v))
		}
	}
	if v := c.Seed; v != nil {
		s.seed = uint64(*v)
	}
	s.perFamily = c.PerFamily
	budgeted := namesWhere(func(k strategyKind) bool { return k.budgeted })
	for _, b := range []struct {
		path string
		v    *float64
		to   *float64
	}{{"budget_flops", c.BudgetFLOPs, &s.budgetFLOPs}, {"budget_seconds", c.BudgetSeconds, &s.budgetSeconds}} {
		if b.v == nil {
			continue
		}
		*b.to = *b.v
		switch {
		case !(*b.v > 0 && finite(*b.v)):
			bad(b.path, "Invalid budget", fmt.Sprintf("%s is a compute budget, a positive number; found %g.", b.path, *b.v))
		case !kind.budgeted:
			bad(b.path, "Budget without "+orList(budgeted), fmt.Sprintf("%s is the compute budget of strategy %s; this stage's strategy is %q. Remove it or set strategy = %q.", b.path, orList(budgeted), s.strategy, budgeted[0]))
		}
	}
	if kind.budgeted {
		switch {
		case c.BudgetFLOPs == nil && c.BudgetSeconds == nil:
			bad("strategy", "Missing compute budget", fmt.Sprintf("strategy %q picks the size and training length that minimise the loss for a compute budget: set budget_flops (6·params·samples) or budget_seconds (train time).", s.strategy))
		case c.BudgetFLOPs != nil && c.BudgetSeconds != nil:
			bad("budget_seconds", "Two compute budgets", "Set budget_flops or budget_seconds, not both.")
		}
	}
	s.resource = resourceEpochs
	if c.Resource != "" {
		s.resource = c.Resource
		switch {
		case !slices.Contains(resources, c.Resource):
			bad("resource", "Unknown resource", fmt.Sprintf("resource must be one of %s; found %q.%s", strings.Join(resources, ", "), c.Resource, suggest.Hint(c.Resource, resources)))
		case !kind.budgeted:
			bad("resource", "Resource without "+orList(budgeted), fmt.Sprintf("resource is the training resource strategy %s varies beside size; this stage's strategy is %q. Remove it or set strategy = %q.", orList(budgeted), s.strategy, budgeted[0]))
		}
	}
	if v := c.MinWidth; v != nil {
		s.minWidth = *v
		if *v < 1 || *v > maxWidth {
			bad("min_width", "Invalid width", fmt.Sprintf("min_width must be between 1 and %d; found %d.", maxWidth, *v))
		}
	}
	if v := c.MaxWidth; v != nil {
		s.maxWidth = *v
		if *v < 1 || *v > maxWidth {
			bad("max_width", "Invalid width", fmt.Sprintf("max_width must be between 1 and %d; found %d.", maxWidth, *v))
		}
	}
	if c.MinWidth != nil && c.MaxWidth != nil && *c.MinWidth > *c.MaxWidth {
		bad("min_width", "Empty width range", fmt.Sprintf("min_width (%d) is above max_width (%d).", *c.MinWidth, *c.MaxWidth))
	}
	o := &s.overrides
	if v := c.MinAccuracy; v != nil {
		o.minAccuracy = v
		if !(*v > 0 && *v <= 1) {
			bad("min_accuracy", "Invalid min accuracy", fmt.Sprintf("min_accuracy is a fraction of correct predictions, above 0 and at most 1; found %g.", *v))
		}
	}
	positive := func(path string, v *float64) *float64 {
		if v != nil && !(*v > 0 && finite(*v)) {
			bad(path, "Invalid "+strings.ReplaceAll(path, "_", " "), fmt.Sprintf("%s must be a positive number; found %g.", path, *v))
		}
		return v
	}
	o.maxLoss = positive("max_loss", c.MaxLoss)
	o.maxLatencyMs = positive("max_latency_ms", c.MaxLatencyMs)
	if v := c.MaxParams; v != nil {
		o.maxParams = v
		if *v < 1 {
			bad("max_params", "Invalid max params", fmt.Sprintf("max_params must be at least 1; found %d.", *v))
		}
	}
	if v := c.MaxModelBytes; v != nil {
		o.maxModelBytes = v
		if *v < 1 {
			bad("max_model_bytes", "Invalid max model bytes", fmt.Sprintf("max_model_bytes must be at least 1; found %d.", *v))
		}
	}
	duration := func(path string, d *time.Duration) *float64 {
		if d == nil {
			return nil
		}
		if *d <= 0 {
			bad(path, "Invalid "+strings.ReplaceAll(path, "_", " "), fmt.Sprintf("%s must be a positive duration; found %s.", path, *d))
		}
		sec := d.Seconds()
		return &sec
	}
	o.maxTrainSeconds = duration("max_train_time", c.MaxTrainTime)
	o.maxWallSeconds = duration("max_wall", c.MaxWall)
	if v := c.MaxTrials; v != nil {
		o.maxTrials = v
		if *v < 1 || *v > math.MaxInt32 {
			bad("max_trials", "Invalid max trials", fmt.Sprintf("max_trials must be between 1 and %d; found %d.", math.MaxInt32, *v))
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return &Stage{s: s}, nil
}

// Run reads the results and requirements, decides, and writes the decision
// and the proposals.
func (st *Stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	dw, err := out.Writer(DecisionPort)
	if err != nil {
		return err
	}
	pw, err := out.Writer(ProposalsPort)
	if err != nil {
		return err
	}
	trials, err := readResults(in)
	if err != nil {
		return err
	}
	req, err := readRequirements(in)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	space, err := readSpace(in)
	if err != nil {
		return err
	}
	d, err := decide(st.s, trials, req, space...)
	if err != nil {
		return err
	}
	annotate(ctx, d)
	sdk.Logger(ctx).Info("resize decision", "round", d.round, "status", d.status, "action", d.action,
		"chosen", d.chosenID(), "proposals", len(d.proposals), "reason", d.reason)

	mem := sdk.Allocator(ctx)
	drec := buildDecision(mem, d)
	defer drec.Release()
	if err := dw.Write(drec); err != nil {
		return fmt.Errorf("write port %s: %w", DecisionPort, err)
	}
	prec := tables.BuildCandidates(mem, d.proposals)
	defer prec.Release()
	if err := pw.Write(prec); err != nil {
		return fmt.Errorf("write port %s: %w", ProposalsPort, err)
	}
	return nil
}

// annotate puts the decision on the stage's span, so that a trace viewer
// shows why the loop went on or stopped.
func annotate(ctx context.Context, d *decision) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{
		attribute.String("decision", d.status),
		attribute.String("resize.action", d.action),
		attribute.String("resize.strategy", d.strategy),
		attribute.String("resize.reason", d.reason),
		attribute.Int("resize.round", int(d.round)),
		attribute.Int("resize.proposals", len(d.proposals)),
		attribute.Int("resize.trials_used", d.trialsUsed),
		attribute.Bool("resize.fit_trusted", d.trusted),
	}
	if d.chosen != nil {
		attrs = append(attrs, attribute.String("resize.chosen", d.chosen.id()), attribute.Int("resize.chosen_width", int(d.chosen.width)))
	}
	if f := d.fitOut; f != nil {
		attrs = append(attrs,
			attribute.Float64("resize.fit.q_inf", f.qinf), attribute.Float64("resize.fit.q_inf_lo", f.qinfLo), attribute.Float64("resize.fit.q_inf_hi", f.qinfHi),
			attribute.Float64("resize.fit.a", f.a), attribute.Float64("resize.fit.a_lo", f.aLo), attribute.Float64("resize.fit.a_hi", f.aHi),
			attribute.Float64("resize.fit.alpha", f.alpha), attribute.Float64("resize.fit.alpha_lo", f.alphaLo), attribute.Float64("resize.fit.alpha_hi", f.alphaHi),
		)
	}
	widths := make([]int, len(d.proposals))
	for i, p := range d.proposals {
		widths[i] = int(p.Width)
	}
	attrs = append(attrs, attribute.IntSlice("resize.proposed_widths", widths))
	span.SetAttributes(attrs...)
	span.AddEvent("resize decision", trace.WithAttributes(attribute.String("status", d.status), attribute.String("reason", d.reason)))
}

// errNoResults is returned when the input holds no trial at all.
var errNoResults = errors.New("the results table has no rows: nothing to fit")
