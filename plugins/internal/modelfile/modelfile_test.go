package modelfile

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
)

// blobs is a three-class dataset of Gaussian blobs in 4 features, with
// features on unlike scales so that the preprocessing matters.
func blobs(n int, seed uint64) *prep.Dataset {
	rng := rand.New(rand.NewPCG(seed, 1))
	ds := &prep.Dataset{Task: nn.Classification, Classes: 3, Features: []string{"a", "b", "c", "d"}, Target: "y", ClassNames: []string{"red", "green", "blue"}}
	for i := range n {
		k := int32(i % 3)
		x := []float64{float64(k)*2 + rng.NormFloat64(), 100 * (float64(k) + rng.NormFloat64()), rng.NormFloat64(), 0.01 * float64(k)}
		r := &ds.Train
		if i%4 == 0 {
			r = &ds.Test
		}
		r.X = append(r.X, x...)
		r.Labels = append(r.Labels, k)
		r.N++
	}
	return ds
}

// trained returns a model file of a small MLP trained on ds with the
// preprocessing and compression given, and the accuracy the evaluation
// stage's scorer (nn.Evaluate) gives the same model on the test rows.
func trained(t testing.TB, ds *prep.Dataset, preprocess string, comp nn.Compression) ([]byte, float64) {
	spec, err := prep.Parse(preprocess)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ds.Prepare(spec)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := nn.Gonum{}.Fit(context.Background(), nn.Spec{Inputs: p.Inputs, Hidden: []int{8}, Outputs: 3}, p.Train, nil,
		nn.Config{LearningRate: 0.01, BatchSize: 16, Epochs: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	c, err := nn.Compress(m, comp)
	if err != nil {
		t.Fatal(err)
	}
	met, err := nn.Evaluate(c, p.Test)
	if err != nil {
		t.Fatal(err)
	}
	h := HeaderOf(ds, spec.String(), "none", comp.PruneFraction)
	b, err := Encode(h, p.Transform, c)
	if err != nil {
		t.Fatal(err)
	}
	return b, met.Accuracy
}

// A decoded file predicts the raw test rows, preprocessing included, to
// the accuracy the evaluation's scorer measured on the preprocessed rows.
func TestPredictMatchesEvaluation(t *testing.T) {
	ds := blobs(600, 7)
	for _, tc := range []struct {
		prep string
		comp nn.Compression
	}{
		{"none", nn.Compression{}},
		{"standardize+pca:0.99", nn.Compression{}},
		{"minmax", nn.Compression{Int8: true}},
		{"standardize", nn.Compression{PruneFraction: 0.5, Int8: true}},
	} {
		b, want := trained(t, ds, tc.prep, tc.comp)
		f, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", tc.prep, err)
		}
		classes, _, err := f.Predict(ds.Test.X, ds.Test.N)
		if err != nil {
			t.Fatal(err)
		}
		correct := 0
		for i, k := range classes {
			if k == ds.Test.Labels[i] {
				correct++
			}
		}
		if got := float64(correct) / float64(ds.Test.N); got != want {
			t.Errorf("%s %+v: accuracy from the file's predictions %v, the scorer measured %v", tc.prep, tc.comp, got, want)
		}
		if want < 0.6 {
			t.Errorf("%s: accuracy %v: the model learned nothing, the test proves little", tc.prep, want)
		}
		if f.ClassName(2) != "blue" || f.Header.Preprocess != tc.prep {
			t.Errorf("header %+v", f.Header)
		}
	}
}

// Damaged files are refused with what is wrong, never decoded.
func TestDecodeRefuses(t *testing.T) {
	b, _ := trained(t, blobs(90, 1), "standardize", nn.Compression{})
	cases := map[string]struct {
		data []byte
		want string
	}{
		"empty":       {nil, "no SSMODEL1 header"},
		"version":     {append([]byte("SSMODEL2"), b[8:]...), "version '2'"},
		"cut":         {b[:len(b)-3], "claims"},
		"trailing":    {append(append([]byte(nil), b...), 0), "bytes after the weights"},
		"header json": {func() []byte { c := append([]byte(nil), b...); c[12] = '['; return c }(), "header"},
	}
	for name, tc := range cases {
		_, err := Decode(tc.data)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want ErrFormat saying %q", name, err, tc.want)
		}
	}
	// Every single-byte truncation is refused.
	for n := range len(b) {
		if _, err := Decode(b[:n]); err == nil {
			t.Fatalf("%d of %d bytes decoded", n, len(b))
		}
	}
}

// FuzzDecode: a model file is outside input once exported. Decoding must
// never panic nor allocate what a damaged length claims, and a file that
// decodes must predict without panicking.
func FuzzDecode(f *testing.F) {
	b, _ := trained(f, blobs(60, 2), "standardize+pca:0.9", nn.Compression{})
	f.Add(b)
	q, _ := trained(f, blobs(60, 2), "minmax", nn.Compression{Int8: true, PruneFraction: 0.6})
	f.Add(q)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			return
		}
		x := make([]float64, 2*m.Inputs())
		for i := range x {
			x[i] = math.Sin(float64(i))
		}
		if _, _, err := m.Predict(x, 2); err != nil {
			t.Fatal(err)
		}
	})
}
