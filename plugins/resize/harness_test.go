package resize

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/plugins/modelchoice"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The simulated task: 16 features, 4 classes, so a depth-1 MLP of width w
// has 21w + 4 parameters.
const (
	simIn  = 16
	simOut = 4
)

// world stands in for the evaluation stage: a deterministic function of
// the candidate, so every test knows the right answer in advance.
type world struct {
	// acc gives the accuracy of an MLP of n params.
	acc func(n float64) float64
	// noise is the amplitude of a fixed pseudo-random perturbation per
	// candidate id (0: none).
	noise float64
	// baseline is the accuracy of the linear model.
	baseline float64
	// failWidth, when positive, is a width whose training fails.
	failWidth int32
}

// curve is q_inf − A·N^(−alpha).
func curve(qinf, a, alpha float64) func(float64) float64 {
	return func(n float64) float64 { return qinf - a*math.Pow(n, -alpha) }
}

// The default curve crosses 0.95 near width 60 at depth 1.
var defaultCurve = curve(0.98, 1.0666, 0.5)

func simParams(depth, width int32) int64 {
	p, _ := mlp.Count(mlp.LayerSizes(simIn, int64(depth), int64(width), simOut))
	return p
}

// latency, bytes and train time grow with params like real ones do.
func simLatency(n float64) float64 { return 0.0004 * math.Pow(n, 0.7) }
func simTrain(n float64) float64   { return 0.002 * math.Pow(n, 0.9) }

// jitter is a fixed value in [−1, 1] per id.
func jitter(id string) float64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return float64(h.Sum64()%20001)/10000 - 1
}

type result struct {
	c                            tables.Candidate
	status                       string
	accuracy, loss, latency, sec float64
	bytes                        int64
}

func (w world) evaluate(c tables.Candidate) result {
	n := float64(c.Params)
	r := result{c: c, status: "ok", latency: simLatency(n), sec: simTrain(n), bytes: 4 * c.Params}
	if c.Family == tables.FamilyLinear {
		r.accuracy = w.baseline
	} else {
		r.accuracy = w.acc(n)
	}
	if w.noise > 0 {
		r.accuracy += w.noise * jitter(c.ID)
	}
	r.accuracy = math.Min(math.Max(r.accuracy, 0), 1)
	r.loss = -math.Log(math.Max(r.accuracy, 1e-9))
	if w.failWidth > 0 && c.Width == w.failWidth {
		r = result{c: c, status: "failed", accuracy: math.NaN(), loss: math.NaN(), latency: math.NaN(), sec: 0.1, bytes: -1}
	}
	return r
}

// ladder is model_choice's initial ladder at depth 1 (plus the baseline).
func ladder(lo, hi, steps int, baseline bool) []tables.Candidate {
	return ladderAt([]int32{1}, lo, hi, steps, baseline)
}

// ladderAt is the ladder at several depths.
func ladderAt(depths []int32, lo, hi, steps int, baseline bool) []tables.Candidate {
	var out []tables.Candidate
	add := func(family string, d, w int32) {
		p, f := mlp.Count(mlp.LayerSizes(simIn, int64(d), int64(w), simOut))
		out = append(out, tables.Candidate{
			ID: fmt.Sprintf("%s-d%d-w%d", family, d, w), Family: family, Depth: d, Width: w,
			Params: p, FLOPs: f, LearningRate: 0.003, BatchSize: 64, Epochs: 25, Preprocess: "standardize", Quantize: "none",
		})
	}
	if baseline {
		add(tables.FamilyLinear, 0, 0)
	}
	for _, d := range depths {
		for _, w := range modelchoice.Ladder(lo, hi, steps) {
			add(tables.FamilyMLP, d, int32(w))
		}
	}
	return out
}

