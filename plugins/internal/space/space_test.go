package space

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func intp(v int) *int { return &v }

func check(t *testing.T, b Block) Space {
	t.Helper()
	sp, diags := Check("search", b)
	if diags.HasErrors() {
		t.Fatalf("Check: %v", diags)
	}
	return sp
}

// TestGridIsTheProduct checks that a grid enumerates exactly the product
// of its params' values, computed here by nested loops over values
// written out by hand (the log points are powers of ten).
func TestGridIsTheProduct(t *testing.T) {
	sp := check(t, Block{Kind: KindGrid, Metric: "val_accuracy", Params: []ParamBlock{
		{Name: "opt", Values: []string{"adam", "sgd"}},
		{Name: "layers", IntRange: []float64{1, 3}},
		{Name: "lr", LogUniform: []float64{1e-4, 1e-2}, Points: intp(3)},
		{Name: "dropout", Uniform: []float64{0, 0.5}, Points: intp(2)},
	}})
	var want []map[string]any
	for _, opt := range []string{"adam", "sgd"} {
		for _, layers := range []float64{1, 2, 3} {
			for _, lr := range []float64{1e-4, 1e-3, 1e-2} {
				for _, dropout := range []float64{0, 0.5} {
					want = append(want, map[string]any{"opt": opt, "layers": layers, "lr": lr, "dropout": dropout})
				}
			}
		}
	}
	got := sp.Settings()
	if len(got) != len(want) || sp.GridSize() != len(want) {
		t.Fatalf("grid has %d settings (GridSize %d), want %d", len(got), sp.GridSize(), len(want))
	}
	near := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b)) })
	for i := range want {
		if d := cmp.Diff(want[i], got[i].Map(), near); d != "" {
			t.Errorf("setting %d (-want +got):\n%s", i, d)
		}
		if names := []string{got[i][0].Name, got[i][1].Name, got[i][2].Name, got[i][3].Name}; !slices.Equal(names, sp.Names()) {
			t.Errorf("setting %d is in order %v, want the blocks' %v", i, names, sp.Names())
		}
	}
	// The ends of a range are exact, not rounded through a logarithm.
	if got[0].Map()["lr"] != 1e-4 || got[4].Map()["lr"] != 1e-2 {
		t.Errorf("log grid ends %v, %v; want exactly 1e-4 and 1e-2", got[0].Map()["lr"], got[4].Map()["lr"])
	}
}

// TestRandomDrawsAreInTheirRanges checks every draw against its param's
// definition, and that whole-number and listed values are drawn equally
// often: a chi-square statistic against the 0.1% critical value of its
// degrees of freedom (tables of the chi-square law: 18.47 for 4, 16.27
// for 3).
func TestRandomDrawsAreInTheirRanges(t *testing.T) {
	const n = 20000
	sp := check(t, Block{Kind: KindRandom, Seed: new(int64(42)), Params: []ParamBlock{
		{Name: "batch_size", Values: []string{"16", "32", "64", "128"}},
		{Name: "layers", IntRange: []float64{-1, 3}},
		{Name: "dropout", Uniform: []float64{0.1, 0.5}},
		{Name: "lr", LogUniform: []float64{1e-4, 1e-1}},
	}})
	sp.Trials = n // more than a stage may ask, for the statistics
	got := sp.Settings()
	if len(got) != n {
		t.Fatalf("%d settings, want %d", len(got), n)
	}
	batches, layers := map[float64]int{}, map[float64]int{}
	for i, s := range got {
		m := s.Map()
		b, l, d, lr := m["batch_size"].(float64), m["layers"].(float64), m["dropout"].(float64), m["lr"].(float64)
		if !slices.Contains([]float64{16, 32, 64, 128}, b) {
			t.Fatalf("setting %d: batch_size %v is not a listed value", i, b)
		}
		if l != math.Trunc(l) || l < -1 || l > 3 {
			t.Fatalf("setting %d: layers %v is not a whole number in [-1, 3]", i, l)
		}
		if d < 0.1 || d > 0.5 {
			t.Fatalf("setting %d: dropout %v is outside [0.1, 0.5]", i, d)
		}
		if lr < 1e-4 || lr > 1e-1 {
			t.Fatalf("setting %d: lr %v is outside [1e-4, 1e-1]", i, lr)
		}
		batches[b]++
		layers[l]++
	}
	chi2 := func(counts map[float64]int, k int) float64 {
		if len(counts) != k {
			t.Fatalf("%d distinct values drawn, want all %d", len(counts), k)
		}
		e := float64(n) / float64(k)
		var s float64
		for _, c := range counts {
			s += (float64(c) - e) * (float64(c) - e) / e
		}
		return s
	}
	if s := chi2(batches, 4); s > 16.27 {
		t.Errorf("batch_size draws are not uniform: chi-square %.2f over 3 degrees of freedom > 16.27 (p < 0.001): %v", s, batches)
	}
	if s := chi2(layers, 5); s > 18.47 {
		t.Errorf("layers draws are not uniform: chi-square %.2f over 4 degrees of freedom > 18.47 (p < 0.001): %v", s, layers)
	}
}

