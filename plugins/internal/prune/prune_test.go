package prune

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// step is one report and the decision worked out by hand.
type step struct {
	trial string
	step  int
	value float64
	stop  bool
}

func run(t *testing.T, p Pruner, steps []step) {
	t.Helper()
	for i, s := range steps {
		stop, reason := p.Report(s.trial, s.step, s.value)
		if stop != s.stop {
			t.Fatalf("report %d (%s step %d = %g): stop %v, want %v (%s)", i, s.trial, s.step, s.value, stop, s.stop, reason)
		}
		if stop == (reason == "") {
			t.Fatalf("report %d: stop %v with reason %q", i, stop, reason)
		}
	}
}

func curve(trial string, values ...float64) []step {
	out := make([]step, len(values))
	for i, v := range values {
		out[i] = step{trial, i, v, false}
	}
	return out
}

func TestMedian(t *testing.T) {
	p := New(Settings{Kind: KindMedian, Metric: "accuracy", Maximize: true, WarmupTrials: 2, WarmupSteps: 1})
	// Two finished trials; before the second finishes nothing is stopped.
	run(t, p, curve("a", 0.5, 0.6, 0.7, 0.8))
	p.Finish("a", true)
	run(t, p, []step{{"x", 1, 0.01, false}}) // 1 finished < warmup_trials 2
	run(t, p, curve("b", 0.3, 0.5, 0.6, 0.9))
	p.Finish("b", true)
	// Medians by hand: step 1 (0.6+0.5)/2 = 0.55, step 2 (0.7+0.6)/2 = 0.65,
	// step 3 (0.8+0.9)/2 = 0.85.
	run(t, p, []step{
		{"c", 0, 0.1, false},  // step 0 < warmup_steps 1
		{"c", 1, 0.54, true},  // best 0.54 < 0.55
		{"d", 1, 0.55, false}, // equal to the median: not worse
		{"e", 1, 0.56, false},
		{"e", 2, 0.2, true},  // best so far 0.56 < 0.65
		{"f", 1, 0.9, false}, // best so far 0.9 carries f past step 2
		{"f", 2, 0.62, false},
		{"h", 3, 0.84, true},
		{"h2", 3, 0.86, false},
		{"y", 7, 0.0, false}, // no finished trial reached step 7
	})
	// A stopped or failed trial's curve is no bar; a third finished one is.
	p.Finish("c", false)
	run(t, p, []step{{"z", 3, 0.0, true}})
	p.Finish("z", false)
	run(t, p, curve("g", 0.9, 0.9, 0.9, 0.1))
	p.Finish("g", true)
	// Step 3 of a, b, g: 0.8, 0.9, 0.1; the median is 0.8.
	run(t, p, []step{{"i", 3, 0.79, true}, {"j", 3, 0.8, false}})
}

func TestMedianMinimize(t *testing.T) {
	p := New(Settings{Kind: KindMedian, Metric: "loss", WarmupTrials: 2})
	run(t, p, []step{{"a", 0, 1.0, false}, {"b", 0, 2.0, false}})
	p.Finish("a", true)
	p.Finish("b", true)
	p.Finish("b", true) // counted once
	// Median 1.5: a larger loss is worse.
	run(t, p, []step{{"c", 0, 1.6, true}, {"d", 0, 1.4, false}})
	// The best loss so far is the smallest.
	run(t, p, []step{{"e", 1, 0.5, false}})
	run(t, p, []step{{"e", 0, 3.0, false}}) // best 0.5 < 1.5
}

func TestASHA(t *testing.T) {
	p := New(Settings{Kind: KindASHA, Metric: "accuracy", Maximize: true, MinResource: 1, ReductionFactor: 2})
	// Rungs at steps 1, 2, 4, 8. Bars worked out by hand: with n values
	// at a rung, a trial goes on when among the best max(1, n/2).
	run(t, p, []step{
		{"t1", 0, 0.1, false}, // no rung at step 0
		{"t1", 1, 0.5, false}, // rung 0: [0.5], keep 1
		{"t2", 1, 0.4, true},  // rung 0: [0.5 0.4], keep 1, bar 0.5
		{"t3", 1, 0.6, false}, // [0.6 0.5 0.4], keep 1, bar 0.6
		{"t4", 1, 0.55, false},
		// [0.6 0.55 0.5 0.4], keep 2, bar 0.55: equal goes on
		{"t1", 2, 0.7, false},  // rung 1: [0.7]
		{"t1", 3, 0.0, false},  // no rung at step 3
		{"t3", 2, 0.65, true},  // rung 1: [0.7 0.65], keep 1
		{"t5", 4, 0.9, false},  // rungs 0, 1 and 2 at once, best at each
		{"t6", 4, 0.58, true},  // rung 0: [0.9 0.6 0.58 0.55 0.5 0.4], keep 3, bar 0.58: on; rung 1: [0.9 0.7 0.65 0.58], keep 2, bar 0.7: stop
		{"t4", 2, 0.71, false}, // rung 1: [0.9 0.71 0.7 0.65 0.58], keep 2, bar 0.71
	})
}

