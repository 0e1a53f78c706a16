// Package prep is the data preprocessing of the optimization and evaluation
// stages: transforms fitted on the training rows only and applied to every
// split, so that no statistic of a validation or test row leaks into
// training.
//
// A preprocessing is named by a string of steps joined by "+", applied left
// to right:
//
//	none            the features as they are (alone only)
//	standardize     subtract each feature's mean, divide by its standard
//	                deviation (population, as scikit-learn's StandardScaler;
//	                a constant feature is only centred)
//	minmax          map each feature's training range onto [0, 1] (a constant
//	                feature becomes 0)
//	pca:V           project the centred features on their principal
//	                components, keeping the fewest whose explained variance
//	                ratio exceeds V in (0, 1] (scikit-learn's rule for a
//	                fractional n_components); "pca" alone is pca:0.95
//
// e.g. "standardize+pca:0.95".
package prep

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
)

// Step kinds.
const (
	None        = "none"
	Standardize = "standardize"
	MinMax      = "minmax"
	PCA         = "pca"
)

// Kinds lists the step kinds, for hints.
var Kinds = []string{None, Standardize, MinMax, PCA}

// DefaultVariance is the variance target of a bare "pca".
const DefaultVariance = 0.95

// Step is one preprocessing step.
type Step struct {
	Kind string
	// Variance is pca's explained variance target.
	Variance float64
}

func (s Step) String() string {
	if s.Kind == PCA {
		return PCA + ":" + strconv.FormatFloat(s.Variance, 'g', -1, 64)
	}
	return s.Kind
}

// Spec is a parsed preprocessing: its steps in order, none for "none".
type Spec []Step

// String is the canonical name: "none" for no step.
func (s Spec) String() string {
	if len(s) == 0 {
		return None
	}
	parts := make([]string, len(s))
	for i, st := range s {
		parts[i] = st.String()
	}
	return strings.Join(parts, "+")
}

// Parse reads a preprocessing name. The empty string is "none".
func Parse(name string) (Spec, error) {
	name = strings.TrimSpace(name)
	if name == "" || name == None {
		return nil, nil
	}
	var spec Spec
	for _, part := range strings.Split(name, "+") {
		part = strings.TrimSpace(part)
		kind, arg, hasArg := strings.Cut(part, ":")
		kind = strings.TrimSpace(kind)
		switch kind {
		case Standardize, MinMax:
			if hasArg {
				return nil, fmt.Errorf("preprocessing %q: %s takes no argument, found %q", name, kind, arg)
			}
			spec = append(spec, Step{Kind: kind})
		case PCA:
			v := DefaultVariance
			if hasArg {
				f, err := strconv.ParseFloat(strings.TrimSpace(arg), 64)
				if err != nil || !(f > 0 && f <= 1) {
					return nil, fmt.Errorf("preprocessing %q: pca's variance target must be a number above 0 and at most 1, as in pca:0.95; found %q", name, arg)
				}
				v = f
			}
			spec = append(spec, Step{Kind: PCA, Variance: v})
		case None:
			return nil, fmt.Errorf("preprocessing %q: none cannot be combined with other steps", name)
		case "":
			return nil, fmt.Errorf("preprocessing %q: empty step; steps are joined by a single +", name)
		default:
			return nil, fmt.Errorf("preprocessing %q: unknown step %q; steps are %s.%s", name, kind, strings.Join(Kinds, ", "), suggest.Hint(kind, Kinds))
		}
	}
	return spec, nil
}

// Transform is a fitted preprocessing.
type Transform struct {
	in, out int
	steps   []fitted
}

type fitted interface {
	outDim() int
	// apply maps rows×in values of x to rows×outDim values.
	apply(x []float64, rows int) []float64
}

// In returns the number of features a transform takes.
func (t *Transform) In() int { return t.in }

// Out returns the number of features a transform gives.
func (t *Transform) Out() int { return t.out }

