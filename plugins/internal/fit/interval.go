package fit

import (
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/stat/distuv"
)

// clusters groups the indices of n points by cluster id, in order of first
// appearance; without ids every point is a group of its own.
func clusters(n int, ids []int) [][]int {
	if ids == nil {
		g := make([][]int, n)
		for i := range g {
			g[i] = []int{i}
		}
		return g
	}
	at := map[int]int{}
	var g [][]int
	for i, id := range ids {
		k, ok := at[id]
		if !ok {
			k = len(g)
			at[id] = k
			g = append(g, nil)
		}
		g[k] = append(g[k], i)
	}
	return g
}

// intervalPlan is what the bootstrap needs beyond the fit.
type intervalPlan struct {
	groups [][]int
	// fitted are the fitted values at the points; shift each cluster's
	// error, inflated by √(G/(G−3)) for the three parameters the fit
	// absorbed (G clusters).
	fitted, shift []float64
	// df is the residual degrees of freedom, clusters less parameters;
	// stretch the factor spreading the replicates from a normal to a
	// Student t quantile with df degrees of freedom.
	df      int
	stretch float64
	// noise and misfit: see PowerLawFit.
	noise, misfit float64
}

// intervals prepares the bootstrap around the fit θ.
func (p *problem) intervals(th []float64, groups [][]int, conf float64) intervalPlan {
	n := len(p.x)
	G := len(groups)
	res := p.residuals(th)
	plan := intervalPlan{groups: groups, fitted: make([]float64, n), shift: make([]float64, G), df: G - 3, stretch: 1}
	infl := 1.0
	if plan.df > 0 {
		infl = math.Sqrt(float64(G) / float64(plan.df))
		pr := (1 + conf) / 2
		plan.stretch = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(plan.df)}.Quantile(pr) / distuv.UnitNormal.Quantile(pr)
	}
	for i, r := range res {
		plan.fitted[i] = p.y[i] - r
	}
	// A cluster's error is read where the cluster sits: the mean residual
	// of its points nearest its centre in log size. For repeated
	// evaluations at one size that is their mean. For lookups spread
	// around a measurement it is the lookup nearest the measurement,
	// which carries nearly all of its error; their mean would not, as
	// each lookup is part its neighbour's (64 lookups between 18
	// measurements gave intervals 0.75 times as wide as the measurements'
	// own with the mean, 0.88 times with the nearest).
	//
	// That lookup still lies a fraction f of the way to the neighbouring
	// measurement, so its error is (1−f)·e + f·e′ of two measurements'
	// errors e and e′, whose spread is √((1−f)² + f²) times one
	// measurement's: the shift is divided by that, with f read as the
	// lookup's distance from the cluster's centre over the spacing of the
	// clusters' centres there. Without it, 36 lookups between 18
	// measurements gave intervals 0.73 times as wide as the measurements'
	// own, as if averaging neighbours had measured more.
	centres := make([]float64, G)
	for k, g := range groups {
		for _, i := range g {
			centres[k] += p.lx[i]
		}
		centres[k] /= float64(len(g))
	}
	sorted := slices.Clone(centres)
	slices.Sort(sorted)
	for k, g := range groups {
		centre := centres[k]
		near := math.Inf(1)
		for _, i := range g {
			near = math.Min(near, math.Abs(p.lx[i]-centre))
		}
		var s float64
		var m int
		for _, i := range g {
			if math.Abs(p.lx[i]-centre) <= near+1e-9 {
				s += res[i]
				m++
			}
		}
		plan.shift[k] = s * infl / float64(m) / smoothing(near, spacing(sorted, centre))
	}
	// Soft-L1 treats a residual beyond a few scales as an outlier (a run
	// that failed to train), not as part of the curve; clipped, it counts
	// as no more than a large error in the noise and the misfit.
	clipped := res
	if p.scale > 0 {
		clipped = make([]float64, n)
		for i, r := range res {
			clipped[i] = math.Max(-3*p.scale, math.Min(3*p.scale, r))
		}
	}
	plan.noise, plan.misfit = p.lackOfFit(clipped, groups)
	return plan
}

