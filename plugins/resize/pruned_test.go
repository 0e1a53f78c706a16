package resize

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A pruned trial (stopped early by a training stage's pruner) is no
// measurement of its model at full training: its last values are left out
// of the fit, the repeats' means and every verdict, as a failed trial's
// are; its model stays untried (a later round may propose it again). Here
// the ladder's widest model below the answer is pruned with a flattering
// last accuracy of 0.99; were it read as a measurement, that model, too
// small, would be chosen.
func TestPrunedTrialIsNoMeasurement(t *testing.T) {
	w := world{acc: defaultCurve, baseline: 0.85}
	ans := answer(defaultCurve, 0.95)
	start := ladder(4, 1024, 6, true)
	var lie int32
	for _, c := range start {
		if c.Family == tables.FamilyMLP && c.Width < ans {
			lie = c.Width
		}
	}
	evaluate := func(c tables.Candidate) result {
		r := w.evaluate(c)
		if c.Family == tables.FamilyMLP && c.Width == lie {
			r.status, r.accuracy, r.loss = tables.StatusPruned, 0.99, 0.01
		}
		return r
	}
	run := runLoopWith(t, Config{Bootstrap: ptr(60)}, evaluate, start, &reqs{minAccuracy: ptr(0.95)}, 20)
	d := run.last()
	if d["status"] != StatusConverged {
		t.Fatalf("status %v: %v", d["status"], d["reason"])
	}
	if got := chosenWidth(t, d); got < ans || float64(got) > float64(ans)*math.Exp2(0.25) {
		t.Errorf("chose width %d, want the answer %d (or within a quarter octave above): %v", got, ans, d["reason"])
	}

	pruned := mlpResult(8, 0.99, 1)
	pruned.Status = tables.StatusPruned
	ts := fromResults(t, []tables.Result{mlpResult(8, 0.80, 0), pruned, mlpResult(8, 0.86, 2)})
	// By hand, over the ok repeats 0.80 and 0.86 only: mean 0.83, 2 repeats.
	if got := ts[0]; !close(got.accuracy, 0.83) || got.reps != 2 {
		t.Errorf("pooled accuracy %g over %d repeats, want 0.83 over 2 (the pruned repeat left out)", got.accuracy, got.reps)
	}
}

// A pruned trial is low-fidelity evidence the search uses: the model is
// not proposed again while untried models serve the search, but when the
// bracket's last gap is that very model, it is proposed again and
// measured at full budget, and a model pruned a second time is left out.
// The search here must pin the answer to the exact width (a tolerance of
// 0.01 doublings), and the answer's own first trial is pruned, as is the
// ladder's narrowest model. The answer is the curve's, found by scanning
// widths apart from the stage.
func TestPrunedTrialIsLowFidelityEvidence(t *testing.T) {
	w := world{acc: defaultCurve, baseline: 0.85}
	ans := answer(defaultCurve, 0.95)
	start := ladder(4, 1024, 6, true)
	const far = 4 // the ladder's narrowest width, far below the answer
	cfg := Config{Bootstrap: ptr(60), Tolerance: ptr(0.01)}
	req := &reqs{minAccuracy: ptr(0.95)}
	trials := func(run loopRun, width int32) (n, pruned int) {
		for _, r := range run.results {
			if r.c.Family == tables.FamilyMLP && r.c.Width == width {
				n++
				if r.status == tables.StatusPruned {
					pruned++
				}
			}
		}
		return n, pruned
	}
	reasons := func(run loopRun) string {
		var b strings.Builder
		for _, d := range run.decisions {
			b.WriteString(fmt.Sprint(d["reason"]) + "\n")
		}
		return b.String()
	}

	t.Run("proposed again when the bracket needs it", func(t *testing.T) {
		seen := map[int32]bool{}
		evaluate := func(c tables.Candidate) result {
			r := w.evaluate(c)
			if c.Family == tables.FamilyMLP && (c.Width == ans || c.Width == far) && !seen[c.Width] {
				seen[c.Width] = true
				// Stopped early, far below the others at the same step.
				r.status, r.accuracy, r.loss = tables.StatusPruned, 0.4, 1.5
			}
			return r
		}
		run := runLoopWith(t, cfg, evaluate, start, req, 40)
		d := run.last()
		if d["status"] != StatusConverged {
			t.Fatalf("status %v: %v", d["status"], d["reason"])
		}
		if got := chosenWidth(t, d); got != ans {
			t.Errorf("chose width %d, want the answer %d:\n%s", got, ans, reasons(run))
		}
		if n, p := trials(run, ans); n != 2 || p != 1 {
			t.Errorf("the answer's width had %d trials (%d pruned), want 2: pruned, then measured", n, p)
		}
		if n, _ := trials(run, far); n != 1 {
			t.Errorf("width %d, pruned and never needed, had %d trials, want 1", far, n)
		}
		want := fmt.Sprintf("proposed again, as the search needs them: mlp-d1-w%d (accuracy 0.4", ans)
		if !strings.Contains(reasons(run), want) {
			t.Errorf("no reason says %q:\n%s", want, reasons(run))
		}
		if r := fmt.Sprint(d["reason"]); !strings.Contains(r, "pruned trials are low-fidelity evidence") || !strings.Contains(r, fmt.Sprintf("not proposed again this round, other models serving the search first: mlp-d1-w%d", far)) {
			t.Errorf("the last reason does not say what was done with the pruned evidence: %s", r)
		}
	})

	t.Run("left out when pruned again", func(t *testing.T) {
		evaluate := func(c tables.Candidate) result {
			r := w.evaluate(c)
			if c.Family == tables.FamilyMLP && c.Width == ans {
				r.status, r.accuracy, r.loss = tables.StatusPruned, 0.4, 1.5
			}
			return r
		}
		run := runLoopWith(t, cfg, evaluate, start, req, 40)
		d := run.last()
		// Never measured, the answer cannot be chosen: the smallest model
		// measured to meet the target is the next width up.
		if got := chosenWidth(t, d); d["status"] != StatusConverged || got != ans+1 {
			t.Errorf("status %v, width %d; want converged on %d, the answer %d being unmeasurable: %v", d["status"], got, ans+1, ans, d["reason"])
		}
		if n, _ := trials(run, ans); n != retryPruned {
			t.Errorf("the always-pruned width had %d trials, want %d", n, retryPruned)
		}
		if r := fmt.Sprint(d["reason"]); !strings.Contains(r, fmt.Sprintf("pruned again or failed, left out: mlp-d1-w%d", ans)) {
			t.Errorf("the last reason does not name the model left out: %s", r)
		}
	})
}

// In a search among listed models (a table family), a pruned model is
// proposed again as an untried one, at most once: pruned once, the
// answer is measured on its second trial and chosen; pruned every time,
// it is left out after its second, and the next model up is the answer.
// The truth is a scan of the table apart from the search.
func TestPrunedCatalogModel(t *testing.T) {
	var space []tables.Candidate
	acc := map[string]float64{}
	for i := range 12 {
		name := fmt.Sprintf("m%02d", i)
		space = append(space, tables.Candidate{ID: name, Name: name, Family: "zoo", Kind: tables.KindTable, Size: float64(int64(100) << i), Params: int64(100) << i})
		acc[name] = 0.5 + 0.04*float64(i) // monotone: m08 is the first at 0.82
	}
	const target = 0.8
	truth, next := "", ""
	for _, c := range space {
		if acc[c.Name] >= target {
			if truth == "" {
				truth = c.Name
			} else if next == "" {
				next = c.Name
			}
		}
	}
	s, err := New(Config{MinAccuracy: ptr(target)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		pruneMax  int // trials of the answer that are pruned
		want      string
		wantTries int
		wantNote  string
	}{
		{"pruned once", 1, truth, 2, "proposed again, as the search needs them: " + truth},
		{"pruned every time", 100, next, retryPruned, "pruned again or failed, left out: " + truth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var trials []trial
			tries := 0
			look := func(c tables.Candidate) {
				r := trial{cand: c, status: tables.StatusOK, accuracy: acc[c.Name], loss: math.NaN(), latencyMs: math.NaN(), modelBytes: math.NaN()}
				if c.Name == truth {
					if tries++; tries <= tc.pruneMax {
						r.status, r.accuracy = tables.StatusPruned, 0.3
					}
				}
				trials = append(trials, r)
			}
			look(space[0])
			look(space[6])
			look(space[11])
			var reasons strings.Builder
			for round := 1; ; round++ {
				if round > 30 {
					t.Fatalf("no decision in 30 rounds:\n%s", reasons.String())
				}
				d, err := decide(s.(*Stage).s, trials, nil, space...)
				if err != nil {
					t.Fatal(err)
				}
				reasons.WriteString(d.reason + "\n")
				if d.status != StatusContinue {
					if d.status != StatusConverged || d.chosen == nil || d.chosen.rep.cand.Name != tc.want {
						t.Errorf("status %s, chosen %v; want converged on %s:\n%s", d.status, d.chosen, tc.want, reasons.String())
					}
					break
				}
				for _, p := range d.proposals {
					look(p)
				}
			}
			if tries != tc.wantTries {
				t.Errorf("the answer %s had %d trials, want %d:\n%s", truth, tries, tc.wantTries, reasons.String())
			}
			if !strings.Contains(reasons.String(), tc.wantNote) {
				t.Errorf("no reason says %q:\n%s", tc.wantNote, reasons.String())
			}
		})
	}
}
