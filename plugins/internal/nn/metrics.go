package nn

import (
	"math"
	"slices"
)

// Metrics are a model's scores on a set of rows.
type Metrics struct {
	// Loss is the mean cross-entropy (classification) or the mean squared
	// error in the target's units squared (regression).
	Loss float64
	// Accuracy is the share of rows whose highest logit is their class;
	// NaN for regression.
	Accuracy float64
	// RMSE and R2 score regression; NaN for classification. R2 is
	// 1 - SSres/SStot around the rows' own mean (1 for a perfect fit and 0
	// otherwise when the targets are constant, as scikit-learn does).
	RMSE, R2 float64
}

// Evaluate scores m on d.
func Evaluate(m Model, d *Data) (Metrics, error) {
	if err := d.Check(m.Spec()); err != nil {
		return Metrics{}, err
	}
	b := min(max(d.Rows, 1), evalBatch)
	return evaluate(m.NewPredictor(b), m.Spec(), d, b), nil
}

// evaluate scores a predictor on d in batches of at most batch rows.
func evaluate(p Predictor, spec Spec, d *Data, batch int) Metrics {
	out := Metrics{Accuracy: math.NaN(), RMSE: math.NaN(), R2: math.NaN()}
	if d.Rows == 0 {
		out.Loss = math.NaN()
		return out
	}
	k := spec.Outputs
	var loss float64
	var correct int
	for lo := 0; lo < d.Rows; lo += batch {
		rows := min(batch, d.Rows-lo)
		y := p.Predict(d.X[lo*d.Cols:], rows)
		for r := range rows {
			if spec.Task == Classification {
				z := y[r*k : (r+1)*k]
				mx := slices.Max(z)
				var sum float64
				arg := 0
				for j, v := range z {
					sum += math.Exp(float64(v - mx))
					if v > z[arg] {
						arg = j
					}
				}
				label := d.Labels[lo+r]
				loss += math.Log(sum) - float64(z[label]-mx)
				if int32(arg) == label {
					correct++
				}
			} else {
				diff := float64(y[r]) - float64(d.Targets[lo+r])
				loss += diff * diff
			}
		}
	}
	n := float64(d.Rows)
	out.Loss = loss / n
	if spec.Task == Classification {
		out.Accuracy = float64(correct) / n
		return out
	}
	out.RMSE = math.Sqrt(out.Loss)
	var mean float64
	for _, t := range d.Targets {
		mean += float64(t)
	}
	mean /= n
	var ssTot float64
	for _, t := range d.Targets {
		ssTot += (float64(t) - mean) * (float64(t) - mean)
	}
	switch {
	case ssTot > 0:
		out.R2 = 1 - loss/ssTot
	case loss == 0:
		out.R2 = 1
	default:
		out.R2 = 0
	}
	return out
}
