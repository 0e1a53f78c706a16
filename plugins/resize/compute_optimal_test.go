package resize

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/fit"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// lawWorld evaluates a candidate by a known law of loss against params
// and samples seen (reqBatch's 2000 rows times the epochs), with a fixed
// pseudo-random relative error of at most noise per candidate.
func lawWorld(law fit.ScalingLaw, noise float64) func(tables.Candidate) result {
	return func(c tables.Candidate) result {
		n := float64(c.Params)
		loss := law.At(n, 2000*float64(c.Epochs)) * math.Exp(noise*jitter(c.ID))
		return result{c: c, status: "ok", accuracy: math.Exp(-loss), loss: loss, latency: simLatency(n), sec: 1e-7 * n * float64(c.Epochs), bytes: 4 * c.Params}
	}
}

func TestComputeOptimalFindsTheLawsOptimum(t *testing.T) {
	law := fit.ScalingLaw{E: 0.3, A: 47, Alpha: 0.5, B: 100, Beta: 0.4}
	const budget = 7.2e9
	want, _ := law.ComputeOptimal(budget, 6)
	for _, c := range []struct {
		name  string
		noise float64
	}{{"exact", 0}, {"noisy", 0.01}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Strategy: ComputeOptimal, BudgetFLOPs: ptr(budget), Bootstrap: ptr(100), ProposalsPerRound: ptr(3)}
			run := runLoopWith(t, cfg, lawWorld(law, c.noise), ladder(4, 256, 6, true), &reqs{}, 20)
			d := run.last()
			reason := d["reason"].(string)
			if d["status"] != StatusConverged {
				t.Fatalf("status %v: %s", d["status"], reason)
			}
			sc, err := tables.ParseScaling(d[tables.ColScaling].(string))
			if err != nil {
				t.Fatal(err)
			}
			// The law's own optimum is inside the fitted intervals, and the
			// run chosen is the one nearest it.
			if c.noise > 0 {
				for _, p := range []struct {
					name string
					e    tables.Estimate
					v    float64
				}{{"alpha", sc.Alpha, law.Alpha}, {"beta", sc.Beta, law.Beta}, {"N*", sc.NOpt, want.N}, {"D*", sc.DOpt, want.D}} {
					if !(p.e.Lo <= p.v && p.v <= p.e.Hi) {
						t.Errorf("%s interval [%g, %g] misses the law's %g", p.name, p.e.Lo, p.e.Hi, p.v)
					}
				}
			} else if math.Abs(sc.NOpt.Value/want.N-1) > 0.02 || math.Abs(sc.Alpha.Value-law.Alpha) > 0.01 {
				t.Errorf("N* %g alpha %g from exact runs, want %g and %g", sc.NOpt.Value, sc.Alpha.Value, want.N, law.Alpha)
			}
			chosen := float64(d["chosen_params"].(int64))
			if math.Abs(math.Log2(chosen/want.N)) > 0.25 {
				t.Errorf("chose %g params, the law's optimum is %g: %s", chosen, want.N, reason)
			}
			if sc.Held == nil {
				t.Fatalf("no predicted-against-measured record: %s", reason)
			}
			if !(sc.Held.Predicted.Lo <= sc.Held.Measured && sc.Held.Measured <= sc.Held.Predicted.Hi) && c.noise > 0 {
				t.Errorf("measured %g outside the predicted [%g, %g]", sc.Held.Measured, sc.Held.Predicted.Lo, sc.Held.Predicted.Hi)
			}
			for _, s := range []string{"alpha = ", "beta = ", "N* grows as C^", "predicted loss", "budget_flops = 7.2e+09", "an extrapolation: N* is "} {
				if !strings.Contains(reason, s) {
					t.Errorf("reason lacks %q: %s", s, reason)
				}
			}
			// Every run but the last cost a quarter of the budget at most.
			for _, r := range run.results[:len(run.results)-1] {
				if r.c.Family == tables.FamilyLinear {
					continue
				}
				if cost := 6 * float64(r.c.Params) * 2000 * float64(r.c.Epochs); cost > budget/4*1.5 {
					t.Errorf("run %s cost %.3g FLOPs, over a quarter of the budget", r.c.ID, cost)
				}
			}
			t.Logf("%d rounds, %d runs: %s", len(run.decisions), len(run.results), reason)
		})
	}
}

