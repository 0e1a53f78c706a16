package dataset

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
)

func countParts(strata []int, nStrata int, parts []Part) [][3]int {
	out := make([][3]int, nStrata)
	for i, p := range parts {
		out[strata[i]][p]++
	}
	return out
}

func TestStratifiedSplitIris(t *testing.T) {
	strata := make([]int, 150)
	for i := range strata {
		strata[i] = i / 50
	}
	parts := StratifiedSplit(strata, 3, 0.2, 0.1, 1)
	// 30 test and 15 validation rows, 10 and 5 from each class.
	want := [][3]int{{35, 5, 10}, {35, 5, 10}, {35, 5, 10}}
	if diff := cmp.Diff(want, countParts(strata, 3, parts)); diff != "" {
		t.Errorf("per class [train validation test] (-want +got):\n%s", diff)
	}
}

func TestStratifiedSplitProportions(t *testing.T) {
	cases := []struct {
		sizes     []int
		test, val float64
	}{
		{[]int{212, 357}, 0.2, 0},
		{[]int{59, 71, 48}, 0.25, 0.15},
		{[]int{1000, 7, 3, 90}, 0.3, 0.1},
		{[]int{13}, 0.5, 0.0},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.sizes), func(t *testing.T) {
			var strata []int
			for s, n := range c.sizes {
				for range n {
					strata = append(strata, s)
				}
			}
			// Interleave the strata, as a shuffled file would.
			for i := range strata {
				j := (i * 7919) % len(strata)
				strata[i], strata[j] = strata[j], strata[i]
			}
			counts := countParts(strata, len(c.sizes), StratifiedSplit(strata, len(c.sizes), c.test, c.val, 3))
			total := [3]int{}
			for s, n := range c.sizes {
				for p := range 3 {
					total[p] += counts[s][p]
				}
				for p, f := range map[Part]float64{Test: c.test, Validation: c.val} {
					if exact := f * float64(n); math.Abs(float64(counts[s][p])-exact) >= 1 {
						t.Errorf("stratum %d (%d rows): %d %s rows, want within 1 of %.2f", s, n, counts[s][p], p, exact)
					}
				}
				if counts[s][Train] < 1 {
					t.Errorf("stratum %d has no training row", s)
				}
			}
			n := len(strata)
			if want := int(math.Round(c.test * float64(n))); total[Test] != want {
				t.Errorf("%d test rows, want %d", total[Test], want)
			}
			if want := int(math.Round(c.val * float64(n))); total[Validation] != want {
				t.Errorf("%d validation rows, want %d", total[Validation], want)
			}
		})
	}
}

func TestStratifiedSplitDeterministic(t *testing.T) {
	strata := make([]int, 500)
	for i := range strata {
		strata[i] = i % 4
	}
	a := StratifiedSplit(strata, 4, 0.2, 0.2, 42)
	b := StratifiedSplit(strata, 4, 0.2, 0.2, 42)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different split (-first +second):\n%s", diff)
	}
	if cmp.Equal(a, StratifiedSplit(strata, 4, 0.2, 0.2, 43)) {
		t.Error("seeds 42 and 43 gave the same split")
	}
}

// A class of one row keeps it for training rather than losing it to test.
func TestStratifiedSplitKeepsATrainingRow(t *testing.T) {
	strata := []int{0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	for seed := range uint64(20) {
		parts := StratifiedSplit(strata, 2, 0.5, 0.3, seed)
		if parts[9] != Train {
			t.Fatalf("seed %d: the only row of class 1 went to %s", seed, parts[9])
		}
	}
}

func TestRegressionStrata(t *testing.T) {
	tab := &Table{Task: Regression, Values: make([]float64, 200)}
	for i := range tab.Values {
		tab.Values[i] = float64((i * 37) % 200) // a permutation of 0..199
	}
	strata, n := tab.Strata()
	if n != 10 {
		t.Fatalf("%d bins for 200 rows, want 10", n)
	}
	for i, s := range strata {
		if want := int(tab.Values[i]) / 20; s != want {
			t.Fatalf("row %d (value %g) in bin %d, want %d", i, tab.Values[i], s, want)
		}
	}
	small := &Table{Task: Regression, Values: []float64{3, 1, 2}}
	if _, n := small.Strata(); n != 1 {
		t.Errorf("%d bins for 3 rows, want 1", n)
	}
}

// 300 rows in 300 classes leave no test row: every class keeps its only
// row for training. The stage says so instead of handing on a dataset
// without test rows.
func TestRunSingletonClassesNoTestRows(t *testing.T) {
	var b strings.Builder
	b.WriteString("x,label\n")
	for i := range 300 {
		fmt.Fprintf(&b, "%d,c%d\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "rare.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stagetest.Run(t, context.Background(), Info(), st, nil)
	want := "test_fraction = 0.2 asks for 60 test rows of 300, but the split gave it none: it is stratified by class and keeps at least one row of every class for training, " +
		"so only classes of 2 rows or more give rows to the other parts, and 300 of the 300 classes have a single row"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want it to say %q", err, want)
	}
	// With two rows in each class the same fraction is met.
	b.Reset()
	b.WriteString("x,label\n")
	for i := range 300 {
		fmt.Fprintf(&b, "%d,c%d\n", i, i/2)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, _ := runStage(t, Config{Path: path})
	if got := splitCounts(rec); got["test"] != 60 || got["train"] != 240 {
		t.Fatalf("split %v, want 60 test and 240 train rows", got)
	}
}