func TestASHAMinimizeAndRungs(t *testing.T) {
	a := newASHA(direction{metric: "loss"}, 2, 3)
	for k, want := range []int{2, 6, 18, 54} {
		if got := a.rungStep(k); got != want {
			t.Errorf("rung %d at step %d, want %d", k, got, want)
		}
	}
	if got := a.rungStep(100); got != -1 {
		t.Errorf("rung 100 at step %d, want -1 (beyond any int)", got)
	}
	p := &locked{k: a}
	run(t, p, []step{
		{"a", 1, 9, false}, // below the first rung
		{"a", 2, 1.0, false},
		{"b", 2, 0.5, false}, // [0.5 1.0], keep 1: the smaller loss
		{"c", 2, 0.7, true},  // [0.5 0.7 1.0], keep 1, bar 0.5
		{"d", 5, 0.6, true},  // [0.5 0.6 0.7 1.0], keep 1
		{"e", 6, 0.4, false}, // rung 0: keep 1 of 5, bar 0.4; rung 1: [0.4]
	})
	// NaN and negative steps are not judged.
	if stop, _ := p.Report("f", 2, nan()); stop {
		t.Error("a NaN value stopped a trial")
	}
}

func nan() float64 { var z float64; return z / z }

func TestCheck(t *testing.T) {
	i := func(v int) *int { return &v }
	d := func(v time.Duration) *time.Duration { return &v }
	for _, tc := range []struct {
		name  string
		block Block
		want  []string // "path: summary" of each diagnostic, and detail fragments
	}{
		{name: "median defaults", block: Block{Kind: "median"}},
		{name: "asha", block: Block{Kind: "asha", MinResource: i(2), ReductionFactor: i(4), Grace: d(0)}},
		{name: "unknown kind", block: Block{Kind: "medain"}, want: []string{`pruner: Unknown pruner`, `Did you mean "median"?`}},
		{name: "custom metric", block: Block{Kind: "median", Metric: "f1"}, want: []string{`pruner.direction: Missing direction`}},
		{name: "bad direction", block: Block{Kind: "median", Direction: "max"}, want: []string{`pruner.direction: Unknown direction`}},
		{name: "other kind's attribute", block: Block{Kind: "asha", WarmupTrials: i(3)}, want: []string{`pruner.warmup_trials: Attribute of another pruner`}},
		{name: "reduction factor", block: Block{Kind: "asha", ReductionFactor: i(1)}, want: []string{`pruner.reduction_factor: Invalid reduction factor`, "at least 2; found 1"}},
		{name: "negative grace", block: Block{Kind: "median", Grace: d(-time.Second)}, want: []string{`pruner.grace: Invalid grace`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, diags := Check("pruner", tc.block)
			var got strings.Builder
			for _, d := range diags {
				got.WriteString(strings.Join(d.Path, ".") + ": " + d.Summary + " | " + d.Detail + "\n")
			}
			if len(tc.want) == 0 {
				if len(diags) > 0 {
					t.Fatalf("diagnostics:\n%s", got.String())
				}
				if tc.block.Kind == "median" && (s.Metric != "accuracy" || !s.Maximize || s.WarmupTrials != 5 || s.Grace != 30*time.Second) {
					t.Errorf("defaults: %+v", s)
				}
				if tc.block.Kind == "asha" && (s.MinResource != 2 || s.ReductionFactor != 4 || s.Grace != 0) {
					t.Errorf("settings: %+v", s)
				}
				return
			}
			for _, w := range tc.want {
				if !strings.Contains(got.String(), w) {
					t.Errorf("want %q in:\n%s", w, got.String())
				}
			}
		})
	}
}

// A stage's pruner remembers the models it trained, across stage runs
// (the history file), so that a model asked for again is trained to its
// end.
func TestStageRemembersTrainedModels(t *testing.T) {
	work := t.TempDir()
	s, diags := Check("pruner", Block{Kind: KindMedian})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	first := Open(s, work, hclog.NewNullLogger())
	if first.Trained("m1") {
		t.Fatal("a fresh pruner has trained m1")
	}
	first.Done("r1/a", "m1", [][2]float64{{1, 0.5}}, false)
	first.Done("r1/b", "", [][2]float64{{1, 0.6}}, true)
	if !first.Trained("m1") || first.Trained("") {
		t.Errorf("after its trial: m1 %v, unnamed %v; want m1 only", first.Trained("m1"), first.Trained(""))
	}
	second := Open(s, work, hclog.NewNullLogger())
	if !second.Trained("m1") || second.Trained("m2") {
		t.Errorf("read back: m1 %v, m2 %v; want m1 only", second.Trained("m1"), second.Trained("m2"))
	}
}

// TestStudies checks that a trial is judged against its own study only,
// and that a later stage run (the history read back) keeps the studies
// apart. Worked out by hand, median pruner, warm-up 2 trials: study
// "wide" finished trials at 0.8 and 0.9 at step 2, study "narrow" at 0.3
// and 0.4. Within narrow the median at step 2 is 0.35 (over both studies
// it would be 0.6), within wide 0.85.
func TestStudies(t *testing.T) {
	s, diags := Check("pruner", Block{Kind: KindMedian, WarmupTrials: new(2)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	work := t.TempDir()
	st := Open(s, work, hclog.NewNullLogger())
	for study, vs := range map[string][]float64{"wide": {0.8, 0.9}, "narrow": {0.3, 0.4}} {
		for i, v := range vs {
			trial := study + "/" + string(rune('a'+i))
			st.Study(study).Report(trial, 2, v)
			st.DoneIn(study, trial, "", [][2]float64{{2, v}}, true)
		}
	}
	for name, st := range map[string]*Stage{"this run": st, "a later run": Open(s, work, hclog.NewNullLogger())} {
		t.Run(name, func(t *testing.T) {
			run(t, st.Study("narrow"), []step{{"narrow/c", 2, 0.36, false}, {"narrow/d", 2, 0.34, true}})
			run(t, st.Study("wide"), []step{{"wide/c", 2, 0.86, false}, {"wide/d", 2, 0.7, true}})
			// The stage's own study has no finished trial: no verdict.
			run(t, st, []step{{"x", 2, 0.1, false}})
		})
	}
}
