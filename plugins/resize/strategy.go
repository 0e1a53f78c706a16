package resize

import "slices"

// strategy is one way of choosing the answer along the MLP family's
// width. Each lives in a file of its own (smallest_meeting.go, knee.go,
// pareto.go, max_utility.go). The engine (engine.go) aggregates the
// measurements, fits the curves, applies the budget and turns a strategy's
// plan into the decision and its proposals; the bracket engine
// (bracket.go) is the measured search most strategies end in; wording.go
// says why. Families of named models (table and axis) are searched by the
// catalog search (catalog.go) instead.
type strategy interface {
	// plan decides one round: the status, the chosen model, the reason
	// and where to measure next.
	plan(e *engine) (plan, error)
}

// decider is a strategy that builds the whole decision itself rather than
// a plan along one width: compute_optimal searches size and resource
// together (compute_optimal.go).
type decider interface {
	decide(e *engine) (*decision, error)
}

// strategyKind describes a strategy to the config checks and builds it,
// so that what a strategy needs is written once, here.
type strategyKind struct {
	name string
	// needsTarget: the strategy needs a quality target (min_accuracy or
	// max_loss).
	needsTarget bool
	// weighsCost: the strategy weighs quality against a cost, so the cost
	// attribute applies.
	weighsCost bool
	// priced: the strategy needs price.
	priced bool
	// catalog: the strategy can search families of named models.
	catalog bool
	// budgeted: the strategy needs a compute budget (budget_flops or
	// budget_seconds).
	budgeted bool
	build    func(settings) strategy
}

var strategyKinds = []strategyKind{
	{name: SmallestMeeting, needsTarget: true, catalog: true, build: func(settings) strategy { return smallestMeeting{} }},
	{name: KneeStrategy, weighsCost: true, build: func(s settings) strategy { return knee{sensitivity: s.sensitivity} }},
	{name: ParetoStrategy, weighsCost: true, build: func(settings) strategy { return pareto{} }},
	{name: MaxUtility, weighsCost: true, priced: true, build: func(s settings) strategy { return maxUtility{price: s.price} }},
	{name: ComputeOptimal, budgeted: true, build: func(s settings) strategy {
		return computeOptimal{flops: s.budgetFLOPs, seconds: s.budgetSeconds, samples: s.resource == resourceSamples}
	}},
}

// strategies lists the strategies' names, for the config checks.
var strategies = func() []string {
	var out []string
	for _, k := range strategyKinds {
		out = append(out, k.name)
	}
	return out
}()

// kindOf returns the strategy of a name.
func kindOf(name string) (strategyKind, bool) {
	i := slices.IndexFunc(strategyKinds, func(k strategyKind) bool { return k.name == name })
	if i < 0 {
		return strategyKind{}, false
	}
	return strategyKinds[i], true
}

// namesWhere lists the strategies with a property, for messages.
func namesWhere(has func(strategyKind) bool) []string {
	var out []string
	for _, k := range strategyKinds {
		if has(k) {
			out = append(out, k.name)
		}
	}
	return out
}