// lackOfFit splits the residuals into noise and misfit. Both estimates
// work on cluster means, one value per independent measurement, ordered
// by size. The noise comes from pseudo-residuals (Gasser, Sargent and
// Engel 1986): each mean less the straight line through its neighbours in
// log size, scaled to the variance of one mean, which cancels any smooth
// misfit and leaves mostly noise. The misfit is what the residuals' mean
// square has beyond that noise, the fit's three parameters discounted.
func (p *problem) lackOfFit(res []float64, groups [][]int) (noise, misfit float64) {
	G := len(groups)
	mean := make([]float64, G)
	t := make([]float64, G)
	for g, idx := range groups {
		for _, i := range idx {
			mean[g] += res[i]
			t[g] += math.Log(p.x[i])
		}
		mean[g] /= float64(len(idx))
		t[g] /= float64(len(idx))
	}
	var ss float64
	for _, m := range mean {
		ss += m * m
	}
	if G <= 3 {
		return 0, 0
	}
	order := make([]int, G)
	for g := range order {
		order[g] = g
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case t[a] < t[b]:
			return -1
		case t[a] > t[b]:
			return 1
		}
		return 0
	})
	// Pseudo-residual c·(a·e₋ − e + b·e₊) on neighbours in size order,
	// a and b interpolating linearly in log size (½ each between
	// neighbours of equal size), c² = 1/(a² + 1 + b²).
	var s2 float64
	for k := 1; k < G-1; k++ {
		l, m, r := order[k-1], order[k], order[k+1]
		wa, wb := 0.5, 0.5
		if span := t[r] - t[l]; span > 0 {
			wa, wb = (t[r]-t[m])/span, (t[m]-t[l])/span
		}
		e := wa*mean[l] - mean[m] + wb*mean[r]
		s2 += e * e / (wa*wa + 1 + wb*wb)
	}
	s2 /= float64(G - 2)
	return math.Sqrt(s2), math.Sqrt(math.Max(0, (ss-s2*float64(G-3))/float64(G)))
}

// bootstrap refits the curve to resampled data. Each replicate shifts
// every cluster, all its points alike, by the error of a cluster drawn at
// random, with a random sign. It resamples measurements, not
// points: points derived from one measurement move together, so they add
// no information and cannot narrow the intervals. With one point per
// cluster (the default) this is the residual bootstrap with random signs.
//
// The residuals are pooled rather than kept at their own sizes (the wild
// bootstrap): with five to twenty points, one residual is a poor estimate
// of the noise at its size, and in TestIntervalCoverage's families the
// wild bootstrap's intervals held the truth less often, on curves that
// are not power laws as well (BenchmarkIntervalCoverage: alpha in 78% of
// fits to the law against 88%, in 82% of sigmoid fits against 91%).
// Misfit the law cannot follow still counts: it is in the residuals, so
// the intervals widen by it as by noise, and Band widens further by the
// misfit estimated apart from the noise.
//
// The signs make every resampled error symmetric about zero, so it is
// centred in the soft-L1 loss's ψ as well as in the mean, and the refits
// scatter about the fitted curve itself. (A residual bootstrap centred at
// the residuals' mean did not: one outlier at −0.28 among fifteen points
// moved the mean by −0.018, every replicate rose by as much, and the
// estimate fell below its whole interval.)
//
// Last, the replicates are spread about the estimate, in the optimizer's
// coordinates, by the ratio of the Student t quantile with df degrees of
// freedom to the normal one: the residuals estimate the noise from a
// handful of measurements, and a percentile interval that ignores this
// covers less often than it claims when there are few (q_inf in 79% of
// fits to the law itself without the spread, 85% with it).
func (p *problem) bootstrap(th []float64, ref float64, plan intervalPlan, o Options) []PowerLaw {
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed5eed))
	bp := *p
	y := make([]float64, len(p.x))
	bp.y = y
	out := make([]PowerLaw, 0, o.Bootstrap)
	spreadTh := make([]float64, len(th))
	for range o.Bootstrap {
		for _, g := range plan.groups {
			v := plan.shift[rng.IntN(len(plan.groups))]
			if rng.IntN(2) == 0 {
				v = -v
			}
			for _, i := range g {
				y[i] = plan.fitted[i] + v
			}
		}
		if p.qmax != nil {
			for i := range y {
				// A resampled value past the bound is one the metric
				// cannot take (an accuracy above 1).
				y[i] = math.Min(y[i], *p.qmax)
			}
		}
		bth, f := bp.refit(th)
		if bth == nil || math.IsInf(f, 0) {
			continue
		}
		for k := range th {
			spreadTh[k] = th[k] + plan.stretch*(bth[k]-th[k])
		}
		out = append(out, bp.curve(spreadTh, ref))
	}
	return out
}

// misfitDraw returns the b-th of m evenly spaced standard normal
// quantiles. Band pairs the b-th replicate with it: the replicates are
// independent draws, so any fixed pairing is an independent one.
func misfitDraw(b, m int) float64 {
	return distuv.UnitNormal.Quantile((float64(b) + 0.5) / float64(m))
}

// spacing is the mean distance from centre to its neighbours among the
// sorted cluster centres (to its one neighbour at an end); 0 when it has
// none.
func spacing(sorted []float64, centre float64) float64 {
	i, _ := slices.BinarySearch(sorted, centre)
	var sum float64
	var k int
	if i > 0 {
		sum += centre - sorted[i-1]
		k++
	}
	if i+1 < len(sorted) {
		sum += sorted[i+1] - centre
		k++
	}
	if k == 0 {
		return 0
	}
	return sum / float64(k)
}

// smoothing is how much a linear interpolation a distance off from one
// measurement, towards a neighbour spacing away, narrows the spread of
// that measurement's error: √((1−f)² + f²) with f = off/spacing, at most
// ½. 1 for a point at its measurement.
func smoothing(off, spacing float64) float64 {
	if !(off > 0) || !(spacing > 0) {
		return 1
	}
	f := math.Min(off/spacing, 0.5)
	return math.Sqrt((1-f)*(1-f) + f*f)
}