// budget_seconds prices a run by the seconds per parameter and sample
// the runs measured; budget_flops needs the dataset's rows.
func TestComputeOptimalBudgets(t *testing.T) {
	law := fit.ScalingLaw{E: 0.3, A: 47, Alpha: 0.5, B: 100, Beta: 0.4}
	// lawWorld's runs take 1e-7 s per parameter and epoch, so 5e-11 s per
	// parameter and sample of 2000 rows: 7.2e9 FLOPs / 6 is 60 s.
	want, _ := law.ComputeOptimal(60, 5e-11)
	cfg := Config{Strategy: ComputeOptimal, BudgetSeconds: ptr(60.0), Bootstrap: ptr(100), ProposalsPerRound: ptr(3)}
	run := runLoopWith(t, cfg, lawWorld(law, 0), ladder(4, 256, 6, true), &reqs{}, 20)
	d := run.last()
	sc, err := tables.ParseScaling(d[tables.ColScaling].(string))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Cost != "seconds" || math.Abs(sc.K/5e-11-1) > 1e-9 || math.Abs(sc.NOpt.Value/want.N-1) > 0.02 {
		t.Errorf("cost %s k %g N* %g, want seconds, 5e-11 and %g", sc.Cost, sc.K, sc.NOpt.Value, want.N)
	}
	if !strings.Contains(d["reason"].(string), "budget_seconds = 60") {
		t.Errorf("reason: %s", d["reason"])
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var rs []result
	for _, c := range ladder(4, 256, 6, true) {
		rs = append(rs, lawWorld(law, 0)(c))
	}
	_, _, err = runOnce(t, mem, Config{Strategy: ComputeOptimal, BudgetFLOPs: ptr(1e9)}, rs, nil)
	if err == nil || !strings.Contains(err.Error(), "rows") {
		t.Errorf("budget_flops without the requirements' rows: %v", err)
	}
}

// With min_accuracy the law is of the gap below accuracy 1, and the
// reason gives the least compute reaching the target; max_trials stops
// the search with budget_exhausted.
func TestComputeOptimalAccuracyTarget(t *testing.T) {
	gap := fit.ScalingLaw{E: 0.02, A: 3, Alpha: 0.5, B: 5, Beta: 0.4}
	world := func(c tables.Candidate) result {
		n := float64(c.Params)
		acc := 1 - gap.At(n, 2000*float64(c.Epochs))
		return result{c: c, status: "ok", accuracy: acc, loss: -math.Log(acc), latency: simLatency(n), sec: 1e-7 * n * float64(c.Epochs), bytes: 4 * c.Params}
	}
	const budget = 7.2e9
	// The least compute reaching 0.9 by the law itself: the gap 0.1.
	want, ok := gap.ComputeFor(0.1, 6)
	if !ok {
		t.Fatal("the law never reaches 0.9")
	}
	cfg := Config{Strategy: ComputeOptimal, BudgetFLOPs: ptr(budget), Bootstrap: ptr(100), ProposalsPerRound: ptr(3)}
	run := runLoopWith(t, cfg, world, ladder(4, 256, 6, true), &reqs{minAccuracy: ptr(0.9)}, 20)
	d := run.last()
	reason := d["reason"].(string)
	if d["status"] != StatusConverged || d["metric"] != "accuracy" {
		t.Fatalf("status %v metric %v: %s", d["status"], d["metric"], reason)
	}
	if !strings.Contains(reason, "the least compute reaching accuracy = 0.9") {
		t.Errorf("reason lacks the least compute reaching the target: %s", reason)
	}
	sc, err := tables.ParseScaling(d[tables.ColScaling].(string))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(sc.Alpha.Value-gap.Alpha) > 0.02 || math.Abs(sc.E.Value-gap.E) > 0.002 {
		t.Errorf("fitted gap law alpha %g E %g, want %g and %g", sc.Alpha.Value, sc.E.Value, gap.Alpha, gap.E)
	}
	if got := optimumFrom(reason); math.Abs(math.Log2(got/want.C)) > 0.1 {
		t.Errorf("least compute %g in the reason, the law's is %g: %s", got, want.C, reason)
	}

	limited := runLoopWith(t, cfg, world, ladder(4, 256, 6, true), &reqs{minAccuracy: ptr(0.9), maxTrials: ptr(int32(10))}, 20)
	if s := limited.last()["status"]; s != StatusBudgetExhausted {
		t.Errorf("10 trials: status %v, want %s: %v", s, StatusBudgetExhausted, limited.last()["reason"])
	}
}

// optimumFrom reads the least compute out of a reason: the number after
// "is" in "the least compute reaching ... is C flops".
func optimumFrom(reason string) float64 {
	i := strings.Index(reason, "the least compute reaching")
	if i < 0 {
		return math.NaN()
	}
	var c float64
	rest := reason[i:]
	j := strings.Index(rest, " is ")
	if j < 0 {
		return math.NaN()
	}
	if _, err := fmt.Sscanf(rest[j+4:], "%g", &c); err != nil {
		return math.NaN()
	}
	return c
}

// samplesWorld evaluates a candidate by a known law of loss against
// params and data seen, the rows it trained on times its epochs, as the
// evaluation stage reports them: every one of full training rows when
// the candidate names none. Its relative error is a fixed pseudo-random
// one of at most noise per candidate.
func samplesWorld(law fit.ScalingLaw, full int64, noise float64) func(tables.Candidate) result {
	return func(c tables.Candidate) result {
		if c.Samples == 0 {
			c.Samples = full
		}
		n, d := float64(c.Params), float64(c.Samples)*float64(c.Epochs)
		loss := law.At(n, d) * math.Exp(noise*jitter(c.ID))
		return result{c: c, status: "ok", accuracy: math.Exp(-loss), loss: loss, latency: simLatency(n), sec: 1e-9 * n * d, bytes: 4 * c.Params}
	}
}

// With resource = "samples" the search varies the training rows at the
// ladder's epochs, never more rows than the split holds, and recovers the
// law's exponents and optimum. The optimum is worked out here in closed
// form from the law's parameters: N* = G·(C/6)^(β/(α+β)), G =
// (αA/(βB))^(1/(α+β)).
func TestComputeOptimalSamples(t *testing.T) {
	law := fit.ScalingLaw{E: 0.3, A: 47, Alpha: 0.5, B: 100, Beta: 0.4}
	const (
		full   = 4000
		epochs = 25 // the ladder's
		budget = 8e8
	)
	g := math.Pow(law.Alpha*law.A/(law.Beta*law.B), 1/(law.Alpha+law.Beta))
	wantN := g * math.Pow(budget/6, law.Beta/(law.Alpha+law.Beta))
	wantD := budget / 6 / wantN
	if wantD > full*epochs {
		t.Fatalf("the test's optimum needs %g samples seen, more than the %d rows at %d epochs hold", wantD, full, epochs)
	}
	for _, c := range []struct {
		name  string
		noise float64
	}{{"exact", 0}, {"noisy", 0.01}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Config{Strategy: ComputeOptimal, Resource: "samples", BudgetFLOPs: ptr(budget), Bootstrap: ptr(100), ProposalsPerRound: ptr(3), MaxWidth: ptr(256)}
			run := runLoopWith(t, cfg, samplesWorld(law, full, c.noise), ladder(4, 32, 4, true), &reqs{}, 20)
			d := run.last()
			reason := d["reason"].(string)
			if d["status"] != StatusConverged {
				t.Fatalf("status %v: %s", d["status"], reason)
			}
			sc, err := tables.ParseScaling(d[tables.ColScaling].(string))
			if err != nil {
				t.Fatal(err)
			}
			if sc.Resource != "samples" {
				t.Errorf("resource %q, want samples", sc.Resource)
			}
			if c.noise > 0 {
				for _, p := range []struct {
					name string
					e    tables.Estimate
					v    float64
				}{{"alpha", sc.Alpha, law.Alpha}, {"beta", sc.Beta, law.Beta}, {"N*", sc.NOpt, wantN}, {"D*", sc.DOpt, wantD}} {
					if !(p.e.Lo <= p.v && p.v <= p.e.Hi) {
						t.Errorf("%s interval [%g, %g] misses the law's %g", p.name, p.e.Lo, p.e.Hi, p.v)
					}
				}
			} else if math.Abs(sc.Alpha.Value-law.Alpha) > 0.01 || math.Abs(sc.Beta.Value-law.Beta) > 0.01 || math.Abs(sc.NOpt.Value/wantN-1) > 0.02 {
				t.Errorf("alpha %g beta %g N* %g from exact runs, want %g, %g and %g", sc.Alpha.Value, sc.Beta.Value, sc.NOpt.Value, law.Alpha, law.Beta, wantN)
			}
			if sc.Held == nil {
				t.Fatalf("no predicted-against-measured record: %s", reason)
			}
			if c.noise > 0 && !(sc.Held.Predicted.Lo <= sc.Held.Measured && sc.Held.Measured <= sc.Held.Predicted.Hi) {
				t.Errorf("measured %g outside the predicted [%g, %g]", sc.Held.Measured, sc.Held.Predicted.Lo, sc.Held.Predicted.Hi)
			}
			chosen := float64(d["chosen_params"].(int64))
			if math.Abs(math.Log2(chosen/wantN)) > 0.25 {
				t.Errorf("chose %g params, the law's optimum is %g: %s", chosen, wantN, reason)
			}
			// Every proposal trains the ladder's epochs on a subsample
			// the split holds, named by its rows.
			for _, r := range run.results[len(ladder(4, 32, 4, true)):] {
				if r.c.Epochs != epochs || r.c.Samples < 1 || r.c.Samples > full || !strings.HasSuffix(r.c.ID, fmt.Sprintf("-s%d", r.c.Samples)) {
					t.Errorf("proposal %s: %d epochs on %d rows", r.c.ID, r.c.Epochs, r.c.Samples)
				}
			}
			if !strings.Contains(reason, "rows at 25 epochs") || !strings.Contains(reason, "(samples)") {
				t.Errorf("reason does not speak of rows: %s", reason)
			}
			t.Logf("%d rounds, %d runs: %s", len(run.decisions), len(run.results), reason)
		})
	}
}

