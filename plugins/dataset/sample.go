package dataset

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Sample says which rows a load capped by max_rows keeps.
type Sample string

const (
	// SampleFirst keeps the first max_rows rows and stops reading there:
	// the fastest, and fine for files whose rows are shuffled (MNIST's
	// are), but a file sorted by class loses whole classes.
	SampleFirst Sample = "first"
	// SampleRandom keeps a uniform random sample of max_rows rows, drawn by
	// the seed in one pass over the whole file (reservoir sampling), in file
	// order. Memory holds max_rows rows, not the file.
	SampleRandom Sample = "random"
)

// sampleStream is the PCG stream of the row sampler, so that it draws
// numbers unrelated to the split's and the generators' for the same seed.
const sampleStream = 0x5eed_5a3e

// sampler decides, row by row and without looking at the data, where each
// row read goes. Two samplers with the same options make the same choices
// for the same number of rows, which keeps a features file and its separate
// target file aligned.
type sampler struct {
	limit int        // 0: keep every row
	rng   *rand.Rand // nil: keep the first limit rows
	seen  int        // rows taken from the file
	// stopped says a SampleFirst sampler stopped the reading early: the
	// file has more rows than were seen.
	stopped bool
	// origin holds, in random mode, the row index each slot keeps.
	origin []int
}

func newSampler(o LoadOptions) *sampler {
	s := &sampler{limit: max(o.MaxRows, 0)}
	if s.limit > 0 && o.Sample == SampleRandom {
		s.rng = rand.New(rand.NewPCG(o.Seed, sampleStream))
	}
	return s
}

// offer is called for each row the reader has (or knows it has). It returns
// the slot to store the row in (equal to kept() before the call: append;
// smaller: replace a kept row) or -1 to drop it; stop says the reader must
// stop without taking this row.
func (s *sampler) offer() (slot int, stop bool) {
	i := s.seen
	switch {
	case s.limit == 0:
		s.seen++
		return i, false
	case s.rng == nil:
		if i >= s.limit {
			s.stopped = true
			return -1, true
		}
		s.seen++
		return i, false
	}
	s.seen++
	if i < s.limit {
		s.origin = append(s.origin, i)
		return i, false
	}
	// Algorithm R: row i replaces a kept row with probability limit/(i+1).
	if j := s.rng.IntN(i + 1); j < s.limit {
		s.origin[j] = i
		return j, false
	}
	return -1, false
}

// take offers n rows at once to a sampler that keeps the first rows (or
// every row): it returns how many of them to keep, and stop when the
// reader must stop there.
func (s *sampler) take(n int) (kept int, stop bool) {
	if s.limit == 0 {
		s.seen += n
		return n, false
	}
	kept = min(n, max(s.limit-s.seen, 0))
	s.seen += kept
	if kept < n {
		s.stopped = true
		return kept, true
	}
	return kept, false
}

// kept returns the number of rows kept so far.
func (s *sampler) kept() int {
	if s.limit > 0 {
		return min(s.seen, s.limit)
	}
	return s.seen
}

// cut says rows of the file were left out.
func (s *sampler) cut() bool { return s.stopped || (s.limit > 0 && s.seen > s.limit) }

// order returns the permutation putting kept rows back in file order, or
// nil when they already are.
func (s *sampler) order() []int {
	if s.rng == nil || slices.IsSorted(s.origin) {
		return nil
	}
	perm := make([]int, len(s.origin))
	for i := range perm {
		perm[i] = i
	}
	slices.SortFunc(perm, func(a, b int) int { return s.origin[a] - s.origin[b] })
	return perm
}

// describe returns the table's Sample text, or "" when no row was left out.
func (s *sampler) describe(seed uint64) string {
	switch {
	case !s.cut():
		return ""
	case s.rng == nil:
		return fmt.Sprintf("first %d rows", s.kept())
	}
	return fmt.Sprintf("random %d of %d rows, seed %d", s.kept(), s.seen, seed)
}

func permute[T any](v []T, perm []int) []T {
	out := make([]T, len(perm))
	for i, p := range perm {
		out[i] = v[p]
	}
	return out
}
