package dataset

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// indexLabelsByRow is indexLabels as first written, every row looked up
// by its text: the reference for the spellings index.
func indexLabelsByRow(labels []string, out []int64) (int, []string) {
	spellings := map[string]int{}
	var distinct []string
	for _, s := range labels {
		if _, ok := spellings[s]; !ok {
			spellings[s] = len(distinct)
			distinct = append(distinct, s)
		}
	}
	values := make([]float64, len(distinct))
	for i, s := range distinct {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			names := slices.Clone(distinct)
			slices.Sort(names)
			for i, s := range labels {
				k, _ := slices.BinarySearch(names, s)
				out[i] = int64(k)
			}
			return len(names), names
		}
		values[i] = v
	}
	firstSpelling := map[float64]string{}
	for _, s := range labels {
		v := values[spellings[s]]
		if _, ok := firstSpelling[v]; !ok {
			firstSpelling[v] = s
		}
	}
	sorted := slices.Sorted(maps.Keys(firstSpelling))
	identity := true
	names := make([]string, len(sorted))
	for k, v := range sorted {
		names[k] = firstSpelling[v]
		identity = identity && v == float64(k)
	}
	for i, s := range labels {
		k, _ := slices.BinarySearch(sorted, values[spellings[s]])
		out[i] = int64(k)
	}
	if identity {
		return len(sorted), nil
	}
	return len(sorted), names
}

// inferTaskByRow is inferTask as first written, every row parsed.
func inferTaskByRow(target []string) Task {
	distinct := map[float64]struct{}{}
	integral := true
	for _, s := range target {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return Classification
		}
		integral = integral && v == math.Trunc(v) && !math.IsInf(v, 0)
		if len(distinct) <= maxInferredClasses {
			distinct[v] = struct{}{}
		}
	}
	if integral && len(distinct) <= maxInferredClasses && len(distinct) <= max(2, len(target)/2) {
		return Classification
	}
	return Regression
}

// TestLabelsMatchRowByRow checks the spellings index (once per spelling,
// strings looked up by address) against the row-by-row reference on
// random target columns: class words, integers and their other spellings
// ("1", "1.0", "01"), values, a word among numbers, more spellings than
// the index holds, and labels that share an address (as the parsers'
// interned labels do) or have one each.
func TestLabelsMatchRowByRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	pools := map[string]func(i int) string{
		"words":    func(i int) string { return []string{"cat", "dog", "bird", "ant", "Cat", "cat "}[i%6] },
		"integers": func(i int) string { return strconv.Itoa(i % 7) },
		"shifted":  func(i int) string { return strconv.Itoa(i%5 + 3) },
		"spelled":  func(i int) string { return []string{"1", "1.0", "01", "2", "2e0", "0", "-0"}[i%7] },
		"values":   func(i int) string { return strconv.FormatFloat(rng.NormFloat64(), 'g', -1, 64) },
		"wide":     func(i int) string { return strconv.Itoa(i % 5000) },
		"halves":   func(i int) string { return strconv.FormatFloat(float64(i%9)/2, 'f', 1, 64) },
		"empty":    func(i int) string { return []string{"", "a"}[i%2] },
	}
	for name, pool := range pools {
		for _, rows := range []int{1, 2, 3, 10, 200, 9000} {
			for _, shared := range []bool{true, false} {
				interned := map[string]string{}
				labels := make([]string, rows)
				for i := range labels {
					s := pool(rng.IntN(rows*2 + 3))
					if shared {
						if v, ok := interned[s]; ok {
							s = v
						} else {
							interned[s] = s
						}
					} else {
						s = strings.Clone(s)
					}
					labels[i] = s
				}
				if name == "values" && rows > 100 {
					// A word after more spellings than the index holds.
					labels[rows-1] = "late"
				}
				what := fmt.Sprintf("%s, %d rows, shared %v", name, rows, shared)
				raw := &rawTable{target: labels}
				if got, want := raw.inferTask(), inferTaskByRow(labels); got != want {
					t.Errorf("%s: inferTask = %s, row by row %s", what, got, want)
				}
				got, want := make([]int64, rows), make([]int64, rows)
				gk, gn := indexLabels(labels, got)
				wk, wn := indexLabelsByRow(labels, want)
				if gk != wk || !slices.Equal(gn, wn) || (gn == nil) != (wn == nil) {
					t.Errorf("%s: indexLabels = %d classes %q, row by row %d %q", what, gk, gn, wk, wn)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s: classes (-row by row +got):\n%s", what, diff)
				}
			}
		}
	}
}

// BenchmarkIndexLabels infers the task of 10 interned class labels over a
// million rows, as a parsed CSV holds them, and indexes them: once per
// spelling (spellings) and, beside it, row by row (by-row, the reference).
func BenchmarkIndexLabels(b *testing.B) {
	names := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	rng := rand.New(rand.NewPCG(1, 2))
	labels := make([]string, 1<<20)
	for i := range labels {
		labels[i] = names[rng.IntN(len(names))]
	}
	out := make([]int64, len(labels))
	b.Run("spellings", func(b *testing.B) {
		raw := &rawTable{target: labels}
		for b.Loop() {
			if raw.inferTask() != Classification {
				b.Fatal("not classification")
			}
			if k, _ := indexLabels(labels, out); k != 10 {
				b.Fatal(k)
			}
		}
	})
	b.Run("by-row", func(b *testing.B) {
		for b.Loop() {
			if inferTaskByRow(labels) != Classification {
				b.Fatal("not classification")
			}
			if k, _ := indexLabelsByRow(labels, out); k != 10 {
				b.Fatal(k)
			}
		}
	})
}
