package replay

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/plugins/modelchoice"
	"github.com/sweetspot-ml/sweetspot/plugins/requirements"
	"github.com/sweetspot-ml/sweetspot/plugins/resize"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// decision is the part of a resize decision row the loop tests read.
type decision struct {
	status, reason, chosenID string
	chosenWidth              int32 // -1: none
	chosenMeasured           float64
	loWidth, hiWidth         int32 // the final bracket; -1: none
}

func readDecision(t testing.TB, b arrow.RecordBatch) decision {
	t.Helper()
	if b.NumRows() != 1 {
		t.Fatalf("%d decision rows, want 1", b.NumRows())
	}
	col := func(name string) arrow.Array { return b.Column(b.Schema().FieldIndices(name)[0]) }
	i32 := func(name string) int32 {
		a := col(name).(*array.Int32)
		if a.IsNull(0) {
			return -1
		}
		return a.Value(0)
	}
	str := func(name string) string {
		a := col(name).(*array.String)
		if a.IsNull(0) {
			return ""
		}
		return a.Value(0)
	}
	d := decision{
		status: str("status"), reason: str("reason"), chosenID: str("chosen_candidate_id"),
		chosenWidth: i32("chosen_width"), loWidth: i32("bracket_lo_width"), hiWidth: i32("bracket_hi_width"),
		chosenMeasured: math.NaN(),
	}
	if a := col("chosen_measured").(*array.Float64); !a.IsNull(0) {
		d.chosenMeasured = a.Value(0)
	}
	return d
}

// loopRun is what a loop did.
type loopRun struct {
	decisions []decision
	lookups   int // candidates replayed, over all rounds
	// interpolated counts the lookups answered by interpolation.
	interpolated int
	// repeats counts the lookups of a later repeat (repeat > 0).
	repeats int
	widths  [][]int32
}

func (l loopRun) last() decision { return l.decisions[len(l.decisions)-1] }

// runLoop is the host's loop in miniature, with the real stages: the replay
// stage evaluates a round's candidates, the resize stage judges every
// round's results so far, and its proposals are the next round's
// candidates, until its status is not continue.
func runLoop(t *testing.T, replayCfg Config, resizeCfg resize.Config, req arrow.RecordBatch, start []tables.Candidate, maxRounds int) loopRun {
	t.Helper()
	ctx := context.Background()
	rp, err := New(replayCfg)
	if err != nil {
		t.Fatal(err)
	}
	rz, err := resize.New(resizeCfg)
	if err != nil {
		t.Fatal(err)
	}
	var run loopRun
	var results []arrow.RecordBatch // valid until the test ends
	cands := tables.BuildCandidates(memory.DefaultAllocator, start)
	t.Cleanup(cands.Release)
	for round := 0; round < maxRounds; round++ {
		out, err := stagetest.Run(t, ctx, Info(), rp, stagetest.Inputs{InputPort: {cands}})
		if err != nil {
			t.Fatalf("round %d: replay: %v", round, err)
		}
		rs := out.Batches(OutputPort)
		results = append(results, rs...)
		var ws []int32
		for _, b := range rs {
			run.lookups += int(b.NumRows())
			w := b.Column(b.Schema().FieldIndices("width")[0]).(*array.Int32)
			src := b.Column(b.Schema().FieldIndices("replay_source")[0]).(*array.String)
			rep := b.Column(b.Schema().FieldIndices(tables.ColRepeat)[0]).(*array.Int32)
			for i := range w.Len() {
				ws = append(ws, w.Value(i))
				if rep.Value(i) > 0 {
					run.repeats++
				}
				if src.Value(i) == SourceInterpolated {
					run.interpolated++
				}
			}
		}
		run.widths = append(run.widths, ws)
		in := stagetest.Inputs{resize.InputPort: results}
		if req != nil {
			in[resize.RequirementsPort] = []arrow.RecordBatch{req}
		}
		dout, err := stagetest.Run(t, ctx, resize.Info(), rz, in)
		if err != nil {
			t.Fatalf("round %d: resize: %v", round, err)
		}
		d := readDecision(t, dout.Batches(resize.DecisionPort)[0])
		run.decisions = append(run.decisions, d)
		if d.status != resize.StatusContinue {
			return run
		}
		cands = dout.Batches(resize.ProposalsPort)[0]
	}
	t.Fatalf("no stop after %d rounds: %s", maxRounds, run.last().reason)
	return run
}