// TestLogUniformIsUniformInLogSpace draws 20000 values from [1e-4, 1e-1]
// and checks, with the one-sample Kolmogorov-Smirnov test, that their
// base-10 logarithms are uniform on [-4, -1]: the statistic's asymptotic
// 0.1% critical value is 1.949/sqrt(n) (Kolmogorov's law), 0.0138 here.
// It also checks the law is not uniform in linear space: a third of the
// log range lies below 1e-3, while a uniform draw would put only 0.9% of
// its values there.
func TestLogUniformIsUniformInLogSpace(t *testing.T) {
	const n = 20000
	sp := check(t, Block{Kind: KindRandom, Seed: new(int64(7)), Params: []ParamBlock{
		{Name: "lr", LogUniform: []float64{1e-4, 1e-1}},
	}})
	sp.Trials = n
	u := make([]float64, 0, n)
	below := 0
	for _, s := range sp.Settings() {
		v := s[0].V.(float64)
		u = append(u, (math.Log10(v)+4)/3)
		if v < 1e-3 {
			below++
		}
	}
	sort.Float64s(u)
	var d float64
	for i, x := range u {
		d = math.Max(d, math.Max(float64(i+1)/n-x, x-float64(i)/n))
	}
	t.Logf("KS statistic of %d log-uniform draws: %.4f (0.1%% critical value %.4f); %.4f below 1e-3", n, d, 1.949/math.Sqrt(n), float64(below)/n)
	if crit := 1.949 / math.Sqrt(n); d > crit {
		t.Errorf("KS statistic of log10(lr) against U(-4, -1): %.4f > %.4f (p < 0.001)", d, crit)
	}
	// Binomial(n, 1/3): five standard deviations is 0.0167.
	if f := float64(below) / n; math.Abs(f-1.0/3) > 5*math.Sqrt(1.0/3*2/3/n) {
		t.Errorf("%.4f of the draws are below 1e-3; a log-uniform law puts 1/3 there", f)
	}
}

// TestSameSeedSameSettings checks the draws against an enumeration made
// here from the documented rule (a PCG generator seeded (seed,
// 0x5eed5ace), one Float64 per param per setting, in block order), and
// that another seed draws others.
func TestSameSeedSameSettings(t *testing.T) {
	block := func(seed int64) Block {
		return Block{Kind: KindRandom, Trials: intp(50), Seed: &seed, Params: []ParamBlock{
			{Name: "opt", Values: []string{"adam", "sgd", "rmsprop"}},
			{Name: "lr", LogUniform: []float64{1e-5, 1}},
			{Name: "layers", IntRange: []float64{2, 6}},
			{Name: "momentum", Uniform: []float64{0.5, 0.99}},
		}}
	}
	got := check(t, block(123)).Settings()
	rng := rand.New(rand.NewPCG(123, 0x5eed5ace))
	for i := range 50 {
		u := [4]float64{rng.Float64(), rng.Float64(), rng.Float64(), rng.Float64()}
		want := map[string]any{
			"opt":      []string{"adam", "sgd", "rmsprop"}[int(u[0]*3)],
			"lr":       math.Pow(10, -5+5*u[1]),
			"layers":   2 + math.Floor(5*u[2]),
			"momentum": 0.5 + 0.49*u[3],
		}
		near := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b)) })
		if d := cmp.Diff(want, got[i].Map(), near); d != "" {
			t.Fatalf("setting %d (-want +got):\n%s", i, d)
		}
	}
	if again := check(t, block(123)).Settings(); !cmp.Equal(got, again) {
		t.Error("the same seed drew other settings")
	}
	if other := check(t, block(124)).Settings(); cmp.Equal(got, other) {
		t.Error("another seed drew the same settings")
	}
}

