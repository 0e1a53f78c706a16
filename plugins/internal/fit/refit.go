package fit

import "math"

// refit minimizes the loss from θ0 by Levenberg–Marquardt, for the
// bootstrap: each replicate starts at the fit to the original data, a few
// Gauss–Newton steps from its own optimum, where L-BFGS spends most of its
// evaluations learning the curvature that Gauss–Newton is given. The
// soft-L1 loss enters through its iteratively reweighted least-squares
// weights. It returns the optimum and its objective.
func (p *problem) refit(th0 []float64) ([]float64, float64) {
	th := append([]float64(nil), th0...)
	f, g, h := p.gaussNewton(th)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, math.Inf(1)
	}
	lambda := 1e-3
	next := make([]float64, 3)
	for range 200 {
		var m [3][3]float64
		for i := range 3 {
			for j := range 3 {
				m[i][j] = h[i][j]
			}
			m[i][i] += lambda*h[i][i] + 1e-12*(1+h[i][i])
		}
		step, ok := solve3(m, [3]float64{-g[0], -g[1], -g[2]})
		if !ok {
			lambda *= 10
			if lambda > 1e12 {
				break
			}
			continue
		}
		for i := range 3 {
			next[i] = th[i] + step[i]
		}
		fn, gn, hn := p.gaussNewton(next)
		if !(fn < f) || math.IsNaN(fn) {
			lambda *= 10
			if lambda > 1e12 {
				break // no step lowers the loss in floating point
			}
			continue
		}
		done := f-fn <= 1e-15+1e-12*f
		copy(th, next)
		f, g, h = fn, gn, hn
		lambda = math.Max(lambda/10, 1e-12)
		if done {
			break
		}
	}
	return th, f
}

// gaussNewton returns the loss at θ, its gradient and the Gauss–Newton
// approximation of its Hessian (Σ wᵢ Jᵢ Jᵢᵀ with the loss's IRLS weights).
func (p *problem) gaussNewton(th []float64) (f float64, g [3]float64, h [3][3]float64) {
	qinf, dq, a, alpha, dalpha := p.params(th)
	for i, l := range p.lx {
		z := math.Exp(-alpha * l)
		r := p.y[i] - (qinf - a*z)
		// dr/dθ = −(dq, −a·z, a·z·log x·dα).
		j := [3]float64{-dq, a * z, -a * z * l * dalpha}
		var drho, w float64
		if p.scale == 0 {
			f += r * r
			drho, w = 2*r, 2
		} else {
			u := r / p.scale
			root := math.Sqrt(1 + u*u)
			f += 2 * p.scale * p.scale * (root - 1)
			drho, w = 2*r/root, 2/root
		}
		for k := range 3 {
			g[k] += drho * j[k]
			for m := range 3 {
				h[k][m] += w * j[k] * j[m]
			}
		}
	}
	return f, g, h
}

// solve3 solves m·x = b by Gaussian elimination with partial pivoting;
// false when m is singular.
func solve3(m [3][3]float64, b [3]float64) ([3]float64, bool) {
	for c := range 3 {
		piv := c
		for r := c + 1; r < 3; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[piv][c]) {
				piv = r
			}
		}
		if m[piv][c] == 0 || math.IsNaN(m[piv][c]) {
			return b, false
		}
		m[c], m[piv] = m[piv], m[c]
		b[c], b[piv] = b[piv], b[c]
		for r := c + 1; r < 3; r++ {
			k := m[r][c] / m[c][c]
			for j := c; j < 3; j++ {
				m[r][j] -= k * m[c][j]
			}
			b[r] -= k * b[c]
		}
	}
	var x [3]float64
	for r := 2; r >= 0; r-- {
		s := b[r]
		for j := r + 1; j < 3; j++ {
			s -= m[r][j] * x[j]
		}
		x[r] = s / m[r][r]
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return x, false
		}
	}
	return x, true
}
