package fit

import (
	"errors"
	"fmt"
	"math"
)

// Curve is the shape of a curve handed to Kneedle.
type Curve int

// Shapes. A quality that rises and saturates against log cost is
// ConcaveIncreasing; a loss that falls and flattens is ConvexDecreasing.
const (
	ConcaveIncreasing Curve = iota
	ConcaveDecreasing
	ConvexIncreasing
	ConvexDecreasing
)

// Kneedle finds the knees of a curve by the Kneedle method (Satopää, Albrecht,
// Irwin and Raghavan, "Finding a 'Kneedle' in a Haystack", ICDCS workshops
// 2011): both axes are scaled to [0, 1], the difference curve is the
// vertical distance from the chord joining the ends (oriented by the shape
// so that it is positive at the bend), each local maximum of it is a
// candidate, and a candidate becomes a knee when the difference falls below
// the threshold d_max − S·mean(Δx) before the next local maximum.
//
// x must be strictly increasing. sensitivity is the paper's S (1 when 0
// is given); larger values call fewer knees. The paper smooths noisy data
// first: hand Kneedle a smooth curve (a fitted one, for instance). The knees
// are returned in order of x, as indices into x.
func Kneedle(x, y []float64, shape Curve, sensitivity float64) ([]int, error) {
	d, err := difference(x, y, shape)
	if err != nil {
		return nil, err
	}
	if sensitivity == 0 {
		sensitivity = 1
	}
	if sensitivity < 0 {
		return nil, fmt.Errorf("kneedle: sensitivity %g is negative", sensitivity)
	}
	n := len(x)
	// Mean spacing of the normalized x is 1/(n−1).
	step := sensitivity / float64(n-1)
	var knees []int
	for i := 1; i < n-1; i++ {
		if !(d[i] > d[i-1] && d[i] >= d[i+1]) {
			continue
		}
		threshold := d[i] - step
		for j := i + 1; j < n; j++ {
			if j < n-1 && d[j] > d[j-1] && d[j] >= d[j+1] {
				break // the next local maximum came first
			}
			if d[j] < threshold {
				knees = append(knees, i)
				break
			}
		}
	}
	return knees, nil
}

// Knee returns the most pronounced knee Kneedle finds (the one farthest
// from the chord) and false when there is none.
func Knee(x, y []float64, shape Curve, sensitivity float64) (int, bool, error) {
	knees, err := Kneedle(x, y, shape, sensitivity)
	if err != nil || len(knees) == 0 {
		return 0, false, err
	}
	d, _ := difference(x, y, shape)
	best := knees[0]
	for _, k := range knees[1:] {
		if d[k] > d[best] {
			best = k
		}
	}
	return best, true, nil
}

// difference returns Kneedle's difference curve.
func difference(x, y []float64, shape Curve) ([]float64, error) {
	if len(x) != len(y) {
		return nil, fmt.Errorf("kneedle: %d x values but %d y values", len(x), len(y))
	}
	n := len(x)
	if n < 3 {
		return nil, errors.New("kneedle: a knee needs at least three points")
	}
	for i := range x {
		if math.IsNaN(x[i]) || math.IsInf(x[i], 0) || math.IsNaN(y[i]) || math.IsInf(y[i], 0) {
			return nil, fmt.Errorf("kneedle: point %d is not finite", i)
		}
		if i > 0 && !(x[i] > x[i-1]) {
			return nil, fmt.Errorf("kneedle: x is not strictly increasing at point %d", i)
		}
	}
	ylo, yhi := y[0], y[0]
	for _, v := range y {
		ylo, yhi = math.Min(ylo, v), math.Max(yhi, v)
	}
	d := make([]float64, n)
	if yhi == ylo {
		return d, nil // flat: no bend anywhere
	}
	xr := x[n-1] - x[0]
	for i := range x {
		xn := (x[i] - x[0]) / xr
		yn := (y[i] - ylo) / (yhi - ylo)
		switch shape {
		case ConcaveIncreasing: // above the chord y = x
			d[i] = yn - xn
		case ConvexIncreasing: // below the chord y = x
			d[i] = xn - yn
		case ConcaveDecreasing: // above the chord y = 1 − x
			d[i] = yn - (1 - xn)
		case ConvexDecreasing: // below the chord y = 1 − x
			d[i] = (1 - xn) - yn
		default:
			return nil, fmt.Errorf("kneedle: unknown curve shape %d", shape)
		}
	}
	return d, nil
}

// Difference returns Kneedle's difference curve for the points: the
// oriented distance of each from the chord in normalized coordinates
// (zero at both ends, largest at the most pronounced bend).
func Difference(x, y []float64, shape Curve) ([]float64, error) { return difference(x, y, shape) }