// requirementsRow runs the real requirements stage, with the dataset when
// given.
func requirementsRow(t *testing.T, cfg requirements.Config, data []arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	st, err := requirements.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := stagetest.Inputs{}
	if data != nil {
		in[requirements.InputPort] = data
	}
	out, err := stagetest.Run(t, context.Background(), requirements.Info(), st, in)
	if err != nil {
		t.Fatal(err)
	}
	return out.Batches(requirements.OutputPort)[0]
}

// The task of the synthetic tables: 16 features, 4 classes.
func synthCand(depth, width int32) tables.Candidate { return mlpCand(depth, width) }

// synthAccuracy is a power-law learning curve in parameters,
// q_inf − A·N^(−alpha), crossing 0.95 near width 60 at depth 1.
func synthAccuracy(params int64) float64 { return 0.98 - 1.0666*math.Pow(float64(params), -0.5) }

// synthTable writes a table of depth-1 models at the given widths (and
// the linear baseline) whose accuracy follows synthAccuracy, with latency
// and train time growing with size.
func synthTable(t *testing.T, widths []int32) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("family,depth,width,params,accuracy,loss,latency_p95_ms,model_bytes,train_seconds\n")
	row := func(c tables.Candidate, acc float64) {
		n := float64(c.Params)
		fmt.Fprintf(&b, "%s,%d,%d,%d,%s,%s,%s,%d,%s\n", c.Family, c.Depth, c.Width, c.Params, canonical(acc, 64),
			canonical(-math.Log(acc), 64), canonical(0.0004*math.Pow(n, 0.7), 64), 4*c.Params, canonical(0.002*math.Pow(n, 0.9), 64))
	}
	row(cand(tables.FamilyLinear, 0, 0), 0.85)
	for _, w := range widths {
		c := synthCand(1, w)
		row(c, synthAccuracy(c.Params))
	}
	return writeFile(t, "synthetic.csv", b.String())
}

// ladder is model_choice's first round at depth 1: the baseline and steps
// log-spaced widths.
func ladder(lo, hi, steps int) []tables.Candidate {
	out := []tables.Candidate{cand(tables.FamilyLinear, 0, 0)}
	for _, w := range modelchoice.Ladder(lo, hi, steps) {
		out = append(out, synthCand(1, int32(w)))
	}
	return out
}

const tolerance = 0.25 // resize's default, in doublings of width

// checkOptimum holds a loop's end to the table's optimum: converged on it,
// or above it by at most the tolerance, with fewer lookups than the table
// has rows.
func checkOptimum(t *testing.T, run loopRun, optimum int32, rows int) {
	t.Helper()
	d := run.last()
	if d.status != resize.StatusConverged {
		t.Fatalf("status %s, want converged: %s", d.status, d.reason)
	}
	if d.chosenWidth < optimum || float64(d.chosenWidth) > float64(optimum)*math.Exp2(tolerance) {
		t.Errorf("chose width %d; the table's optimum is %d, so want %d..%.0f: %s", d.chosenWidth, optimum, optimum, float64(optimum)*math.Exp2(tolerance), d.reason)
	}
	if run.lookups >= rows {
		t.Errorf("%d lookups for a table of %d rows", run.lookups, rows)
	}
	t.Logf("optimum %d, chose %s (width %d) in %d rounds with %d lookups of a %d-row table; widths per round: %v",
		optimum, d.chosenID, d.chosenWidth, len(run.decisions), run.lookups, rows, run.widths)
}

// THE check of the issue: on a dense table whose optimum is known (the
// smallest width whose accuracy reaches the target), the resize loop fed
// by the replay stage ends converged on it.
func TestLoopFindsTheTablesOptimum(t *testing.T) {
	var widths []int32
	for w := int32(1); w <= 1024; w++ {
		widths = append(widths, w)
	}
	path := synthTable(t, widths)
	rows := len(widths) + 1
	for _, target := range []float64{0.9, 0.93, 0.95, 0.96, 0.97} {
		t.Run(fmt.Sprint(target), func(t *testing.T) {
			optimum := int32(-1)
			for _, w := range widths {
				if synthAccuracy(synthCand(1, w).Params) >= target {
					optimum = w
					break
				}
			}
			req := requirementsRow(t, requirements.Config{MinAccuracy: ptr(target)}, nil)
			run := runLoop(t, Config{Path: path}, resize.Config{}, req, ladder(4, 1024, 6), 20)
			checkOptimum(t, run, optimum, rows)
		})
	}
}

