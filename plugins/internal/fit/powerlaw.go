// Package fit holds the curve fitting behind the resize stage: a saturating
// power law of quality against model size with bootstrap confidence
// intervals; loss against size and resource together, L(N, D) = E +
// A·N^(−α) + B·D^(−β), with the compute-optimal size and resource it
// implies (scaling.go, compute.go); log-log fits of costs against size,
// Kneedle knee detection and Pareto fronts.
//
// Everything is deterministic: the bootstrap draws from a seeded generator
// and the optimizer starts from a fixed set of points, so identical inputs
// and seeds give identical fits.
package fit

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/optimize"
)

// PowerLaw is the saturating curve q(N) = QInf − A·N^(−Alpha): quality rises
// with size N towards the asymptote QInf, ever more slowly.
type PowerLaw struct {
	QInf, A, Alpha float64
}

// At returns q(n).
func (p PowerLaw) At(n float64) float64 { return p.QInf - p.A*math.Pow(n, -p.Alpha) }

// SizeFor returns the size at which the curve reaches q; false when it never
// does (q at or above the asymptote, or a flat curve).
func (p PowerLaw) SizeFor(q float64) (float64, bool) {
	if !(q < p.QInf) || !(p.A > 0) || !(p.Alpha > 0) {
		return 0, false
	}
	n := math.Pow(p.A/(p.QInf-q), 1/p.Alpha)
	return n, !math.IsInf(n, 0) && !math.IsNaN(n)
}

// Interval is a two-sided confidence interval.
type Interval struct{ Lo, Hi float64 }

// Contains reports whether v lies in [Lo, Hi].
func (i Interval) Contains(v float64) bool { return v >= i.Lo && v <= i.Hi }

// Options tune FitPowerLaw. The zero value is usable.
type Options struct {
	// Confidence is the two-sided level of every interval (default 0.9).
	Confidence float64
	// Bootstrap is the number of bootstrap replicates (default 200;
	// negative: none, and every interval collapses to the estimate, as it
	// does when there are fewer than four clusters, which leave nothing
	// to estimate the noise from).
	Bootstrap int
	// Starts is how many of the best grid starting points the optimizer
	// polishes (default 4).
	Starts int
	// Seed seeds the bootstrap.
	Seed uint64
	// QMax, when set, bounds the asymptote from above, as 1 bounds an
	// accuracy.
	QMax *float64
	// MaxAlpha bounds the exponent (default 4).
	MaxAlpha float64
	// Scale is the soft-L1 loss scale, the residual size beyond which a
	// point counts as an outlier and its pull grows only linearly. Zero
	// derives it from the data (1.4826 times the median absolute deviation
	// of the least-squares residuals).
	Scale float64
	// Cluster, when set, holds one id per point. Points sharing an id are
	// one measurement, not several: repeated evaluations of one trained
	// model, or lookups interpolated from a table of measured runs (give
	// each lookup the id of the measured run nearest it). The bootstrap
	// moves a cluster's points together, and the intervals count
	// clusters, not points, so derived points do not narrow them as
	// measurements would.
	// Nil: every point is its own measurement.
	//
	// A lookup's error is an interpolation of two measurements' errors,
	// which spreads less than one measurement's; the bootstrap undoes
	// that narrowing (see intervals). 36 and 64 lookups interpolated
	// between 18 measurements gave alpha intervals 0.96 and 1.04 times as
	// wide as the 18 measurements' own with ids (at 64, alpha's 90%
	// interval held the truth in 92% of fits, the band in 93%), and 0.54
	// and 0.39 times as wide without, narrowing with every step added;
	// see TestFitPowerLawLadderWidth and BenchmarkIntervalCoverage. Fit
	// the measurements themselves when they are at hand.
	Cluster []int
}

func (o Options) withDefaults() Options {
	if o.Confidence == 0 {
		o.Confidence = 0.9
	}
	if o.Bootstrap == 0 {
		o.Bootstrap = 200
	}
	if o.Starts <= 0 {
		o.Starts = 4
	}
	if o.MaxAlpha <= 0 {
		o.MaxAlpha = 4
	}
	return o
}

