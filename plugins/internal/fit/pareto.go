package fit

import (
	"fmt"
	"math"
)

// Pareto returns, in input order, the indices of the points that no other
// point dominates. Each point is a vector of objectives; maximize[j] tells
// whether objective j is better larger (quality) or smaller (a cost). A
// point dominates another when it is at least as good in every objective
// and better in one; equal points do not dominate each other, so both stay.
// A NaN objective counts as the worst possible value.
func Pareto(points [][]float64, maximize []bool) ([]int, error) {
	for i, p := range points {
		if len(p) != len(maximize) {
			return nil, fmt.Errorf("pareto: point %d has %d objectives, want %d", i, len(p), len(maximize))
		}
	}
	// Oriented so that larger is better everywhere.
	or := make([][]float64, len(points))
	for i, p := range points {
		or[i] = make([]float64, len(p))
		for j, v := range p {
			if !maximize[j] {
				v = -v
			}
			if math.IsNaN(v) {
				v = math.Inf(-1)
			}
			or[i][j] = v
		}
	}
	var front []int
	for i := range or {
		dominated := false
		for k := range or {
			if k != i && dominates(or[k], or[i]) {
				dominated = true
				break
			}
		}
		if !dominated {
			front = append(front, i)
		}
	}
	return front, nil
}

func dominates(a, b []float64) bool {
	better := false
	for j := range a {
		if a[j] < b[j] {
			return false
		}
		if a[j] > b[j] {
			better = true
		}
	}
	return better
}
