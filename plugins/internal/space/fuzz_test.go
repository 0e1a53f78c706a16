package space

import (
	"math"
	"slices"
	"strings"
	"testing"
)

// FuzzCheck checks any search block: Check never panics, and a block it
// accepts gives settings whose every value lies in its param's definition,
// and a halving plan that ends with one setting at the full budget.
func FuzzCheck(f *testing.F) {
	f.Add("random", 5, int64(1), 1e-4, 1e-1, 1.0, 4.0, 3, "32,64,128", 9)
	f.Add("grid", 0, int64(0), 0.0, 0.5, -2.0, 2.0, 4, "adam,sgd", 1)
	f.Add("halving", 9, int64(-7), 1e-300, 1e300, 0.0, 0.0, 0, "true,false", 27)
	f.Fuzz(func(t *testing.T, kind string, trials int, seed int64, lo, hi, ilo, ihi float64, points int, list string, full int) {
		b := Block{Kind: kind, Seed: &seed, Params: []ParamBlock{
			{Name: "u", Uniform: []float64{lo, hi}},
			{Name: "l", LogUniform: []float64{lo, hi}},
			{Name: "i", IntRange: []float64{ilo, ihi}},
			{Name: "v", Values: strings.Split(list, ",")},
		}}
		if trials != 0 {
			b.Trials = &trials
		}
		if kind == KindGrid {
			b.Params[0].Points, b.Params[1].Points = &points, &points
		}
		sp, diags := Check("search", b)
		for _, d := range diags {
			if len(d.Path) == 0 || d.Path[0] != "search" || d.Summary == "" {
				t.Fatalf("diagnostic without a path or summary: %+v", d)
			}
		}
		if diags.HasErrors() {
			return
		}
		vs, _ := values(b.Params[3].Values)
		for _, s := range sp.Settings() {
			m := s.Map()
			if u := m["u"].(float64); !(u >= lo && u <= hi) {
				t.Fatalf("u %g outside [%g, %g]", u, lo, hi)
			}
			if l := m["l"].(float64); !(l >= lo && l <= hi) {
				t.Fatalf("l %g outside [%g, %g]", l, lo, hi)
			}
			if i := m["i"].(float64); !(i >= ilo && i <= ihi) || i != math.Trunc(i) {
				t.Fatalf("i %g not a whole number in [%g, %g]", i, ilo, ihi)
			}
			if !slices.Contains(vs, m["v"]) {
				t.Fatalf("v %v not among %v", m["v"], vs)
			}
		}
		if full >= 1 && full < 1<<20 {
			rs := sp.Rungs(len(sp.Settings()), full)
			if last := rs[len(rs)-1]; last.Settings != 1 || last.Resource != full {
				t.Fatalf("last rung %+v, want 1 setting at %d", last, full)
			}
		}
	})
}