// PowerLawFit is a fitted power law with bootstrap intervals.
type PowerLawFit struct {
	PowerLaw
	QInfCI, ACI, AlphaCI Interval
	Confidence           float64
	// Points is the number of points fitted, Distinct the number of
	// distinct sizes among them.
	Points, Distinct int
	// RMSE is the root mean square residual of the fit; R2 the share of
	// the qualities' variance the curve explains (1 − SSE/SST; 1 when the
	// qualities are all equal and fitted exactly).
	RMSE, R2 float64
	// Scale is the soft-L1 scale used.
	Scale float64
	// Converged reports whether the optimizer met its convergence test on
	// the original data.
	Converged bool
	// Clusters is the number of independent measurements among the
	// points: the number of distinct Options.Cluster ids, or Points.
	Clusters int
	// Noise is the estimated standard deviation of the measurement noise,
	// from differences of neighbouring residuals, which a smooth misfit
	// of the law hardly changes. Misfit is the standard deviation of the
	// residuals beyond that noise: how far the measured curve strays from
	// any power law. Band widens by Misfit, so that it covers the curve
	// itself and not only the law fitted to it (on a law plus a wiggle,
	// the curve was inside the 90% band in 71% of fits without the
	// widening and 88% with it).
	Noise, Misfit float64
	// QMax is Options.QMax, a bound Band never exceeds.
	QMax *float64
	// Replicates are the successful bootstrap refits, in the order drawn,
	// spread about the estimate by the small-sample factor described at
	// FitPowerLaw. Band pairs each with a misfit draw by its index.
	Replicates []PowerLaw
}

// ErrTooFewPoints is returned when the points cannot determine the curve.
var ErrTooFewPoints = errors.New("too few distinct sizes to fit a power law (need 3)")