// resultsSchema is the evaluation stage's full results table, with the
// columns this stage does not read, to prove it tolerates them.
var resultsSchema = arrow.NewSchema(append(append([]arrow.Field{}, tables.CandidatesSchema.Fields()...),
	arrow.Field{Name: "accuracy", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "latency_p50_ms", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "latency_p95_ms", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "throughput_per_s", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "model_bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	arrow.Field{Name: "peak_bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	arrow.Field{Name: "train_seconds", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	arrow.Field{Name: "epochs_run", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	arrow.Field{Name: "status", Type: arrow.BinaryTypes.String},
	arrow.Field{Name: "error", Type: arrow.BinaryTypes.String, Nullable: true},
	arrow.Field{Name: "trace_id", Type: arrow.BinaryTypes.String, Nullable: true},
), nil)

// resultsBatch builds a results table from simulated results.
func resultsBatch(mem memory.Allocator, rs []result) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, resultsSchema)
	defer b.Release()
	for _, r := range rs {
		c := r.c
		b.Field(0).(*array.StringBuilder).Append(c.ID)
		b.Field(1).(*array.Int32Builder).Append(c.Round)
		b.Field(2).(*array.StringBuilder).Append(c.Family)
		b.Field(3).(*array.Int32Builder).Append(c.Depth)
		b.Field(4).(*array.Int32Builder).Append(c.Width)
		b.Field(5).(*array.Int64Builder).Append(c.Params)
		b.Field(6).(*array.Int64Builder).Append(c.FLOPs)
		b.Field(7).(*array.Float64Builder).Append(c.LearningRate)
		b.Field(8).(*array.Int32Builder).Append(c.BatchSize)
		b.Field(9).(*array.Int32Builder).Append(c.Epochs)
		b.Field(10).(*array.StringBuilder).Append(c.Preprocess)
		b.Field(11).(*array.StringBuilder).Append(c.Quantize)
		b.Field(12).(*array.Float64Builder).Append(c.PruneFraction)
		b.Field(13).(*array.StringBuilder).Append(c.Name)
		b.Field(14).(*array.StringBuilder).Append(tables.KindMLP)
		b.Field(15).(*array.Float64Builder).Append(float64(c.Width))
		b.Field(16).(*array.StringBuilder).Append("")
		for i := 17; i < len(tables.CandidatesSchema.Fields()); i++ {
			if tables.CandidatesSchema.Field(i).Name == tables.ColSamples && c.Samples > 0 {
				b.Field(i).(*array.Int64Builder).Append(c.Samples)
				continue
			}
			b.Field(i).AppendNull() // columns added since: their defaults
		}
	}
	n := len(tables.CandidatesSchema.Fields())
	fl := func(j int, v float64) {
		if math.IsNaN(v) {
			b.Field(n + j).AppendNull()
		} else {
			b.Field(n + j).(*array.Float64Builder).Append(v)
		}
	}
	for _, r := range rs {
		fl(0, r.accuracy)
		fl(1, r.loss)
		fl(2, r.latency*0.8)
		fl(3, r.latency)
		fl(4, 1000/math.Max(r.latency, 1e-9))
		if r.bytes < 0 {
			b.Field(n + 5).AppendNull()
		} else {
			b.Field(n + 5).(*array.Int64Builder).Append(r.bytes)
		}
		b.Field(n + 6).(*array.Int64Builder).Append(1 << 20)
		fl(7, r.sec)
		b.Field(n + 8).(*array.Int32Builder).Append(r.c.Epochs)
		b.Field(n + 9).(*array.StringBuilder).Append(r.status)
		b.Field(n + 10).(*array.StringBuilder).Append("")
		b.Field(n + 11).(*array.StringBuilder).Append("0af7651916cd43dd8448eb211c80319c")
	}
	return b.NewRecordBatch()
}

// reqs are the requirement values a test sets; nil fields are null.
type reqs struct {
	minAccuracy, maxLoss, maxLatency, maxWall *float64
	maxParams                                 *int64
	maxTrials                                 *int32
	task                                      string
}

func reqBatch(mem memory.Allocator, r reqs) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, tables.RequirementsSchema)
	defer b.Release()
	f := func(i int, v *float64) {
		if v == nil {
			b.Field(i).AppendNull()
		} else {
			b.Field(i).(*array.Float64Builder).Append(*v)
		}
	}
	task := r.task
	if task == "" {
		task = tables.Classification
	}
	b.Field(0).(*array.StringBuilder).Append(task)
	b.Field(1).(*array.StringBuilder).Append("accuracy")
	f(2, r.minAccuracy)
	f(3, r.maxLoss)
	f(4, r.maxLatency)
	if r.maxParams != nil {
		b.Field(5).(*array.Int64Builder).Append(*r.maxParams)
	} else {
		b.Field(5).AppendNull()
	}
	b.Field(6).AppendNull()
	b.Field(7).AppendNull()
	if r.maxTrials != nil {
		b.Field(8).(*array.Int32Builder).Append(*r.maxTrials)
	} else {
		b.Field(8).AppendNull()
	}
	f(9, r.maxWall)
	b.Field(10).(*array.Int64Builder).Append(2000)
	b.Field(11).(*array.Int32Builder).Append(simIn)
	b.Field(12).(*array.Int32Builder).Append(simOut)
	b.Field(13).(*array.Int32Builder).Append(2)
	b.Field(14).AppendNull()
	return b.NewRecordBatch()
}