// With a sparse table and log-width interpolation, the optimum is the
// smallest width whose interpolated accuracy reaches the target.
func TestLoopOnInterpolatedTable(t *testing.T) {
	var widths []int32
	for _, w := range modelchoice.Ladder(1, 1024, 41) { // a quarter-doubling apart
		widths = append(widths, int32(w))
	}
	path := synthTable(t, widths)
	cfg := Config{Path: path, Interpolate: InterpolateLogWidth}
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ix := st.(*Stage).ix
	const target = 0.9
	optimum := int32(-1)
	for w := int32(1); w <= 1024; w++ {
		c := synthCand(1, w)
		h, ok := ix.find(c, true)
		if ok && ix.build(c, h).Accuracy >= target {
			optimum = w
			break
		}
	}
	req := requirementsRow(t, requirements.Config{MinAccuracy: ptr(target)}, nil)
	run := runLoop(t, cfg, resize.Config{}, req, ladder(4, 1024, 6), 20)
	checkOptimum(t, run, optimum, ix.t.Rows)
	if run.interpolated == 0 {
		t.Error("no lookup was interpolated: the test does not test interpolation")
	}
}

// The example's own table, measured by the evaluation stage: the loop set
// up as examples/replay/pipeline.hcl sets it up (real dataset,
// requirements and model_choice stages) finds the table's answer. Measured
// accuracy is noisy in width (a test split of 500 rows, one seed per
// width), so the answer is a region: from the first width that reaches
// the target to the width from which every wider one does.
func TestLoopOnExampleTable(t *testing.T) {
	ctx := context.Background()
	ds, err := dataset.New(exampleDataset)
	if err != nil {
		t.Fatal(err)
	}
	data, err := stagetest.Run(t, ctx, dataset.Info(), ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := New(Config{Path: exampleTable})
	if err != nil {
		t.Fatal(err)
	}
	ix := st.(*Stage).ix
	tab := ix.t
	acc := map[int32]float64{}
	for w := int32(4); w <= 256; w++ {
		c := exampleCandidate(tables.FamilyMLP, 1, w)
		h, ok := ix.find(c, false)
		if !ok {
			t.Fatalf("the table lacks %s", c.ID)
		}
		acc[w] = ix.build(c, h).Accuracy
	}

	for _, target := range []float64{0.9, 0.93, exampleTarget, 0.95} {
		t.Run(fmt.Sprint(target), func(t *testing.T) {
			req := requirementsRow(t, requirements.Config{MinAccuracy: ptr(target)}, data.Batches(dataset.Port))
			mc, err := modelchoice.New(modelchoice.Config{
				Depth: []int{1}, Width: &modelchoice.WidthRange{Min: 4, Max: 256}, Steps: ptr(6),
				LearningRate: ptr(exampleLearningRate), BatchSize: ptr(exampleBatchSize), Epochs: ptr(exampleEpochs),
			})
			if err != nil {
				t.Fatal(err)
			}
			mcOut, err := stagetest.Run(t, ctx, modelchoice.Info(), mc, stagetest.Inputs{modelchoice.InputPort: {req}})
			if err != nil {
				t.Fatal(err)
			}
			start, err := tables.ReadCandidates(mcOut.Batches(modelchoice.OutputPort)[0])
			if err != nil {
				t.Fatal(err)
			}
			first, stable := int32(-1), int32(256)
			for w := int32(4); w <= 256; w++ {
				if acc[w] >= target {
					first = w
					break
				}
			}
			for w := int32(256); w >= 4 && acc[w] >= target; w-- {
				stable = w
			}

			run := runLoop(t, Config{Path: exampleTable}, resize.Config{}, req, start, 10)
			d := run.last()
			t.Logf("table: first width reaching %g is %d, every width from %d does; loop: %s, chose %s (measured %.4f) in %d rounds, %d lookups of %d rows; widths per round: %v; %s",
				target, first, stable, d.status, d.chosenID, d.chosenMeasured, len(run.decisions), run.lookups, tab.Rows, run.widths, d.reason)
			if d.status != resize.StatusConverged {
				t.Fatalf("status %s, want converged: %s", d.status, d.reason)
			}
			if d.chosenMeasured < target || acc[d.chosenWidth] != d.chosenMeasured {
				t.Errorf("chose %s with accuracy %v; the table says %v", d.chosenID, d.chosenMeasured, acc[d.chosenWidth])
			}
			if d.chosenWidth < first || d.chosenWidth > stable {
				t.Errorf("chose width %d outside the table's crossing region %d..%d", d.chosenWidth, first, stable)
			}
			if run.lookups >= tab.Rows {
				t.Errorf("%d lookups for a table of %d rows", run.lookups, tab.Rows)
			}
		})
	}
}