// Fit fits spec's steps, in order, on rows×cols training values x
// (row-major). x is not modified.
func Fit(spec Spec, x []float64, rows, cols int) (*Transform, error) {
	if len(x) != rows*cols {
		return nil, fmt.Errorf("prep: %d values for %d rows of %d features", len(x), rows, cols)
	}
	if rows < 1 {
		return nil, errors.New("prep: no training rows to fit the preprocessing on")
	}
	t := &Transform{in: cols, out: cols}
	cur := x
	for i, st := range spec {
		var f fitted
		var err error
		switch st.Kind {
		case Standardize:
			f = fitStandardize(cur, rows, t.out)
		case MinMax:
			f = fitMinMax(cur, rows, t.out)
		case PCA:
			f, err = fitPCA(cur, rows, t.out, st.Variance)
		default:
			err = fmt.Errorf("unknown step %q", st.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("prep: %s: %w", st, err)
		}
		t.steps = append(t.steps, f)
		t.out = f.outDim()
		if i < len(spec)-1 {
			cur = f.apply(cur, rows)
		}
	}
	return t, nil
}

// Apply transforms rows×In() values of x (row-major) into a new
// rows×Out() slice.
func (t *Transform) Apply(x []float64, rows int) []float64 {
	if len(t.steps) == 0 {
		out := make([]float64, rows*t.in)
		copy(out, x)
		return out
	}
	cur := x
	for _, f := range t.steps {
		cur = f.apply(cur, rows)
	}
	return cur
}

// affine maps each feature j to (x_j - shift_j) * scale_j.
type affine struct {
	shift, scale []float64
}

func (a *affine) outDim() int { return len(a.shift) }

func (a *affine) apply(x []float64, rows int) []float64 {
	d := len(a.shift)
	out := make([]float64, rows*d)
	for r := range rows {
		for j := range d {
			out[r*d+j] = (x[r*d+j] - a.shift[j]) * a.scale[j]
		}
	}
	return out
}

func fitStandardize(x []float64, rows, d int) fitted {
	mean := colMeans(x, rows, d)
	scale := make([]float64, d)
	for j := range d {
		var ss float64
		for r := range rows {
			v := x[r*d+j] - mean[j]
			ss += v * v
		}
		sd := math.Sqrt(ss / float64(rows))
		scale[j] = 1
		if sd > 0 && !math.IsInf(sd, 0) {
			scale[j] = 1 / sd
		}
	}
	return &affine{shift: mean, scale: scale}
}

func fitMinMax(x []float64, rows, d int) fitted {
	lo, scale := make([]float64, d), make([]float64, d)
	for j := range d {
		mn, mx := math.Inf(1), math.Inf(-1)
		for r := range rows {
			mn, mx = min(mn, x[r*d+j]), max(mx, x[r*d+j])
		}
		lo[j], scale[j] = mn, 1
		if rng := mx - mn; rng > 0 && !math.IsInf(rng, 0) {
			scale[j] = 1 / rng
		}
	}
	return &affine{shift: lo, scale: scale}
}

func colMeans(x []float64, rows, d int) []float64 {
	mean := make([]float64, d)
	for r := range rows {
		for j := range d {
			mean[j] += x[r*d+j]
		}
	}
	for j := range mean {
		mean[j] /= float64(rows)
	}
	return mean
}

// pca projects centred rows on the first k principal axes.
type pca struct {
	mean []float64
	// axes is d×k: column c is the c-th principal axis.
	axes *mat.Dense
	k    int
	// Ratio is the explained variance ratio of each kept component.
	ratio []float64
}

func (p *pca) outDim() int { return p.k }

func (p *pca) apply(x []float64, rows int) []float64 {
	if rows == 0 {
		return nil
	}
	d := len(p.mean)
	c := make([]float64, rows*d)
	for r := range rows {
		for j := range d {
			c[r*d+j] = x[r*d+j] - p.mean[j]
		}
	}
	out := mat.NewDense(rows, p.k, nil)
	out.Mul(mat.NewDense(rows, d, c), p.axes)
	return out.RawMatrix().Data
}

// fitPCA keeps the fewest leading components whose cumulative explained
// variance ratio exceeds target (all of them when rounding keeps the sum
// from doing so). Each axis's sign is fixed so that its largest-magnitude
// loading is positive, which makes the projection deterministic.
func fitPCA(x []float64, rows, d int, target float64) (fitted, error) {
	if rows < 2 {
		return nil, fmt.Errorf("needs at least 2 training rows, has %d", rows)
	}
	mean := colMeans(x, rows, d)
	c := make([]float64, rows*d)
	for r := range rows {
		for j := range d {
			c[r*d+j] = x[r*d+j] - mean[j]
		}
	}
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(rows, d, c), mat.SVDThinV) {
		return nil, errors.New("the singular value decomposition did not converge")
	}
	s := svd.Values(nil)
	var v mat.Dense
	svd.VTo(&v)
	var total float64
	for _, sv := range s {
		total += sv * sv
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return nil, errors.New("the training rows have no variance to explain")
	}
	k, cum := 0, 0.0
	ratio := make([]float64, 0, len(s))
	for _, sv := range s {
		r := sv * sv / total
		ratio = append(ratio, r)
		cum += r
		k++
		if cum > target {
			break
		}
	}
	axes := mat.NewDense(d, k, nil)
	for col := range k {
		big := 0
		for j := range d {
			if math.Abs(v.At(j, col)) > math.Abs(v.At(big, col)) {
				big = j
			}
		}
		sign := 1.0
		if v.At(big, col) < 0 {
			sign = -1
		}
		for j := range d {
			axes.Set(j, col, sign*v.At(j, col))
		}
	}
	return &pca{mean: mean, axes: axes, k: k, ratio: ratio[:k]}, nil
}
