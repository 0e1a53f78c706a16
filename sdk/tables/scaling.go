package tables

import (
	"encoding/json"
	"fmt"
)

// ColScaling is the decision column holding a compute_optimal search's
// fitted law as a JSON Scaling object; null for other strategies.
const ColScaling = "scaling"

// Scaling is the law a compute_optimal search fitted, loss against size
// and resource L(N, D) = E + A·N^(−Alpha) + B·D^(−Beta) (for an accuracy,
// the gap below 1), with intervals, and the compute-optimal frontier it
// implies under the cost C = K·N·D. Each interval is [lo, hi] at the
// decision's confidence.
type Scaling struct {
	// Metric is loss or accuracy; Resource names D ("samples": training
	// rows times epochs, or "epochs" when the rows are unknown); Cost names
	// C ("flops" or "seconds").
	Metric   string `json:"metric"`
	Resource string `json:"resource"`
	Cost     string `json:"cost"`
	// K is the cost per parameter and unit of resource: 6 for FLOPs, the
	// median measured seconds otherwise.
	K float64 `json:"k"`

	E     Estimate `json:"e"`
	A     Estimate `json:"a"`
	Alpha Estimate `json:"alpha"`
	B     Estimate `json:"b"`
	Beta  Estimate `json:"beta"`
	// Exponent is Beta/(Alpha + Beta): N* grows as C to this power.
	Exponent Estimate `json:"exponent"`

	// Budget is the compute budget; NOpt, DOpt and Predicted the size,
	// resource and predicted value (metric units) minimising the loss
	// there.
	Budget    float64  `json:"budget"`
	NOpt      Estimate `json:"n_opt"`
	DOpt      Estimate `json:"d_opt"`
	Predicted Estimate `json:"predicted"`
	// Frontier samples N*(C) with its band over budgets from the smallest
	// run measured to the budget.
	Frontier []FrontierPoint `json:"frontier"`
	// Runs are the measurements fitted, and any measured at the budget.
	Runs []ScalingRun `json:"runs"`
	// Held is the extrapolation check, once a run at the budget is
	// measured: the law fitted on the runs below the budget, its
	// prediction there and what was measured.
	Held *HeldOut `json:"held,omitempty"`
}

// Estimate is a value with its interval.
type Estimate struct {
	Value float64 `json:"value"`
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
}

// FrontierPoint is the compute-optimal size at one budget.
type FrontierPoint struct {
	C float64 `json:"c"`
	N float64 `json:"n"`
	// Lo and Hi bound N.
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// ScalingRun is one measured run: its size, resource, cost and value in
// the metric's units.
type ScalingRun struct {
	ID    string  `json:"id"`
	N     float64 `json:"n"`
	D     float64 `json:"d"`
	C     float64 `json:"c"`
	Value float64 `json:"value"`
}

// HeldOut compares a prediction from smaller runs with a measurement.
type HeldOut struct {
	ID        string   `json:"id"`
	Predicted Estimate `json:"predicted"`
	Measured  float64  `json:"measured"`
	// FitRuns is how many runs the prediction rested on.
	FitRuns int `json:"fit_runs"`
}

// ParseScaling decodes a decision's scaling column.
func ParseScaling(s string) (*Scaling, error) {
	var out Scaling
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("column %s: %w", ColScaling, err)
	}
	return &out, nil
}