// FitPowerLaw fits q = QInf − A·n^(−Alpha) to the points (n[i], q[i]) by
// minimizing a soft-L1 loss, so a single bad measurement cannot drag the
// curve far, then estimates intervals by bootstrap.
//
// The intervals are meant to be honest on real curves, which are never
// exactly power laws, from few measurements:
//   - the bootstrap resamples measurements (clusters, see
//     Options.Cluster), not points;
//   - the replicates are spread by the ratio of Student t to normal
//     quantiles, for the noise being estimated from few residuals;
//   - the parameters' intervals target the law that fits the curve best
//     over the sizes measured; Band targets the curve itself, widened by
//     the misfit found beyond the noise (PowerLawFit.Misfit).
//
// TestIntervalCoverage and BenchmarkIntervalCoverage measure how often the
// 90% intervals contain the truth, on the law and on curves of other
// shapes.
//
// Bounds hold by construction rather than by a constrained optimizer: the
// optimizer works on (QInf or log(QMax−QInf), log A, logit(Alpha/MaxAlpha)),
// so A > 0, 0 < Alpha < MaxAlpha and QInf < QMax wherever it steps. Sizes
// are divided by their geometric mean first, which keeps the problem well
// conditioned whether N is 10 or 10^9.
func FitPowerLaw(n, q []float64, opts Options) (*PowerLawFit, error) {
	if len(n) != len(q) {
		return nil, fmt.Errorf("fit: %d sizes but %d qualities", len(n), len(q))
	}
	o := opts.withDefaults()
	if !(o.Confidence > 0 && o.Confidence < 1) {
		return nil, fmt.Errorf("fit: confidence %g is not between 0 and 1", o.Confidence)
	}
	var logSum float64
	for i := range n {
		if !(n[i] > 0) || math.IsInf(n[i], 0) {
			return nil, fmt.Errorf("fit: size %g at point %d is not a positive number", n[i], i)
		}
		if math.IsNaN(q[i]) || math.IsInf(q[i], 0) {
			return nil, fmt.Errorf("fit: quality %g at point %d is not finite", q[i], i)
		}
		if o.QMax != nil && q[i] > *o.QMax {
			return nil, fmt.Errorf("fit: quality %g at point %d is above the bound %g", q[i], i, *o.QMax)
		}
		logSum += math.Log(n[i])
	}
	distinct := len(uniqueSorted(n))
	if distinct < 3 {
		return nil, ErrTooFewPoints
	}
	if o.Cluster != nil && len(o.Cluster) != len(n) {
		return nil, fmt.Errorf("fit: %d cluster ids for %d points", len(o.Cluster), len(n))
	}
	groups := clusters(len(n), o.Cluster)
	ref := math.Exp(logSum / float64(len(n)))
	x := make([]float64, len(n))
	for i := range n {
		x[i] = n[i] / ref
	}
	p := &problem{x: x, y: q, qmax: o.QMax, maxAlpha: o.MaxAlpha, lx: make([]float64, len(x))}
	for i, v := range x {
		p.lx[i] = math.Log(v)
	}
	p.spread = spread(q)

	// Least squares from the best grid starts, then the robust loss from
	// the least-squares optimum with a scale taken from its residuals.
	starts := p.gridStarts(o.Starts)
	p.scale = 0
	var best []float64
	bestF := math.Inf(1)
	for _, s := range starts {
		th, f, _ := p.minimize(s)
		if f < bestF {
			best, bestF = th, f
		}
	}
	if best == nil {
		return nil, errors.New("fit: the optimizer found no finite solution")
	}
	// The scale comes from the residuals' median absolute deviation. The
	// least-squares residuals are themselves bent by any outlier, so the
	// scale is re-estimated from the robust fit's residuals a few times.
	scale := o.Scale
	robust, converged := best, false
	for iter := 0; iter < 3; iter++ {
		if o.Scale <= 0 {
			next := 1.4826 * mad(p.residuals(robust))
			next = math.Max(next, 1e-3*p.spread)
			next = math.Max(next, 1e-12)
			if iter > 0 && math.Abs(next-scale) <= 0.05*scale {
				break
			}
			scale = next
		} else if iter > 0 {
			break
		}
		p.scale = scale
		th, _, conv := p.minimize(robust)
		if th != nil {
			robust, converged = th, conv
		}
	}
	fitted := p.curve(robust, ref)
	res := p.residuals(robust)
	var sse, sst float64
	mq := mean(q)
	for i, r := range res {
		sse += r * r
		sst += (q[i] - mq) * (q[i] - mq)
	}
	r2 := 1.0
	if sst > 0 {
		r2 = 1 - sse/sst
	}
	out := &PowerLawFit{
		PowerLaw:   fitted,
		Confidence: o.Confidence,
		Points:     len(n),
		Distinct:   distinct,
		RMSE:       math.Sqrt(sse / float64(len(n))),
		R2:         r2,
		Scale:      scale,
		Converged:  converged,
		Clusters:   len(groups),
		QMax:       o.QMax,
	}
	iv := p.intervals(robust, groups, o.Confidence)
	out.Noise, out.Misfit = iv.noise, iv.misfit
	if o.Bootstrap > 0 && iv.df > 0 {
		out.Replicates = p.bootstrap(robust, ref, iv, o)
	}
	out.QInfCI = percentiles(out.Replicates, o.Confidence, fitted.QInf, func(c PowerLaw) float64 { return c.QInf })
	out.ACI = percentiles(out.Replicates, o.Confidence, fitted.A, func(c PowerLaw) float64 { return c.A })
	out.AlphaCI = percentiles(out.Replicates, o.Confidence, fitted.Alpha, func(c PowerLaw) float64 { return c.Alpha })
	return out, nil
}

// Band returns the pointwise confidence interval of the quality at size n:
// the percentile interval of the bootstrap curves at n, each shifted by
// its own draw of the misfit (normal, standard deviation Misfit), so that
// the band covers the measured curve where it strays from the law. Every
// shifted curve still rises with n. Without replicates it is the estimate
// itself.
func (f *PowerLawFit) Band(n float64) Interval {
	if len(f.Replicates) == 0 {
		return Interval{f.At(n), f.At(n)}
	}
	v := make([]float64, 0, len(f.Replicates))
	for b, c := range f.Replicates {
		x := c.At(n) + f.Misfit*misfitDraw(b, len(f.Replicates))
		if f.QMax != nil {
			x = math.Min(x, *f.QMax)
		}
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Interval{f.At(n), f.At(n)}
	}
	slices.Sort(v)
	return Interval{Quantile(v, (1-f.Confidence)/2), Quantile(v, (1+f.Confidence)/2)}
}