// TestRungs checks successive halving's plan against schedules worked out
// by hand.
func TestRungs(t *testing.T) {
	for _, tc := range []struct {
		name         string
		n, full, eta int
		minRes       int
		want         []Rung
	}{
		{"nine by three", 9, 27, 3, 1, []Rung{{9, 3}, {3, 9}, {1, 27}}},
		{"ten by three", 10, 27, 3, 1, []Rung{{10, 1}, {4, 3}, {2, 9}, {1, 27}}},
		{"min resource", 8, 8, 2, 2, []Rung{{8, 2}, {4, 2}, {2, 4}, {1, 8}}},
		{"one setting", 1, 5, 3, 1, []Rung{{1, 5}}},
		{"budget below min resource", 4, 1, 2, 3, []Rung{{4, 1}, {2, 1}, {1, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp := Space{Eta: tc.eta, MinResource: tc.minRes}
			if d := cmp.Diff(tc.want, sp.Rungs(tc.n, tc.full)); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestBest(t *testing.T) {
	nan := math.NaN()
	max := Space{Maximize: true}
	min := Space{}
	if got := max.Best([]float64{0.5, nan, 0.9, 0.9, 0.1}); got != 2 {
		t.Errorf("maximize: best %d, want 2 (the first of two ties)", got)
	}
	if got := min.Best([]float64{nan, 0.5, 0.2, 0.7}); got != 2 {
		t.Errorf("minimize: best %d, want 2", got)
	}
	if got := min.Best([]float64{nan, nan}); got != -1 {
		t.Errorf("no score: best %d, want -1", got)
	}
	if got := min.Rank([]float64{nan, 3, 1, nan, 2}); !slices.Equal(got, []int{2, 4, 1, 0, 3}) {
		t.Errorf("rank %v, want [2 4 1 0 3]", got)
	}
}

func TestSettingJSON(t *testing.T) {
	s := Setting{{"lr", 0.001}, {"batch_size", 64.0}, {"opt", "adam"}, {"bn", true}}
	if got, want := s.JSON(), `{"batch_size":64,"bn":true,"lr":0.001,"opt":"adam"}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
}

// TestCheckDiagnostics checks that each bad block is refused with a
// diagnostic at the attribute that is wrong.
func TestCheckDiagnostics(t *testing.T) {
	lr := ParamBlock{Name: "lr", LogUniform: []float64{1e-4, 1e-1}}
	for _, tc := range []struct {
		name    string
		b       Block
		path    string
		summary string
		detail  string
	}{
		{"unknown kind", Block{Kind: "grdi", Params: []ParamBlock{lr}}, "search.kind", "Unknown search", `Did you mean "grid"?`},
		{"no params", Block{Kind: KindRandom}, "search", "Empty search space", "at least one param"},
		{"trials zero", Block{Kind: KindRandom, Trials: intp(0), Params: []ParamBlock{lr}}, "search.trials", "Invalid trials", "found 0"},
		{"trials in grid", Block{Kind: KindGrid, Trials: intp(3), Params: []ParamBlock{{Name: "b", Values: []string{"1"}}}}, "search.trials", "Trials in a grid", "every combination"},
		{"empty values", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "b", Values: []string{}}}}, "search.param.0.values", "Invalid values", "at least one"},
		{"mixed values", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "b", Values: []string{"1", "x"}}}}, "search.param.0.values", "Invalid values", "mixes"},
		{"duplicate value", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "b", Values: []string{"1", "1.0"}}}}, "search.param.0.values", "Invalid values", "twice"},
		{"lo above hi", Block{Kind: KindRandom, Params: []ParamBlock{lr, {Name: "d", Uniform: []float64{0.5, 0.1}}}}, "search.param.1.uniform", "Invalid uniform", "lo 0.5 above hi 0.1"},
		{"log range at zero", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "lr", LogUniform: []float64{0, 0.1}}}}, "search.param.0.log_uniform", "Invalid log_uniform", "above 0"},
		{"log range below zero", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "lr", LogUniform: []float64{-1, 0.1}}}}, "search.param.0.log_uniform", "Invalid log_uniform", "above 0"},
		{"one bound", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "d", Uniform: []float64{0.5}}}}, "search.param.0.uniform", "Invalid uniform", "pair"},
		{"fractional int range", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "n", IntRange: []float64{1, 2.5}}}}, "search.param.0.int_range", "Invalid int_range", "whole numbers"},
		{"no definition", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "n"}}}, "search.param.0", "Param without values", "int_range"},
		{"two definitions", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "n", IntRange: []float64{1, 2}, Uniform: []float64{0, 1}}}}, "search.param.0.int_range", "Param defined twice", "keep one"},
		{"duplicate param", Block{Kind: KindRandom, Params: []ParamBlock{lr, lr}}, "search.param.1.name", "Duplicate param", `"lr"`},
		{"grid range without points", Block{Kind: KindGrid, Params: []ParamBlock{lr}}, "search.param.0.log_uniform", "Range without points in a grid", "points = N"},
		{"points outside a grid", Block{Kind: KindRandom, Params: []ParamBlock{{Name: "lr", LogUniform: []float64{1e-4, 1e-1}, Points: intp(3)}}}, "search.param.0.points", "Points outside a grid", "whole range"},
		{"test metric", Block{Kind: KindRandom, Metric: "accuracy", Params: []ParamBlock{lr}}, "search.metric", "Test metric", "val_accuracy"},
		{"unknown direction", Block{Kind: KindRandom, Metric: "val_f2", Params: []ParamBlock{lr}}, "search.direction", "Missing direction", "maximize"},
		{"misspelt direction", Block{Kind: KindRandom, Direction: "maximise", Params: []ParamBlock{lr}}, "search.direction", "Unknown direction", `Did you mean "maximize"?`},
		{"eta in random", Block{Kind: KindRandom, Eta: intp(2), Params: []ParamBlock{lr}}, "search.eta", "Attribute of another search", "halving"},
		{"eta one", Block{Kind: KindHalving, Eta: intp(1), Params: []ParamBlock{lr}}, "search.eta", "Invalid eta", "at least 2"},
		{"grid too large", Block{Kind: KindGrid, Params: []ParamBlock{{Name: "a", IntRange: []float64{1, 200}}, {Name: "b", IntRange: []float64{1, 200}}}}, "search", "Grid too large", "40000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := Check("search", tc.b)
			if !diags.HasErrors() {
				t.Fatal("no error")
			}
			var found []string
			for _, d := range diags {
				found = append(found, strings.Join(d.Path, ".")+": "+d.Summary+": "+d.Detail)
				if strings.Join(d.Path, ".") == tc.path && d.Summary == tc.summary && strings.Contains(d.Detail, tc.detail) {
					return
				}
			}
			t.Errorf("want %s: %s (…%s…); got %q", tc.path, tc.summary, tc.detail, found)
		})
	}
}

func TestCheckGood(t *testing.T) {
	sp := check(t, Block{Kind: KindHalving, Trials: intp(9), Seed: new(int64(3)), Metric: "val_accuracy", Eta: intp(2), MinResource: intp(2), Params: []ParamBlock{
		{Name: "lr", LogUniform: []float64{1e-4, 1e-1}},
	}})
	want := Space{Kind: KindHalving, Trials: 9, Seed: 3, Metric: "val_accuracy", Maximize: true, Eta: 2, MinResource: 2,
		Params: []Param{{Name: "lr", Kind: LogUniform, Lo: 1e-4, Hi: 1e-1}}}
	if d := cmp.Diff(want, sp); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if d := cmp.Diff(Space{Kind: KindRandom, Trials: DefaultTrials, Seed: DefaultSeed, Metric: DefaultMetric, Eta: DefaultEta, MinResource: DefaultMinResource,
		Params: []Param{{Name: "lr", Kind: LogUniform, Lo: 1e-4, Hi: 1e-1}}},
		check(t, Block{Kind: KindRandom, Params: []ParamBlock{{Name: "lr", LogUniform: []float64{1e-4, 1e-1}}}})); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
}
