package dataset

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestGenerateDeterministic(t *testing.T) {
	for _, kind := range Generators {
		t.Run(kind, func(t *testing.T) {
			o := GenDefaults(kind)
			o.Rows, o.Seed = 300, 7
			a, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			b, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("same seed, different data (-first +second):\n%s", diff)
			}
			o.Seed = 8
			c, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			if cmp.Equal(a.Features, c.Features) {
				t.Error("seeds 7 and 8 gave the same features")
			}
		})
	}
}

func TestGenerateShapeAndBalance(t *testing.T) {
	cases := []GenOptions{
		{Kind: GenSpirals, Rows: 999, Noise: 0.1, Classes: 3, Features: 2, Seed: 1},
		{Kind: GenBlobs, Rows: 1001, Noise: 0.5, Classes: 5, Features: 7, Seed: 2},
		{Kind: GenBlobs, Rows: 10, Noise: 0.5, Classes: 2, Features: 2, Seed: 2},
		{Kind: GenCheckerboard, Rows: 700, Noise: 0, Classes: 3, Features: 2, Seed: 3},
		{Kind: GenCheckerboard, Rows: 70, Noise: 0, Classes: MaxCheckerboardClasses, Features: 2, Seed: 3},
	}
	for _, o := range cases {
		t.Run(fmt.Sprintf("%s k=%d d=%d", o.Kind, o.Classes, o.Features), func(t *testing.T) {
			tab, err := Generate(o)
			if err != nil {
				t.Fatal(err)
			}
			if tab.Rows() != o.Rows || len(tab.Features) != o.Features || tab.Classes != o.Classes || tab.Task != Classification {
				t.Fatalf("got %d rows x %d features, %d classes (%s); want %d x %d, %d", tab.Rows(), len(tab.Features), tab.Classes, tab.Task, o.Rows, o.Features, o.Classes)
			}
			counts := classCounts(tab)
			for c, n := range counts {
				if n < o.Rows/o.Classes || n > o.Rows/o.Classes+1 {
					t.Errorf("class %d has %d rows; want %d or %d of %d (balanced)", c, n, o.Rows/o.Classes, o.Rows/o.Classes+1, o.Rows)
				}
			}
		})
	}
	reg, err := Generate(GenOptions{Kind: GenRegression, Rows: 50, Noise: 0, Features: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Task != Regression || reg.Rows() != 50 || len(reg.Features) != 3 || reg.Classes != 0 {
		t.Errorf("regression: %s, %d rows x %d features, %d classes", reg.Task, reg.Rows(), len(reg.Features), reg.Classes)
	}
}

// The generators exist to make model size matter: a linear model must do
// visibly worse than a flexible one (15-NN here), and the flexible one must
// do well. Thresholds hold for the default settings over several seeds.
func TestGenerateDifficulty(t *testing.T) {
	cases := []struct {
		kind                   string
		linearMin, linearMax   float64
		flexibleMin, minMargin float64
	}{
		{GenSpirals, 0.5, 0.75, 0.93, 0.2},
		{GenBlobs, 0.7, 0.87, 0.85, 0.05},
		{GenCheckerboard, 0.4, 0.6, 0.82, 0.25},
		{GenRegression, -0.1, 0.3, 0.4, 0.3},
	}
	for _, c := range cases {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s seed %d", c.kind, seed), func(t *testing.T) {
				o := GenDefaults(c.kind)
				o.Seed = seed
				tab, err := Generate(o)
				if err != nil {
					t.Fatal(err)
				}
				lin, flex := difficulty(tab)
				if lin < c.linearMin || lin > c.linearMax {
					t.Errorf("linear score %.3f outside [%g, %g]", lin, c.linearMin, c.linearMax)
				}
				if flex < c.flexibleMin || flex-lin < c.minMargin {
					t.Errorf("15-NN score %.3f; want at least %g and %g above linear (%.3f)", flex, c.flexibleMin, c.minMargin, lin)
				}
			})
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	cases := []GenOptions{
		{Kind: "moons", Rows: 10, Classes: 2, Features: 2},
		{Kind: GenSpirals, Rows: 0, Classes: 2, Features: 2},
		{Kind: GenSpirals, Rows: 10, Classes: 2, Features: 3},
		{Kind: GenBlobs, Rows: 10, Classes: 2, Features: 1},
		{Kind: GenBlobs, Rows: 2, Classes: 3, Features: 2},
		{Kind: GenCheckerboard, Rows: 100, Classes: 8, Features: 2},
		{Kind: GenSpirals, Rows: 10, Classes: 1, Features: 2},
		{Kind: GenRegression, Rows: 10, Features: 0},
	}
	for _, o := range cases {
		if _, err := Generate(o); err == nil {
			t.Errorf("Generate(%+v) succeeded, want an error", o)
		}
	}
}