// FirstLowerAtLeast returns the smallest size in [lo, hi] whose lower band
// reaches q, to a relative precision of 1e-6. Every bootstrap curve rises
// with n, so the band's lower edge does too and bisection applies. It
// returns false when even hi falls short.
func (f *PowerLawFit) FirstLowerAtLeast(q, lo, hi float64) (float64, bool) {
	if !(lo > 0) || !(hi >= lo) {
		return 0, false
	}
	if f.Band(hi).Lo < q {
		return 0, false
	}
	if f.Band(lo).Lo >= q {
		return lo, true
	}
	a, b := math.Log(lo), math.Log(hi)
	for b-a > 1e-6 {
		m := (a + b) / 2
		if f.Band(math.Exp(m)).Lo >= q {
			b = m
		} else {
			a = m
		}
	}
	return math.Exp(b), true
}

// problem is the optimization over the transformed parameters
// θ = (t0, t1, t2) described at FitPowerLaw.
type problem struct {
	x, y     []float64
	lx       []float64 // log x: the loss needs x^−α = exp(−α·log x) often
	qmax     *float64
	maxAlpha float64
	spread   float64
	// scale is the soft-L1 scale; 0 means plain least squares.
	scale float64
}

// params maps θ to (QInf, A at unit x, Alpha) with the derivatives of each
// by its own coordinate.
func (p *problem) params(th []float64) (qinf, dq, a, alpha, dalpha float64) {
	if p.qmax != nil {
		e := math.Exp(th[0])
		qinf, dq = *p.qmax-e, -e
	} else {
		qinf, dq = th[0], 1
	}
	a = math.Exp(th[1])
	s := 1 / (1 + math.Exp(-th[2]))
	alpha = p.maxAlpha * s
	dalpha = p.maxAlpha * s * (1 - s)
	return
}

func (p *problem) theta(qinf, a, alpha float64) []float64 {
	th := make([]float64, 3)
	if p.qmax != nil {
		th[0] = math.Log(*p.qmax - qinf)
	} else {
		th[0] = qinf
	}
	th[1] = math.Log(a)
	s := alpha / p.maxAlpha
	th[2] = math.Log(s / (1 - s))
	return th
}

func (p *problem) curve(th []float64, ref float64) PowerLaw {
	qinf, _, a, alpha, _ := p.params(th)
	// q = QInf − a·(n/ref)^−α = QInf − (a·ref^α)·n^−α.
	return PowerLaw{QInf: qinf, A: a * math.Pow(ref, alpha), Alpha: alpha}
}

func (p *problem) residuals(th []float64) []float64 {
	qinf, _, a, alpha, _ := p.params(th)
	r := make([]float64, len(p.x))
	for i, x := range p.x {
		r[i] = p.y[i] - (qinf - a*math.Pow(x, -alpha))
	}
	return r
}

// loss returns the objective and fills grad when it is not nil.
func (p *problem) loss(th, grad []float64) float64 {
	qinf, dq, a, alpha, dalpha := p.params(th)
	var f, g0, g1, g2 float64
	for i, l := range p.lx {
		z := math.Exp(-alpha * l)
		r := p.y[i] - (qinf - a*z)
		var rho, drho float64
		if p.scale == 0 {
			rho, drho = r*r, 2*r
		} else {
			u := r / p.scale
			root := math.Sqrt(1 + u*u)
			rho, drho = 2*p.scale*p.scale*(root-1), 2*r/root
		}
		f += rho
		// dr/dθ = −df/dθ, with f = qinf − a·z and z = x^−α.
		g0 += drho * -dq
		g1 += drho * (a * z)
		g2 += drho * (-a * z * l * dalpha)
	}
	if grad != nil {
		grad[0], grad[1], grad[2] = g0, g1, g2
	}
	return f
}

