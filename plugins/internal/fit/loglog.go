package fit

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// LogLog is a cost that grows as a power of size: y = Coef·n^Exp, fitted
// as a straight line through (log n, log y). Latency, model bytes and train
// time all behave so over a range of model sizes.
type LogLog struct {
	Coef, Exp float64
	// Sigma is the residual standard deviation in log space (0 with two
	// points); R2 the coefficient of determination of the line.
	Sigma, R2 float64
	Points    int
}

// At returns the fitted cost at size n.
func (f LogLog) At(n float64) float64 { return f.Coef * math.Pow(n, f.Exp) }

// Upper returns a one-sided upper prediction bound at level conf for one
// new observation at n, from the Student t quantile with Points−2 degrees
// of freedom; with two points it is the fit itself.
func (f LogLog) Upper(n, conf float64) float64 {
	if f.Points <= 2 || f.Sigma == 0 {
		return f.At(n)
	}
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(f.Points - 2)}.Quantile(conf)
	return f.At(n) * math.Exp(t*f.Sigma)
}

// SizeFor returns the size at which the fitted cost reaches y; false when
// the cost does not grow with size.
func (f LogLog) SizeFor(y float64) (float64, bool) {
	if !(f.Exp > 0) || !(y > 0) || !(f.Coef > 0) {
		return 0, false
	}
	return math.Pow(y/f.Coef, 1/f.Exp), true
}

// FitLogLog fits y = Coef·n^Exp by least squares on logarithms. Points
// with a non-positive or non-finite n or y are skipped (a cost of zero has
// no logarithm); at least two distinct sizes must remain.
func FitLogLog(n, y []float64) (LogLog, error) {
	if len(n) != len(y) {
		return LogLog{}, fmt.Errorf("fit: %d sizes but %d costs", len(n), len(y))
	}
	var lx, ly []float64
	for i := range n {
		if n[i] > 0 && y[i] > 0 && !math.IsInf(n[i], 0) && !math.IsInf(y[i], 0) {
			lx = append(lx, math.Log(n[i]))
			ly = append(ly, math.Log(y[i]))
		}
	}
	if len(uniqueSorted(lx)) < 2 {
		return LogLog{}, fmt.Errorf("fit: a log-log fit needs two distinct positive sizes with positive costs; %d usable points", len(lx))
	}
	alpha, beta := stat.LinearRegression(lx, ly, nil, false)
	var sse float64
	for i := range lx {
		r := ly[i] - (alpha + beta*lx[i])
		sse += r * r
	}
	out := LogLog{Coef: math.Exp(alpha), Exp: beta, Points: len(lx), R2: stat.RSquared(lx, ly, nil, alpha, beta)}
	if len(lx) > 2 {
		out.Sigma = math.Sqrt(sse / float64(len(lx)-2))
	}
	if math.IsNaN(out.R2) {
		out.R2 = 1 // every cost equal: the flat line explains them fully
	}
	return out, nil
}
