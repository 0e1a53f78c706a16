package dataset

import (
	"fmt"

	"math"
	"math/rand/v2"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Generator names.
const (
	GenSpirals      = "spirals"
	GenBlobs        = "blobs"
	GenCheckerboard = "checkerboard"
	GenRegression   = "regression"
)

// Generators lists the generator names, for config checks and hints.
var Generators = []string{GenSpirals, GenBlobs, GenCheckerboard, GenRegression}

// GenOptions parameterises a synthetic dataset. Zero fields take the
// generator's default (see GenDefaults).
type GenOptions struct {
	Kind     string
	Rows     int
	Noise    float64
	Classes  int
	Features int
	Seed     uint64
}

// GenDefaults returns the defaults of a generator: rows, noise, classes,
// features. Spirals and checkerboard are 2-D by construction.
func GenDefaults(kind string) GenOptions {
	switch kind {
	case GenSpirals:
		return GenOptions{Kind: kind, Rows: 1000, Noise: 0.05, Classes: 2, Features: 2}
	case GenBlobs:
		return GenOptions{Kind: kind, Rows: 1000, Noise: 0.8, Classes: 3, Features: 4}
	case GenCheckerboard:
		return GenOptions{Kind: kind, Rows: 1000, Noise: 0.03, Classes: 2, Features: 2}
	case GenRegression:
		return GenOptions{Kind: kind, Rows: 1000, Noise: 0.1, Features: 4}
	}
	return GenOptions{Kind: kind}
}

// Generate builds a synthetic dataset. Each is made so that a linear model
// does visibly worse than a nonlinear one, and a nonlinear one of enough
// capacity approaches the noise floor: the shape a size sweep should find.
// The same options give the same rows.
func Generate(o GenOptions) (*Table, error) {
	if o.Rows < 1 {
		return nil, fmt.Errorf("dataset: generator %s: rows must be positive, not %d", o.Kind, o.Rows)
	}
	rng := rand.New(rand.NewPCG(o.Seed, generatorStream))
	t := &Table{Source: "generator:" + o.Kind, TargetName: "target"}
	var f func(i int, x []float64) (label int64, value float64)
	switch o.Kind {
	case GenSpirals, GenCheckerboard:
		if o.Features != 2 {
			return nil, fmt.Errorf("dataset: generator %s makes 2 features, not %d", o.Kind, o.Features)
		}
	}
	switch o.Kind {
	case GenSpirals:
		f = spirals(rng, o)
	case GenBlobs:
		if o.Features < 2 {
			return nil, fmt.Errorf("dataset: generator blobs needs at least 2 features, not %d", o.Features)
		}
		f = blobs(rng, o)
	case GenCheckerboard:
		if o.Classes > MaxCheckerboardClasses {
			return nil, fmt.Errorf("dataset: generator checkerboard has at most %d classes (its squares' diagonals), not %d", MaxCheckerboardClasses, o.Classes)
		}
		f = checkerboard(rng, o)
	case GenRegression:
		if o.Features < 1 {
			return nil, fmt.Errorf("dataset: generator regression needs at least 1 feature, not %d", o.Features)
		}
		f = sines(rng, o)
	default:
		return nil, fmt.Errorf("dataset: unknown generator %q", o.Kind)
	}
	if o.Kind != GenRegression {
		if o.Classes < 2 {
			return nil, fmt.Errorf("dataset: generator %s needs at least 2 classes, not %d", o.Kind, o.Classes)
		}
		if o.Rows < o.Classes {
			return nil, fmt.Errorf("dataset: generator %s: %d rows cannot hold %d classes", o.Kind, o.Rows, o.Classes)
		}
		t.Task, t.Classes = Classification, o.Classes
		t.Labels = make([]int64, o.Rows)
	} else {
		t.Task = Regression
		t.Values = make([]float64, o.Rows)
	}
	t.FeatureNames = make([]string, o.Features)
	t.Features = make([][]float64, o.Features)
	for j := range t.Features {
		t.FeatureNames[j] = "x" + strconv.Itoa(j)
		t.Features[j] = make([]float64, o.Rows)
	}
	x := make([]float64, o.Features)
	for i := range o.Rows {
		label, value := f(i, x)
		for j, v := range x {
			t.Features[j][i] = v
		}
		if t.Task == Classification {
			t.Labels[i] = label
		} else {
			t.Values[i] = value
		}
	}
	return t, nil
}

// spirals: `classes` interleaved arms winding 1.5 turns out from the
// origin; arms are 1/(1.5*classes) apart radially, and noise is a Gaussian
// jitter in those units of radius. Row i has class i mod classes, so classes
// are balanced.
func spirals(rng *rand.Rand, o GenOptions) func(int, []float64) (int64, float64) {
	const turns = 1.5
	k := float64(o.Classes)
	return func(i int, x []float64) (int64, float64) {
		c := i % o.Classes
		t := rng.Float64()
		theta := 2*math.Pi*turns*t + 2*math.Pi*float64(c)/k
		x[0] = t*math.Cos(theta) + o.Noise*rng.NormFloat64()
		x[1] = t*math.Sin(theta) + o.Noise*rng.NormFloat64()
		return int64(c), 0
	}
}

// blobs: each class is a Gaussian blob (standard deviation noise) around
// a centre at distance 2 from the origin, plus a satellite blob holding a
// fifth of its rows on the far side of the origin, between two other
// classes (for 2 classes the centres are a right angle apart and the
// satellites opposite them: an XOR). The main blobs are nearly linearly
// separable and the satellites are not, so a linear model is decent (about
// 0.8 accuracy at the default noise) and a nonlinear one better (about 0.9),
// up to the overlap the noise leaves.
func blobs(rng *rand.Rand, o GenOptions) func(int, []float64) (int64, float64) {
	const radius, satelliteShare = 2.0, 0.2
	d, k := o.Features, o.Classes
	phase := 2 * math.Pi * rng.Float64()
	main, satellite := make([][]float64, k), make([][]float64, k)
	for c := range k {
		a := phase + 2*math.Pi*float64(c)/float64(k)
		b := phase + 2*math.Pi*(float64(c)+1.5)/float64(k)
		if k == 2 {
			a = phase + math.Pi/2*float64(c)
			b = a + math.Pi
		}
		m, s := make([]float64, d), make([]float64, d)
		m[0], m[1] = radius*math.Cos(a), radius*math.Sin(a)
		s[0], s[1] = radius*math.Cos(b), radius*math.Sin(b)
		// Further dimensions carry a random offset per class, so that they
		// hold some signal too.
		for j := 2; j < d; j++ {
			m[j] = 0.5 * radius * rng.NormFloat64()
			s[j] = m[j]
		}
		main[c], satellite[c] = m, s
	}
	return func(i int, x []float64) (int64, float64) {
		c := i % k
		centre := main[c]
		if rng.Float64() < satelliteShare {
			centre = satellite[c]
		}
		for j := range x {
			x[j] = centre[j] + o.Noise*rng.NormFloat64()
		}
		return int64(c), 0
	}
}

// MaxCheckerboardClasses is the number of diagonals of the 4x4 board.
const MaxCheckerboardClasses = 7

// checkerboard: a 4x4 board on [-1,1)^2 whose squares cycle through the
// classes; noise jitters points (in board units, a square being 0.5 wide)
// after their square is decided.
func checkerboard(rng *rand.Rand, o GenOptions) func(int, []float64) (int64, float64) {
	const cells = 4
	return func(i int, x []float64) (int64, float64) {
		c := i % o.Classes
		// Draw points until one falls in a square of class c: this keeps
		// classes balanced whatever the number of squares per class.
		for {
			u, v := rng.Float64(), rng.Float64()
			ci, cj := int(u*cells), int(v*cells)
			if (ci+cj)%o.Classes != c {
				continue
			}
			x[0] = 2*u - 1 + o.Noise*rng.NormFloat64()
			x[1] = 2*v - 1 + o.Noise*rng.NormFloat64()
			return int64(c), 0
		}
	}
}

// sines: y = Σ_j a_j sin(w_j x_j + p_j) + x_0 x_1 + noise*N(0,1), x
// uniform on [-1,1]^d, with amplitudes, frequencies (1 to 2.5 half-periods
// across the range) and phases drawn from the seed.
func sines(rng *rand.Rand, o GenOptions) func(int, []float64) (int64, float64) {
	d := o.Features
	amp, freq, phase := make([]float64, d), make([]float64, d), make([]float64, d)
	for j := range d {
		amp[j] = 0.5 + rng.Float64()
		freq[j] = math.Pi * (1 + 1.5*rng.Float64())
		phase[j] = 2 * math.Pi * rng.Float64()
	}
	return func(i int, x []float64) (int64, float64) {
		y := 0.0
		for j := range x {
			x[j] = 2*rng.Float64() - 1
			y += amp[j] * math.Sin(freq[j]*x[j]+phase[j])
		}
		if d >= 2 {
			y += x[0] * x[1]
		}
		return 0, y + o.Noise*rng.NormFloat64()
	}
}

// GenerateBatches generates a dataset and splits it as the dataset stage
// does, returning the batches the stage would emit (at most batchRows rows
// each; 0 means MaxBatchRows). The caller releases them. Other stages' tests
// use it to feed real data through their ports.
func GenerateBatches(mem memory.Allocator, o GenOptions, testFraction, validationFraction float64, batchRows int) ([]arrow.RecordBatch, error) {
	tab, err := Generate(o)
	if err != nil {
		return nil, err
	}
	strata, n := tab.Strata()
	parts := StratifiedSplit(strata, n, testFraction, validationFraction, o.Seed)
	var out []arrow.RecordBatch
	err = tab.WriteBatches(mem, parts, batchRows, func(b arrow.RecordBatch) error {
		b.Retain()
		out = append(out, b)
		return nil
	})
	if err != nil {
		for _, b := range out {
			b.Release()
		}
		return nil, err
	}
	return out, nil
}