// row is one decision row, read back by column name.
type row map[string]any

func readDecision(t testing.TB, rec arrow.RecordBatch) []row {
	t.Helper()
	var out []row
	for r := 0; r < int(rec.NumRows()); r++ {
		m := row{}
		for i, f := range rec.Schema().Fields() {
			c := rec.Column(i)
			if c.IsNull(r) {
				m[f.Name] = nil
				continue
			}
			switch a := c.(type) {
			case *array.String:
				m[f.Name] = a.Value(r)
			case *array.Int32:
				m[f.Name] = a.Value(r)
			case *array.Int64:
				m[f.Name] = a.Value(r)
			case *array.Float64:
				m[f.Name] = a.Value(r)
			case *array.Boolean:
				m[f.Name] = a.Value(r)
			default:
				t.Fatalf("column %s: unexpected type %s", f.Name, c.DataType())
			}
		}
		out = append(out, m)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// runOnce runs the stage once on the given results; it returns the
// decision row and the proposals.
func runOnce(t testing.TB, mem memory.Allocator, cfg Config, rs []result, r *reqs) (row, []tables.Candidate, error) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	res := resultsBatch(mem, rs)
	defer res.Release()
	in := stagetest.Inputs{InputPort: {res}}
	if r != nil {
		rb := reqBatch(mem, *r)
		defer rb.Release()
		in[RequirementsPort] = []arrow.RecordBatch{rb}
	}
	out, err := stagetest.Run(t, context.Background(), Info(), st, in)
	if err != nil {
		return nil, nil, err
	}
	ds := out.Batches(DecisionPort)
	ps := out.Batches(ProposalsPort)
	if len(ds) != 1 || len(ps) != 1 {
		t.Fatalf("%d decision and %d proposal batches, want 1 each", len(ds), len(ps))
	}
	rows := readDecision(t, ds[0])
	if len(rows) != 1 {
		t.Fatalf("%d decision rows, want 1", len(rows))
	}
	props, err := tables.ReadCandidates(ps[0])
	if err != nil {
		t.Fatal(err)
	}
	return rows[0], props, nil
}

// loop is the host's loop in miniature: evaluate, decide, feed the
// proposals back, until the status is not continue. It checks the
// invariants every round must keep.
type loopRun struct {
	decisions []row
	results   []result
}

func (l loopRun) last() row { return l.decisions[len(l.decisions)-1] }

func runLoop(t testing.TB, cfg Config, w world, start []tables.Candidate, r *reqs, maxRounds int) loopRun {
	t.Helper()
	return runLoopWith(t, cfg, w.evaluate, start, r, maxRounds)
}

func runLoopWith(t testing.TB, cfg Config, evaluate func(tables.Candidate) result, start []tables.Candidate, r *reqs, maxRounds int) loopRun {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var run loopRun
	for _, c := range start {
		run.results = append(run.results, evaluate(c))
	}
	for round := 0; round < maxRounds; round++ {
		d, props, err := runOnce(t, mem, cfg, run.results, r)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		run.decisions = append(run.decisions, d)
		checkRound(t, d, props, run.results)
		if cfg.Strategy == "" || cfg.Strategy == SmallestMeeting {
			checkMeasured(t, d, run.results, r)
		}
		if d["status"] != StatusContinue {
			if len(props) != 0 {
				t.Errorf("round %d: status %v with %d proposals", round, d["status"], len(props))
			}
			return run
		}
		for _, c := range props {
			run.results = append(run.results, evaluate(c))
		}
	}
	t.Fatalf("no stop after %d rounds; last decision: %v", maxRounds, run.last()["reason"])
	return run
}

// checkRound holds every decision to the contract.
func checkRound(t testing.TB, d row, props []tables.Candidate, before []result) {
	t.Helper()
	var maxRound int32
	// A size is (depth, width, epochs, samples): compute_optimal trains
	// one width for several epochs or rows; the other strategies keep the
	// ladder's.
	evaluated := map[[4]int64]bool{}
	key := func(c tables.Candidate) [4]int64 {
		return [4]int64{int64(c.Depth), int64(c.Width), int64(c.Epochs), c.Samples}
	}
	ids := map[string]bool{}
	for _, r := range before {
		maxRound = max(maxRound, r.c.Round)
		// A size only ever pruned was not measured: it may be proposed
		// again (pruned.go).
		if r.status != tables.StatusPruned {
			evaluated[key(r.c)] = true
		}
		ids[r.c.ID] = true
	}
	if d["round"] != maxRound {
		t.Errorf("decision round %v, want %d (the latest round judged)", d["round"], maxRound)
	}
	if d["reason"] == "" {
		t.Error("empty reason")
	}
	if got := d["proposals"]; got != int32(len(props)) {
		t.Errorf("proposals column %v, but %d proposals", got, len(props))
	}
	if d["status"] == StatusContinue && len(props) == 0 {
		t.Errorf("continue without proposals: %v", d["reason"])
	}
	if d["trials_used"] != int32(len(before)) {
		t.Errorf("trials_used %v, want %d", d["trials_used"], len(before))
	}
	for _, p := range props {
		if p.Round != maxRound+1 {
			t.Errorf("proposal %s round %d, want %d", p.ID, p.Round, maxRound+1)
		}
		if evaluated[key(p)] {
			t.Errorf("proposal %s re-proposes an evaluated size", p.ID)
		}
		evaluated[key(p)] = true
		if ids[p.ID] {
			t.Errorf("proposal id %s is not new", p.ID)
		}
		ids[p.ID] = true
		wantP, wantF := mlp.Count(mlp.LayerSizes(simIn, int64(p.Depth), int64(p.Width), simOut))
		if p.Params != wantP || p.FLOPs != wantF {
			t.Errorf("proposal %s: params %d flops %d, want %d %d", p.ID, p.Params, p.FLOPs, wantP, wantF)
		}
		if p.LearningRate != 0.003 || p.BatchSize != 64 || (p.Epochs != 25 && d["strategy"] != ComputeOptimal) || p.Preprocess != "standardize" || p.Family != tables.FamilyMLP {
			t.Errorf("proposal %s does not carry the evaluated hyperparameters: %+v", p.ID, p)
		}
	}
}

// checkMeasured holds a smallest_meeting decision to a brute-force scan
// of the results so far: never infeasible while a result meets every
// requirement, and converged only on the smallest that does.
func checkMeasured(t testing.TB, d row, results []result, r *reqs) {
	t.Helper()
	if r == nil || r.minAccuracy == nil {
		return
	}
	var best *result
	for i, res := range results {
		switch {
		case res.status != "ok" || !(res.accuracy >= *r.minAccuracy):
		case r.maxLatency != nil && !(res.latency <= *r.maxLatency):
		case r.maxParams != nil && res.c.Params > *r.maxParams:
		case best == nil || res.c.Params < best.c.Params:
			best = &results[i]
		}
	}
	switch d["status"] {
	case StatusInfeasible:
		if best != nil {
			t.Errorf("infeasible although %s was measured to meet every requirement: %v", best.c.ID, d["reason"])
		}
	case StatusConverged:
		if best == nil || d["chosen_params"] != best.c.Params {
			t.Errorf("converged on %v, but the smallest result meeting every requirement is %v: %v", d["chosen_candidate_id"], best, d["reason"])
		}
	}
}

// answer is the smallest depth-1 width whose true accuracy meets target.
func answer(acc func(float64) float64, target float64) int32 {
	for w := int32(1); w < 1<<20; w++ {
		if acc(float64(simParams(1, w))) >= target {
			return w
		}
	}
	return -1
}

var _ sdk.Stage = (*Stage)(nil)

func countOf(in, depth, width, out int64) (int64, int64) {
	return mlp.Count(mlp.LayerSizes(in, depth, width, out))
}