// resource = "samples" on runs that do not name their rows is refused,
// saying where the rows come from.
func TestComputeOptimalSamplesNeedsRows(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	law := fit.ScalingLaw{E: 0.3, A: 47, Alpha: 0.5, B: 100, Beta: 0.4}
	var rs []result
	for _, c := range ladder(4, 64, 4, true) {
		rs = append(rs, lawWorld(law, 0)(c))
	}
	_, _, err := runOnce(t, mem, Config{Strategy: ComputeOptimal, Resource: "samples", BudgetFLOPs: ptr(1e9)}, rs, &reqs{})
	if err == nil || !strings.Contains(err.Error(), "no ok run names them") {
		t.Errorf("samples without rows: %v", err)
	}
}

// When the law's D*(C) needs more rows than the split holds, the run at
// the budget is made on every row, at the width the budget then buys
// (C/(6·rows·epochs) parameters), and the reason says so.
func TestComputeOptimalSamplesBeyondTheSplit(t *testing.T) {
	law := fit.ScalingLaw{E: 0.3, A: 47, Alpha: 0.5, B: 100, Beta: 0.4}
	const (
		full   = 500
		epochs = 25
		budget = 8e8
	)
	g := math.Pow(law.Alpha*law.A/(law.Beta*law.B), 1/(law.Alpha+law.Beta))
	if d := budget / 6 / (g * math.Pow(budget/6, law.Beta/(law.Alpha+law.Beta))); d <= full*epochs {
		t.Fatalf("the law's D* %g fits in the split: the test needs it beyond", d)
	}
	wantN := budget / (6 * full * epochs)
	cfg := Config{Strategy: ComputeOptimal, Resource: "samples", BudgetFLOPs: ptr(budget), Bootstrap: ptr(100), ProposalsPerRound: ptr(3), MaxWidth: ptr(1024)}
	run := runLoopWith(t, cfg, samplesWorld(law, full, 0.01), ladder(4, 64, 5, true), &reqs{}, 20)
	d := run.last()
	reason := d["reason"].(string)
	if d["status"] != StatusConverged {
		t.Fatalf("status %v: %s", d["status"], reason)
	}
	last := run.results[len(run.results)-1].c
	if last.Samples != full || math.Abs(math.Log2(float64(last.Params)/wantN)) > 0.05 {
		t.Errorf("the run at the budget: %s, %d rows, %d params; want every one of %d rows and about %g params", last.ID, last.Samples, last.Params, full, wantN)
	}
	if !strings.Contains(reason, "the run at the budget on every training row") || !strings.Contains(reason, "more than the 500 the split holds") {
		t.Errorf("reason does not say the rows ran out: %s", reason)
	}
	for _, r := range run.results {
		if r.c.Samples > full {
			t.Errorf("%s trains %d rows of %d", r.c.ID, r.c.Samples, full)
		}
	}
}
