package tables

import "github.com/apache/arrow-go/v18/arrow"

// Decision columns the host and the report read.
const (
	ColChosenCandidateID = "chosen_candidate_id"
	ColChosenName        = "chosen_name"
	ColChosenFamily      = "chosen_family"
	ColChosenParams      = "chosen_params"
	ColReason            = "reason"
	ColFamilyAnswers     = "family_answers"
)

// Decision statuses: the loop goes on while the last decision's status is
// continue.
const (
	DecisionContinue        = "continue"
	DecisionConverged       = "converged"
	DecisionInfeasible      = "infeasible"
	DecisionBudgetExhausted = "budget_exhausted"
)

func f64(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
}

func i32(name string, nullable bool) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int32, Nullable: nullable}
}

func str(name string, nullable bool) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: nullable}
}

// DecisionSchema is the decision table, one row per round of a deciding
// stage (resize); the host reads its round, status and
// chosen_candidate_id. Nulls mean "not known": no model chosen yet, no
// fit yet, no bracket.
var DecisionSchema = arrow.NewSchema([]arrow.Field{
	i32(ColRound, false),
	str(ColStatus, false), // continue | converged | infeasible | budget_exhausted
	str("action", false),  // grow | shrink | refine | stop
	str("strategy", false),
	str(ColChosenCandidateID, true),
	str(ColChosenName, true),
	str(ColChosenFamily, true),
	i32("chosen_width", true),
	{Name: ColChosenParams, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	str(ColReason, false),
	str("metric", false), // accuracy | loss
	f64("target"),
	f64("chosen_measured"),
	f64("predicted_accuracy"), // the fit at the chosen size, in the metric's units
	f64("predicted_lo"),
	f64("predicted_hi"),
	f64("fit_q_inf"), f64("fit_q_inf_lo"), f64("fit_q_inf_hi"),
	f64("fit_a"), f64("fit_a_lo"), f64("fit_a_hi"),
	f64("fit_alpha"), f64("fit_alpha_lo"), f64("fit_alpha_hi"),
	i32("fit_points", false),
	f64("fit_rmse"),
	f64("fit_r2"),
	{Name: "fit_trusted", Type: arrow.FixedWidthTypes.Boolean},
	f64("fit_latency_coef"), f64("fit_latency_exp"),
	f64("fit_bytes_coef"), f64("fit_bytes_exp"),
	f64("fit_train_coef"), f64("fit_train_exp"),
	i32("bracket_lo_width", true),
	i32("bracket_hi_width", true),
	i32("search_depth", true),
	i32("trials_used", false),
	i32("trials_left", true),
	i32("proposals", false),
	str("pareto_front", false), // candidate ids, comma-separated
	// family_answers: table and axis searches, a JSON object from each
	// family to its smallest model measured to meet the requirements
	// ({"name", "params", "measured", "settled"}; settled: no untried
	// model of the family below it could meet them, as far as the search
	// needed to know).
	str(ColFamilyAnswers, true),
	f64("confidence"),
	f64("tolerance"),
	// scaling: compute_optimal searches, the fitted law of loss against
	// size and resource and its compute-optimal frontier, a JSON Scaling
	// object; null for other strategies and for decisions written before
	// it.
	str(ColScaling, true),
}, nil)
