package resize

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// fromResults reads results rows as the stage reads its input port.
func fromResults(t *testing.T, rs []tables.Result) []trial {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := tables.BuildResults(mem, rs)
	defer b.Release()
	ts, err := decodeResults(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	poolRepeats(ts)
	return ts
}

// mlpResult is an ok trained result of the depth-1 MLP of width w.
func mlpResult(w int32, acc float64, repeat int32) tables.Result {
	p, f := mlp.Count(mlp.LayerSizes(simIn, 1, int64(w), simOut))
	c := tables.Candidate{ID: fmt.Sprintf("mlp-d1-w%d", w), Family: tables.FamilyMLP, Depth: 1, Width: w,
		Params: p, FLOPs: f, LearningRate: 0.003, BatchSize: 64, Epochs: 25, Preprocess: "standardize", Quantize: "none", Repeat: repeat}
	r := tables.NewResult(c.WithDefaults())
	r.Status, r.Accuracy, r.Loss, r.Repeatable = tables.StatusOK, acc, -math.Log(acc), true
	return r
}

// A model's measurement is the mean of its ok repeats, and its spread
// their sample standard deviation; a failed repeat and a row repeating a
// measurement already read count for nothing.
func TestPoolRepeats(t *testing.T) {
	failed := mlpResult(8, 0, 3)
	failed.Status, failed.Accuracy, failed.Loss = tables.StatusFailed, math.NaN(), math.NaN()
	ts := fromResults(t, []tables.Result{
		mlpResult(8, 0.80, 0), mlpResult(8, 0.83, 1), mlpResult(8, 0.86, 2), failed,
		mlpResult(8, 0.99, 1), // repeat 1 again: the same measurement
		mlpResult(16, 0.9, 0),
	})
	// By hand: mean 0.83, deviations −0.03, 0, 0.03: sd √(0.0018/2) = 0.03.
	for i, want := range []struct {
		acc, sd float64
		reps    int
	}{{0.83, 0.03, 3}, {0.83, 0.03, 3}, {0.83, 0.03, 3}, {math.NaN(), 0.03, 3}, {0.83, 0.03, 3}, {0.9, math.NaN(), 1}} {
		got := ts[i]
		if !close(got.accuracy, want.acc) || !close(got.accSD, want.sd) || got.reps != want.reps {
			t.Errorf("row %d: accuracy %g, sd %g, %d repeats; want %g, %g, %d", i, got.accuracy, got.accSD, got.reps, want.acc, want.sd, want.reps)
		}
	}
	if ts[1].ownAcc != 0.83 || ts[2].ownAcc != 0.86 {
		t.Errorf("own accuracies %g, %g; want 0.83, 0.86", ts[1].ownAcc, ts[2].ownAcc)
	}
}

func close(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-12
}

// denseLadder measures every width of a 0.2-octave ladder from 4 to 1024
// on the default curve, so smallest_meeting converges at once; the widest
// model is measured three times, at its accuracy and ±spread, which
// makes the noise sd spread.
func denseLadder(spread float64) []tables.Result {
	var rs []tables.Result
	seen := map[int32]bool{}
	for u := 2.0; u <= 10+1e-9; u += 0.2 {
		w := int32(math.Round(math.Exp2(u)))
		if seen[w] {
			continue
		}
		seen[w] = true
		rs = append(rs, mlpResult(w, defaultCurve(float64(simParams(1, w))), 0))
	}
	top := rs[len(rs)-1]
	for r, d := range []float64{-spread, spread} {
		again := top
		again.Repeat, again.Accuracy = int32(r+1), top.Accuracy+d
		again.Loss = -math.Log(again.Accuracy)
		rs = append(rs, again)
	}
	return rs
}

// answerOn returns the smallest width of rs reaching target and the widest
// below it.
func answerOn(rs []tables.Result, target float64) (pass, fail tables.Result) {
	byWidth := slices.Clone(rs)
	slices.SortFunc(byWidth, func(a, b tables.Result) int { return int(a.Width - b.Width) })
	for i, r := range byWidth {
		if r.Repeat == 0 && r.Accuracy >= target {
			return r, byWidth[i-1]
		}
	}
	panic("no pass")
}

func settingsFor(t *testing.T, cfg Config) settings {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st.(*Stage).s
}

// When the smallest pass and the failure below it lie within two
// standard errors of the target, the search measures them again, with
// the next repeat, instead of stopping; the reason says how far they lie
// and how noisy that is. Far from the target, with the same models, it
// stops.
func TestAutomaticRepeatNearTarget(t *testing.T) {
	const spread = 0.004 // the noise sd: the widest model's repeats are at ±0.004
	rs := denseLadder(spread)
	// Width 64 measures 0.9509, width 56 0.94895: the target lies
	// between them, close to both.
	const target = 0.949
	pass, fail := answerOn(rs, target)
	if m := pass.Accuracy - target; m > 2*spread {
		t.Fatalf("test setup: the pass is %g above the target, not within the noise", m)
	}
	if m := target - fail.Accuracy; m > 2*spread {
		t.Fatalf("test setup: the failure is %g below the target, not within the noise", m)
	}
	d, err := decide(settingsFor(t, Config{MinAccuracy: ptr(target), Bootstrap: ptr(50)}), fromResults(t, rs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusContinue || d.action != actionRefine {
		t.Fatalf("status %s, action %s; want continue, refine: %s", d.status, d.action, d.reason)
	}
	var got []string
	for _, p := range d.proposals {
		got = append(got, fmt.Sprintf("%s repeat %d round %d", p.ID, p.Repeat, p.Round))
	}
	want := []string{pass.ID + " repeat 1 round 1", fail.ID + " repeat 1 round 1"}
	if !slices.Equal(got, want) {
		t.Errorf("proposals %v, want %v", got, want)
	}
	for _, s := range []string{
		fmt.Sprintf("%s measured accuracy %.4f (1 measurement), %.4f above the target", pass.ID, pass.Accuracy, pass.Accuracy-target),
		fmt.Sprintf("%s measured accuracy %.4f (1 measurement), %.4f below the target", fail.ID, fail.Accuracy, target-fail.Accuracy),
		"noise sd 0.0040, from the repeats of one model",
		"within 2 standard errors of the target, so the answer waits for " + pass.ID + " again (repeat 1) and " + fail.ID + " again (repeat 1)",
	} {
		if !strings.Contains(d.reason, s) {
			t.Errorf("reason lacks %q:\n%s", s, d.reason)
		}
	}

	// The same ladder with a noise sd of 0.00001: the margins are many
	// standard errors; the search stops and says so.
	quiet := denseLadder(0.00001)
	d, err = decide(settingsFor(t, Config{MinAccuracy: ptr(target), Bootstrap: ptr(50)}), fromResults(t, quiet), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusConverged || len(d.proposals) != 0 || d.chosen == nil || d.chosen.id() != pass.ID {
		t.Fatalf("quiet: status %s, %d proposals, chosen %v; want converged on %s: %s", d.status, len(d.proposals), d.chosenID(), pass.ID, d.reason)
	}
	se := (pass.Accuracy - target) / 0.00001
	if s := fmt.Sprintf("%.4f above the target %g, %.1f standard errors (noise sd 0.0000, from the repeats of one model)", pass.Accuracy-target, target, se); !strings.Contains(d.reason, s) {
		t.Errorf("quiet reason lacks %q:\n%s", s, d.reason)
	}

	// max_repeats = 1 turns the repeats off: the noisy ladder stops.
	d, err = decide(settingsFor(t, Config{MinAccuracy: ptr(target), Bootstrap: ptr(50), MaxRepeats: ptr(1)}), fromResults(t, rs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusConverged || len(d.proposals) != 0 {
		t.Errorf("max_repeats = 1: status %s with %d proposals: %s", d.status, len(d.proposals), d.reason)
	}
}

// The repeats stop at max_repeats measurements of a model: a pass
// measured three times, its mean still within the noise, stands.
func TestAutomaticRepeatsBounded(t *testing.T) {
	rs := denseLadder(0.004)
	const target = 0.949
	pass, fail := answerOn(rs, target)
	for r := int32(1); r <= 2; r++ {
		for _, m := range []tables.Result{pass, fail} {
			again := m
			again.Repeat = r
			rs = append(rs, again) // the same value: the mean stays put
		}
	}
	d, err := decide(settingsFor(t, Config{MinAccuracy: ptr(target), Bootstrap: ptr(50)}), fromResults(t, rs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusConverged || len(d.proposals) != 0 {
		t.Errorf("status %s with %d proposals after 3 measurements of each: %s", d.status, len(d.proposals), d.reason)
	}
	if s := fmt.Sprintf("%s measured accuracy %.4f (3 repeats, sd 0.0000)", pass.ID, pass.Accuracy); !strings.Contains(d.reason, s) {
		t.Errorf("reason lacks %q:\n%s", s, d.reason)
	}
}

// A catalog of named models, every one measured: the search converges
// on the smallest passing one.
func catalogResults(repeatable bool, held int32) ([]tables.Result, []tables.Candidate) {
	var rs []tables.Result
	var space []tables.Candidate
	for i, acc := range []float64{0.70, 0.74, 0.78, 0.801, 0.83, 0.86} {
		c := tables.Candidate{ID: fmt.Sprintf("net-%d", i), Name: fmt.Sprintf("net-%d", i), Family: "zoo", Kind: tables.KindTable,
			Size: float64(i + 1), Params: int64(1000 * (i + 1)), Preprocess: "none", Quantize: "none"}
		space = append(space, c)
		r := tables.NewResult(c)
		r.Status, r.Accuracy, r.Repeatable, r.RepeatsHeld = tables.StatusOK, acc, repeatable, held
		r.MeasuredFrom = fmt.Sprintf("zoo.csv:%d", i+2)
		rs = append(rs, r)
	}
	return rs, space
}

// An exact replay table (one measurement per model, no next repeat) is
// never asked for a repeat, however close to the target its answer lies;
// a trainer's, with the noise not yet measured, is asked for one, of the
// model nearest the target, to measure it.
func TestCatalogRepeats(t *testing.T) {
	const target = 0.8
	exact, space := catalogResults(false, 1)
	d, err := decide(settingsFor(t, Config{MinAccuracy: ptr(target)}), fromResults(t, exact), nil, space...)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusConverged || len(d.proposals) != 0 || d.chosenID() != "net-3" {
		t.Fatalf("exact table: status %s, %d proposals, chosen %s; want converged on net-3: %s", d.status, len(d.proposals), d.chosenID(), d.reason)
	}
	if s := "net-3 measured accuracy 0.8010 (exact: its table holds one measurement), 0.0010 above the target 0.8"; !strings.Contains(d.reason, s) {
		t.Errorf("reason lacks %q:\n%s", s, d.reason)
	}

	trained, space := catalogResults(true, 0)
	d, err = decide(settingsFor(t, Config{MinAccuracy: ptr(target)}), fromResults(t, trained), nil, space...)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusContinue || len(d.proposals) != 1 || d.proposals[0].ID != "net-3" || d.proposals[0].Repeat != 1 {
		t.Fatalf("trainer: status %s, proposals %v; want one repeat of net-3: %s", d.status, d.proposals, d.reason)
	}
	for _, s := range []string{
		"net-3 measured accuracy 0.8010 (1 measurement; the noise is not measured yet), 0.0010 above the target 0.8",
		"with the noise not yet measured (no model measured twice), a pass or fail this close may be the noise's, so the answer waits for net-3 again (repeat 1)",
	} {
		if !strings.Contains(d.reason, s) {
			t.Errorf("reason lacks %q:\n%s", s, d.reason)
		}
	}
}

// Points derived from one measured row share a cluster; points of their
// own have one each.
func TestClusterIDs(t *testing.T) {
	if got := clusterIDs([]string{"", "", ""}); got != nil {
		t.Errorf("no measured_from: %v, want nil", got)
	}
	got := clusterIDs([]string{"t.csv:2", "", "t.csv:2", "t.csv:3", ""})
	if got[0] != got[2] || got[0] == got[3] || got[1] == got[4] || slices.Contains([]int{got[0], got[3], got[4]}, got[1]) {
		t.Errorf("ids %v: want rows 0 and 2 together, every other apart", got)
	}
}

// Lookups a replay table interpolates between 18 measured rows name the
// row nearest them (measured_from), and the fit counts them as those 18
// measurements: 64 lookups give alpha intervals about as wide as the 18
// rows' own, where counted as 64 measurements they were far narrower
// (alpha 0.340 [0.313, 0.364] at 6 steps, 0.365 [0.354, 0.374] at 64,
// from the same 18 rows).
func TestInterpolatedLookupsDoNotNarrowTheFit(t *testing.T) {
	const real, steps = 18, 64
	width := func(rs []tables.Result) float64 {
		d, err := decide(settingsFor(t, Config{MinAccuracy: ptr(0.95), Bootstrap: ptr(100)}), fromResults(t, rs), nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.fitOut == nil {
			t.Fatalf("no fit: %s", d.reason)
		}
		return d.fitOut.alphaHi - d.fitOut.alphaLo
	}
	var own, clustered, plain float64
	for seed := range 4 {
		// The measured rows: log-spaced widths 16..4096 on the default
		// curve, with a fixed noise of sd about 0.004 per row.
		ws := make([]float64, real)
		acc := make([]float64, real)
		var rows []tables.Result
		for i := range real {
			ws[i] = 16 * math.Pow(256, float64(i)/(real-1))
			acc[i] = defaultCurve(float64(simParams(1, int32(math.Round(ws[i]))))) + 0.007*jitter(fmt.Sprintf("%d/%d", seed, i))
			rows = append(rows, mlpResult(int32(math.Round(ws[i])), acc[i], 0))
		}
		own += width(rows)
		var lookups, unmarked []tables.Result
		for k := range steps {
			u := float64(k) / (steps - 1) * (real - 1)
			i := min(int(u), real-2)
			f := u - float64(i)
			w := 16 * math.Pow(256, float64(k)/(steps-1))
			r := mlpResult(int32(math.Round(w)), (1-f)*acc[i]+f*acc[i+1], 0)
			unmarked = append(unmarked, r)
			r.MeasuredFrom = fmt.Sprintf("t.csv:%d", i+int(math.Round(f))+2)
			lookups = append(lookups, r)
		}
		clustered += width(lookups)
		plain += width(unmarked)
	}
	t.Logf("alpha interval width: 18 rows %.3f, 64 lookups marked %.3f (%.2f times), unmarked %.3f (%.2f times)", own/4, clustered/4, clustered/own, plain/4, plain/own)
	if clustered < 0.8*own {
		t.Errorf("64 marked lookups: alpha interval %.2f times as wide as the 18 rows', want at least 0.8", clustered/own)
	}
	if plain > 0.7*clustered {
		t.Errorf("unmarked lookups: %.2f times as wide as marked ones; expected the old narrowing", plain/clustered)
	}
}

// A new width proposed from a template measured several times is the new
// model's first measurement, repeat 0, whichever repeat the template's
// representative row was.
func TestNewWidthsStartAtRepeatZero(t *testing.T) {
	var rs []tables.Result
	for _, w := range []int32{4, 8, 16, 32} {
		for r := int32(2); r >= 0; r-- { // the later repeats first: they represent the model
			rs = append(rs, mlpResult(w, defaultCurve(float64(simParams(1, w)))+0.001*float64(r), r))
		}
	}
	d, err := decide(settingsFor(t, Config{MinAccuracy: ptr(0.97), Bootstrap: ptr(50)}), fromResults(t, rs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.status != StatusContinue || len(d.proposals) == 0 {
		t.Fatalf("status %s with %d proposals, want wider models: %s", d.status, len(d.proposals), d.reason)
	}
	for _, p := range d.proposals {
		if p.Repeat != 0 || slices.Contains([]int32{4, 8, 16, 32}, p.Width) {
			t.Errorf("proposal %s width %d repeat %d, want a new width at repeat 0", p.ID, p.Width, p.Repeat)
		}
	}
}
