package dataset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// Part is the part of the dataset a row belongs to.
type Part uint8

const (
	Train Part = iota
	Validation
	Test
)

func (p Part) String() string {
	switch p {
	case Validation:
		return "validation"
	case Test:
		return "test"
	}
	return "train"
}

// Streams of the PCG generator, so that the split and a generator seeded
// alike draw unrelated numbers.
const (
	splitStream     = 0x5eed_5711
	generatorStream = 0x5eed_6e4e
)

// StratifiedSplit assigns each row to train, validation or test. Rows are
// grouped by stratum (their class, or their target's quantile bin), and each
// stratum gives the test and validation parts its share of rows, so that
// every part has the same class mix as the whole. Totals are
// round(fraction * rows) apportioned by largest remainder; a stratum always
// keeps at least one training row, which may shorten the other parts of
// tiny datasets by a row. The same strata, fractions and seed give the same
// assignment.
func StratifiedSplit(strata []int, nStrata int, testFraction, validationFraction float64, seed uint64) []Part {
	return stratifiedSplit(len(strata), nStrata, func(i int) int { return strata[i] }, testFraction, validationFraction, seed)
}

// stratifiedSplit is StratifiedSplit with row i's stratum given by
// stratum(i), so that a table's labels serve without a copy. Rows are
// grouped by a counting sort into one slice of int32 row numbers (rows
// in file order within each stratum), the groups StratifiedSplit has
// always shuffled: the assignment is the same.
func stratifiedSplit(n, nStrata int, stratum func(int) int, testFraction, validationFraction float64, seed uint64) []Part {
	sizes := make([]int, nStrata)
	for i := range n {
		sizes[stratum(i)]++
	}
	start := make([]int, nStrata+1)
	for s, size := range sizes {
		start[s+1] = start[s] + size
	}
	rows := make([]int32, n)
	next := slices.Clone(start[:nStrata])
	for i := range n {
		s := stratum(i)
		rows[next[s]] = int32(i)
		next[s]++
	}
	capacity := make([]int, nStrata)
	for s, size := range sizes {
		capacity[s] = max(size-1, 0)
	}
	nTest := apportion(sizes, capacity, testFraction)
	for s := range capacity {
		capacity[s] -= nTest[s]
	}
	nVal := apportion(sizes, capacity, validationFraction)

	rng := rand.New(rand.NewPCG(seed, splitStream))
	parts := make([]Part, n)
	for s := range nStrata {
		g := rows[start[s]:start[s+1]]
		rng.Shuffle(len(g), func(i, j int) { g[i], g[j] = g[j], g[i] })
		for k, row := range g {
			switch {
			case k < nTest[s]:
				parts[row] = Test
			case k < nTest[s]+nVal[s]:
				parts[row] = Validation
			}
		}
	}
	return parts
}

// split assigns the table's rows, stratified by class or by target bin.
func (t *Table) split(testFraction, validationFraction float64, seed uint64) (parts []Part, sizes []int) {
	var stratum func(int) int
	var nStrata int
	if t.Task == Classification {
		stratum, nStrata = func(i int) int { return int(t.Labels[i]) }, t.Classes
	} else {
		strata, n := t.Strata()
		stratum, nStrata = func(i int) int { return strata[i] }, n
	}
	parts = stratifiedSplit(t.Rows(), nStrata, stratum, testFraction, validationFraction, seed)
	sizes = make([]int, nStrata)
	for i := range t.Rows() {
		sizes[stratum(i)]++
	}
	return parts, sizes
}

// apportion splits round(fraction * Σsizes) rows among strata in proportion
// to their sizes (largest remainder method), never giving a stratum more
// than its capacity.
func apportion(sizes, capacity []int, fraction float64) []int {
	total := 0
	for _, n := range sizes {
		total += n
	}
	want := int(math.Round(fraction * float64(total)))
	out := make([]int, len(sizes))
	type rem struct {
		s    int
		frac float64
	}
	rems := make([]rem, 0, len(sizes))
	given := 0
	for s, n := range sizes {
		exact := fraction * float64(n)
		out[s] = min(int(math.Floor(exact)), capacity[s])
		given += out[s]
		rems = append(rems, rem{s, exact - math.Floor(exact)})
	}
	// Stable: ties go to the lower stratum, so the result is deterministic.
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].frac > rems[j].frac })
	for given < want {
		progress := false
		for _, r := range rems {
			if given == want {
				break
			}
			if out[r.s] < capacity[r.s] {
				out[r.s]++
				given++
				progress = true
			}
		}
		if !progress {
			break
		}
	}
	return out
}

// Strata returns the stratum of each row: its class for classification;
// for regression, its target's quantile bin (up to 10 bins of at least 20
// rows), so that test rows span the target's range as training rows do.
func (t *Table) Strata() ([]int, int) {
	if t.Task == Classification {
		s := make([]int, len(t.Labels))
		for i, l := range t.Labels {
			s[i] = int(l)
		}
		return s, t.Classes
	}
	n := len(t.Values)
	bins := min(10, max(1, n/20))
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case t.Values[a] < t.Values[b]:
			return -1
		case t.Values[a] > t.Values[b]:
			return 1
		}
		return 0
	})
	s := make([]int, n)
	for rank, i := range order {
		s[i] = rank * bins / n
	}
	return s, bins
}

// checkParts explains a split that a positive fraction left without a
// row. The split keeps one row of every stratum for training, so a
// stratum of one row gives the other parts nothing: 300 rows in 300
// classes have no test row whatever test_fraction says.
func checkParts(t *Table, parts []Part, sizes []int, testFraction, validFraction float64) error {
	var counts [3]int
	for _, p := range parts {
		counts[p]++
	}
	nStrata := len(sizes)
	single := 0
	for _, n := range sizes {
		if n == 1 {
			single++
		}
	}
	for _, want := range []struct {
		part     Part
		attr     string
		fraction float64
	}{{Test, "test_fraction", testFraction}, {Validation, "validation_fraction", validFraction}} {
		if want.fraction <= 0 || counts[want.part] > 0 {
			continue
		}
		asked := int(math.Round(want.fraction * float64(len(parts))))
		msg := fmt.Sprintf("%s = %g asks for %d %s rows of %d, but the split gave it none: ", want.attr, want.fraction, asked, want.part, len(parts))
		if t.Task == Classification {
			msg += fmt.Sprintf("it is stratified by class and keeps at least one row of every class for training, so only classes of 2 rows or more give rows to the other parts, and %d of the %d classes have a single row. "+
				"Give the rare classes more rows (load more data, or merge them), or drop them", single, nStrata)
		} else {
			msg += fmt.Sprintf("it keeps at least one row of each of its %d target bins for training, which leaves no row for this part. Give the dataset more rows", nStrata)
		}
		return fmt.Errorf("dataset %s: %s", t.Source, msg)
	}
	return nil
}
