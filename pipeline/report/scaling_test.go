package report

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// scalingRecord is a law's record as a compute_optimal decision writes
// it, its frontier sampled by brute-force minimisation along each budget.
func scalingRecord() *tables.Scaling {
	est := func(v float64) tables.Estimate { return tables.Estimate{Value: v, Lo: 0.9 * v, Hi: 1.1 * v} }
	sc := &tables.Scaling{
		Metric: "loss", Resource: "samples", Cost: "flops", K: 6,
		E: est(0.3), A: est(47), Alpha: est(0.5), B: est(100), Beta: est(0.4), Exponent: est(0.4 / 0.9),
		Budget: 7.2e9,
	}
	for i := range 8 {
		c := 1e6 * math.Pow(7200, float64(i)/7)
		n := bruteOptimum(sc, c)
		sc.Frontier = append(sc.Frontier, tables.FrontierPoint{C: c, N: n, Lo: n / 1.5, Hi: n * 1.5})
	}
	n := bruteOptimum(sc, sc.Budget)
	sc.NOpt, sc.DOpt = est(n), est(sc.Budget/(6*n))
	for i, w := range []float64{100, 1000, 10000} {
		for _, d := range []float64{1e4, 1e5} {
			l := 0.3 + 47/math.Sqrt(w) + 100*math.Pow(d, -0.4)
			sc.Runs = append(sc.Runs, tables.ScalingRun{ID: "run" + string(rune('a'+i)), N: w, D: d, C: 6 * w * d, Value: l})
		}
	}
	sc.Held = &tables.HeldOut{ID: "mlp-d1-w286-e100", Predicted: tables.Estimate{Value: 1.67, Lo: 1.64, Hi: 1.8}, Measured: 1.66, FitRuns: 6}
	return sc
}

// bruteOptimum minimises the law along C = 6·N·D over a fine log grid.
func bruteOptimum(sc *tables.Scaling, c float64) float64 {
	best, bestL := 0.0, math.Inf(1)
	for i := range 200001 {
		n := math.Pow(10, 1+9*float64(i)/200000)
		d := c / (6 * n)
		if l := sc.E.Value + sc.A.Value*math.Pow(n, -sc.Alpha.Value) + sc.B.Value*math.Pow(d, -sc.Beta.Value); l < bestL {
			best, bestL = n, l
		}
	}
	return best
}

func TestOptimumAtIsTheMinimumAlongTheBudget(t *testing.T) {
	sc := scalingRecord()
	for _, c := range []float64{1e7, 1e9, 1e11} {
		if got, want := optimumAt(sc, c), bruteOptimum(sc, c); math.Abs(got/want-1) > 1e-3 {
			t.Errorf("N*(%g) = %g, the law's minimum along the budget is at %g", c, got, want)
		}
	}
}

func TestReportDrawsTheComputeOptimalFrontier(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	run, err := runstore.Open(t.TempDir()).Create(runstore.Manifest{RunID: "scaling", Status: runstore.StatusSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	sc := scalingRecord()
	var rows []map[string]any
	for _, r := range sc.Runs {
		rows = append(rows, map[string]any{"candidate_id": r.ID, "family": "mlp", "depth": 1, "width": 3, "params": r.N, "status": "ok", "loss": r.Value})
	}
	writePort(t, run, mem, "evaluation.train", "results", 1, tables.ResultsSchema, rows)
	js, err := json.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	writePort(t, run, mem, "resize.fit", "decision", 1, tables.DecisionSchema, []map[string]any{{
		"round": 0, "status": "converged", "action": "stop", "strategy": "compute_optimal", "chosen_candidate_id": "runa",
		"reason": "because", "metric": "loss", tables.ColScaling: string(js),
	}})
	var buf bytes.Buffer
	if err := Write(&buf, run, WithAllocator(mem)); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	frontier := figure(t, html, "frontier")
	for _, s := range []string{"α = 0.500 [0.450, 0.550]", "β = 0.400 [0.360, 0.440]", "predicted 1.670 [1.640, 1.800] from 6 cheaper runs and measured 1.660", "<svg"} {
		if !strings.Contains(frontier, s) {
			t.Errorf("the frontier figure lacks %q", s)
		}
	}
	iso := figure(t, html, "isoflop")
	if !strings.Contains(iso, "<svg") || !strings.Contains(iso, "7.2G") {
		t.Errorf("the IsoFLOP figure lacks its chart or the budget 7.2G:\n%s", iso[:min(len(iso), 600)])
	}
	assertSelfContained(t, html)
}

// A decision's scaling column is outside input to the report: whatever it
// holds, parsing it and drawing its charts must not panic.
func FuzzScalingCharts(f *testing.F) {
	js, err := json.Marshal(scalingRecord())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(js))
	f.Add(`{"metric":"accuracy","k":0,"alpha":{"value":0},"beta":{"value":-1},"budget":-5,"frontier":[{"c":0,"n":-1,"lo":1e308,"hi":-1e308}]}`)
	f.Add(`{"runs":[{"n":0,"d":0,"c":0,"value":1e308}],"held":{"predicted":{"value":1}}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := tables.ParseScaling(s)
		if err != nil {
			return
		}
		for _, ch := range []chart{frontierChart(sc), isoFLOPChart(sc)} {
			if ch.ID == "" || ch.Title == "" {
				t.Errorf("a chart without its id or title: %+v", ch)
			}
		}
	})
}
