package fit

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Compute-optimal sizes under the law L(N, D) = E + A·N^(−α) + B·D^(−β)
// with a compute cost C = k·N·D: k = 6 counts training FLOPs (a forward
// and a backward pass cost about 6 FLOPs per parameter per sample), or k
// is measured seconds per parameter-sample, read off the runs made.
//
// With D = C/(kN) the loss along a budget is
//
//	f(N) = E + A·N^(−α) + B·(C/k)^(−β)·N^β,
//
// and f'(N) = −α·A·N^(−α−1) + β·B·(C/k)^(−β)·N^(β−1) = 0 gives
//
//	N^(α+β) = (α·A)/(β·B) · (C/k)^β,
//
// so, with G = ((α·A)/(β·B))^(1/(α+β)),
//
//	N*(C) = G·(C/k)^(β/(α+β)),   D*(C) = (C/k)/N* = G^(−1)·(C/k)^(α/(α+β)).
//
// f is convex in log N (a sum of exponentials of log N), so this is the
// one minimum. At it α·A·N^(−α) = β·B·D^(−β): the two terms are in the
// ratio β : α, so L* − E = A·N*^(−α)·(1 + α/β) = B·D*^(−β)·(1 + β/α), which
// inverts the frontier: the least compute reaching a loss L > E is
//
//	N = (A·(1 + α/β)/(L − E))^(1/α),  D = (B·(1 + β/α)/(L − E))^(1/β),  C = k·N·D.

// Optimum is a compute-optimal allocation: size N and resource D for the
// budget C, and the loss the law predicts there.
type Optimum struct {
	C, N, D, Loss float64
}

// ComputeOptimal returns N*(C) and D*(C) for the cost C = k·N·D, by the
// closed form derived above; false when the law has no interior optimum
// (a zero exponent or coefficient).
func (l ScalingLaw) ComputeOptimal(c, k float64) (Optimum, bool) {
	if !(c > 0) || !(k > 0) || !(l.Alpha > 0) || !(l.Beta > 0) || !(l.A > 0) || !(l.B > 0) {
		return Optimum{}, false
	}
	s := l.Alpha + l.Beta
	g := math.Pow(l.Alpha*l.A/(l.Beta*l.B), 1/s)
	n := g * math.Pow(c/k, l.Beta/s)
	d := c / k / n
	o := Optimum{C: c, N: n, D: d, Loss: l.At(n, d)}
	return o, finite([]float64{n, d, o.Loss})
}

// ComputeFor returns the least compute, and its N and D, at which the law
// reaches loss target; false when no budget does (the target at or below
// E, or no interior optimum).
func (l ScalingLaw) ComputeFor(target, k float64) (Optimum, bool) {
	gap := target - l.E
	if !(gap > 0) || !(k > 0) || !(l.Alpha > 0) || !(l.Beta > 0) || !(l.A > 0) || !(l.B > 0) {
		return Optimum{}, false
	}
	n := math.Pow(l.A*(1+l.Alpha/l.Beta)/gap, 1/l.Alpha)
	d := math.Pow(l.B*(1+l.Beta/l.Alpha)/gap, 1/l.Beta)
	o := Optimum{C: k * n * d, N: n, D: d, Loss: target}
	return o, finite([]float64{n, d, o.C})
}

// OptimumFit is a compute-optimal allocation with intervals: each the
// percentile interval of the same quantity over the bootstrap laws. Loss
// is in the units fitted (a quality, for a fit of a quality).
type OptimumFit struct {
	Optimum
	NCI, DCI, LossCI, CCI Interval
	// Replicates is how many bootstrap laws had an optimum.
	Replicates int
}

// ErrNoOptimum is returned when the fitted law has no compute optimum.
var ErrNoOptimum = errors.New("the fitted law has no compute optimum (an exponent or coefficient is zero)")

// ComputeOptimal returns N*(C), D*(C) and the predicted value there, with
// intervals from the replicates, for the cost C = k·N·D.
func (f *ScalingFit) ComputeOptimal(c, k float64) (*OptimumFit, error) {
	o, ok := f.ScalingLaw.ComputeOptimal(c, k)
	if !ok {
		return nil, ErrNoOptimum
	}
	out := &OptimumFit{Optimum: o}
	out.Loss = f.toUnits(o.Loss)
	var ns, ds, ls []float64
	for _, r := range f.Replicates {
		if ro, ok := r.ComputeOptimal(c, k); ok {
			ns, ds, ls = append(ns, ro.N), append(ds, ro.D), append(ls, f.toUnits(ro.Loss))
		}
	}
	out.Replicates = len(ns)
	out.NCI = sortedInterval(ns, f.Confidence, o.N)
	out.DCI = sortedInterval(ds, f.Confidence, o.D)
	out.LossCI = sortedInterval(ls, f.Confidence, out.Loss)
	out.CCI = Interval{c, c}
	return out, nil
}

// ComputeFor returns the least compute reaching target (in the units
// fitted: a loss, or a quality for a fit of a quality), with its N and D,
// and intervals over the replicates. A replicate that never reaches the
// target counts as needing infinite compute, so a target near the floor
// gives an interval open above (Hi = +Inf) rather than a falsely narrow
// one.
func (f *ScalingFit) ComputeFor(target, k float64) (*OptimumFit, error) {
	loss := target
	if f.QMax != nil {
		loss = *f.QMax - target
	}
	o, ok := f.ScalingLaw.ComputeFor(loss, k)
	if !ok {
		return nil, fmt.Errorf("the fitted law never reaches %g: its floor is %g", target, f.toUnits(f.E))
	}
	out := &OptimumFit{Optimum: o}
	out.Loss = target
	var ns, ds, cs []float64
	for _, r := range f.Replicates {
		ro, ok := r.ComputeFor(loss, k)
		if !ok {
			ro = Optimum{C: math.Inf(1), N: math.Inf(1), D: math.Inf(1)}
		}
		ns, ds, cs = append(ns, ro.N), append(ds, ro.D), append(cs, ro.C)
		out.Replicates++
	}
	out.NCI = sortedInterval(ns, f.Confidence, o.N)
	out.DCI = sortedInterval(ds, f.Confidence, o.D)
	out.CCI = sortedInterval(cs, f.Confidence, o.C)
	out.LossCI = Interval{target, target}
	return out, nil
}

// sortedInterval is the percentile interval of v (sorted in place), or
// [est, est] when v is empty.
func sortedInterval(v []float64, conf, est float64) Interval {
	if len(v) == 0 {
		return Interval{est, est}
	}
	slices.Sort(v)
	return Interval{quantileInf(v, (1-conf)/2), quantileInf(v, (1+conf)/2)}
}

// quantileInf is Quantile for values that may be +Inf: interpolating
// towards an infinite order statistic gives +Inf, not 0·Inf = NaN.
func quantileInf(sorted []float64, p float64) float64 {
	h := p * float64(len(sorted)-1)
	i := int(math.Floor(h))
	if i >= len(sorted)-1 || h == float64(i) {
		return sorted[min(i, len(sorted)-1)]
	}
	if math.IsInf(sorted[i+1], 1) {
		return math.Inf(1)
	}
	return Quantile(sorted, p)
}