// minimize polishes θ0 with L-BFGS and returns the optimum, its objective
// and whether the optimizer converged.
func (p *problem) minimize(th0 []float64) ([]float64, float64, bool) {
	prob := optimize.Problem{
		Func: func(th []float64) float64 { return p.loss(th, nil) },
		Grad: func(grad, th []float64) { p.loss(th, grad) },
	}
	settings := &optimize.Settings{
		MajorIterations: 400,
		Converger:       &optimize.FunctionConverge{Absolute: 1e-15, Relative: 1e-12, Iterations: 40},
	}
	res, err := optimize.Minimize(prob, slices.Clone(th0), settings, &optimize.LBFGS{})
	f0 := p.loss(th0, nil)
	if res == nil || math.IsNaN(res.F) || res.F > f0 {
		// A failed line search leaves the start as good as anything found.
		if math.IsNaN(f0) || math.IsInf(f0, 0) {
			return nil, math.Inf(1), false
		}
		return slices.Clone(th0), f0, false
	}
	for _, v := range res.X {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return slices.Clone(th0), f0, false
		}
	}
	converged := err == nil && res.Status != optimize.NotTerminated && !res.Status.Early()
	if !converged {
		// L-BFGS's line search often gives up at the optimum itself, when
		// no step changes the loss in floating point; a vanishing gradient
		// says the optimum was reached all the same.
		g := make([]float64, len(res.X))
		p.loss(res.X, g)
		// The parameters are of order one (logs and a logit), so a
		// gradient this small could lower the loss by a negligible
		// fraction of itself.
		tol := 1e-4 * (res.F + 1e-8*p.spread*p.spread*float64(len(p.x)))
		converged = math.Abs(g[0]) <= tol && math.Abs(g[1]) <= tol && math.Abs(g[2]) <= tol
	}
	return res.X, res.F, converged
}

// gridStarts returns starting points for the best k exponents of a grid:
// for a fixed exponent the curve is linear in (QInf, A), so least squares
// gives them exactly (variable projection).
func (p *problem) gridStarts(k int) [][]float64 {
	type start struct {
		th  []float64
		sse float64
	}
	var starts []start
	for _, frac := range []float64{0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 0.8, 0.9} {
		alpha := frac * p.maxAlpha
		z := make([]float64, len(p.x))
		for i, x := range p.x {
			z[i] = math.Pow(x, -alpha)
		}
		slope, intercept := linearLS(z, p.y)
		a, qinf := -slope, intercept
		tiny := 1e-6 * math.Max(p.spread, 1e-6)
		if !(a > tiny) {
			a = tiny
			qinf = mean(p.y) + a*mean(z)
		}
		if p.qmax != nil && !(qinf < *p.qmax-tiny) {
			qinf = *p.qmax - tiny
		}
		th := p.theta(qinf, a, alpha)
		f := p.loss(th, nil)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		starts = append(starts, start{th, f})
	}
	slices.SortStableFunc(starts, func(a, b start) int {
		switch {
		case a.sse < b.sse:
			return -1
		case a.sse > b.sse:
			return 1
		}
		return 0
	})
	var out [][]float64
	for i := 0; i < len(starts) && i < k; i++ {
		out = append(out, starts[i].th)
	}
	return out
}

// percentiles returns the percentile interval of get over the replicates,
// or [est, est] without replicates. Percentile rather than basic
// (reflected) intervals because A and Alpha are fitted on log and logit
// scales and their replicates are strongly skewed: reflection about the
// estimate would give negative A and cover the truth less often.
func percentiles(reps []PowerLaw, conf, est float64, get func(PowerLaw) float64) Interval {
	if len(reps) == 0 {
		return Interval{est, est}
	}
	v := make([]float64, 0, len(reps))
	for _, r := range reps {
		if x := get(r); !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Interval{est, est}
	}
	slices.Sort(v)
	return Interval{Quantile(v, (1-conf)/2), Quantile(v, (1+conf)/2)}
}

// Quantile returns the p-quantile of sorted values by linear interpolation
// between order statistics (type 7 of Hyndman and Fan, R's default).
func Quantile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	h := p * float64(len(sorted)-1)
	i := int(math.Floor(h))
	if i < 0 {
		return sorted[0]
	}
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (h-float64(i))*(sorted[i+1]-sorted[i])
}

func linearLS(x, y []float64) (slope, intercept float64) {
	mx, my := mean(x), mean(y)
	var sxy, sxx float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
	}
	if sxx == 0 {
		return 0, my
	}
	slope = sxy / sxx
	return slope, my - slope*mx
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func spread(v []float64) float64 {
	lo, hi := slices.Min(v), slices.Max(v)
	return hi - lo
}

func mad(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	med := Quantile(s, 0.5)
	for i := range s {
		s[i] = math.Abs(s[i] - med)
	}
	slices.Sort(s)
	return Quantile(s, 0.5)
}

func uniqueSorted(v []float64) []float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return slices.Compact(s)
}
