package replay

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

var update = flag.Bool("update", false, "retrain every model of examples/replay/results.csv with the evaluation stage and rewrite the file (several minutes)")

// exampleTable is the measured table shipped with examples/replay.
const exampleTable = "../../examples/replay/results.csv"

// The measurement behind exampleTable. The dataset and the candidates'
// hyperparameters are the ones examples/replay/pipeline.hcl declares, so
// that the replayed rows are the rows that pipeline would have trained.
var exampleDataset = dataset.Config{
	Generator:    dataset.GenSpirals,
	Rows:         ptr(2000),
	Noise:        ptr(0.05),
	TestFraction: ptr(0.25),
	Seed:         ptr(int64(7)),
}

const (
	exampleFeatures     = 2 // spirals are 2-D
	exampleClasses      = 2
	exampleLearningRate = 0.01
	exampleBatchSize    = 32
	exampleEpochs       = 60
	exampleMaxWidth1    = 256 // every width 2..256 at depth 1
	exampleMaxWidth2    = 128 // every width 2..128 at depth 2
	// exampleTarget is the pipeline's min_accuracy.
	exampleTarget = 0.94
)

// exampleEvaluation is the evaluation stage's config of the measurement:
// its defaults (seed 1, patience 10, 200 latency samples), one trial at a
// time so that latencies are not taken beside another training.
var exampleEvaluation = evaluation.Config{Parallelism: ptr(1)}

func exampleCandidate(family string, depth, width int32) tables.Candidate {
	p, f := mlp.Count(mlp.LayerSizes(exampleFeatures, int64(depth), int64(width), exampleClasses))
	return tables.Candidate{
		ID: fmt.Sprintf("%s-d%d-w%d", family, depth, width), Family: family, Depth: depth, Width: width,
		Params: p, FLOPs: f, LearningRate: exampleLearningRate, BatchSize: exampleBatchSize, Epochs: exampleEpochs,
		Preprocess: "none", Quantize: "none",
	}
}

// exampleCandidates are every model of the table: the linear baseline and
// every width of both depths.
func exampleCandidates() []tables.Candidate {
	out := []tables.Candidate{exampleCandidate(tables.FamilyLinear, 0, 0)}
	for w := int32(2); w <= exampleMaxWidth1; w++ {
		out = append(out, exampleCandidate(tables.FamilyMLP, 1, w))
	}
	for w := int32(2); w <= exampleMaxWidth2; w++ {
		out = append(out, exampleCandidate(tables.FamilyMLP, 2, w))
	}
	return out
}

// measure trains and measures candidates with the real dataset and
// evaluation stages, in process.
func measure(t *testing.T, cands []tables.Candidate) []tables.Result {
	t.Helper()
	ctx := context.Background()
	ds, err := dataset.New(exampleDataset)
	if err != nil {
		t.Fatal(err)
	}
	data, err := stagetest.Run(t, ctx, dataset.Info(), ds, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := evaluation.New(exampleEvaluation)
	if err != nil {
		t.Fatal(err)
	}
	in := tables.BuildCandidates(memory.DefaultAllocator, cands)
	defer in.Release()
	out, err := stagetest.Run(t, ctx, evaluation.Info(), ev, stagetest.Inputs{
		evaluation.InputPort: {in}, evaluation.DatasetPort: data.Batches(dataset.Port),
	})
	if err != nil {
		t.Fatal(err)
	}
	var rs []tables.Result
	for _, b := range out.Batches(evaluation.OutputPort) {
		r, err := tables.ReadResults(b)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r...)
	}
	if len(rs) != len(cands) {
		t.Fatalf("%d results for %d candidates", len(rs), len(cands))
	}
	return rs
}

// tableColumns are the columns of exampleTable, each with how a result
// spells it.
var tableColumns = []struct {
	name string
	cell func(tables.Result) string
}{
	{"family", func(r tables.Result) string { return r.Family }},
	{"depth", func(r tables.Result) string { return strconv.Itoa(int(r.Depth)) }},
	{"width", func(r tables.Result) string { return strconv.Itoa(int(r.Width)) }},
	{"params", func(r tables.Result) string { return strconv.FormatInt(r.Params, 10) }},
	{"flops", func(r tables.Result) string { return strconv.FormatInt(r.FLOPs, 10) }},
	{"learning_rate", func(r tables.Result) string { return num(r.LearningRate) }},
	{"batch_size", func(r tables.Result) string { return strconv.Itoa(int(r.BatchSize)) }},
	{"epochs", func(r tables.Result) string { return strconv.Itoa(int(r.Epochs)) }},
	{"preprocess", func(r tables.Result) string { return r.Preprocess }},
	{"accuracy", func(r tables.Result) string { return num(r.Accuracy) }},
	{"loss", func(r tables.Result) string { return num(r.Loss) }},
	{"val_loss", func(r tables.Result) string { return num(r.ValLoss) }},
	{"latency_p50_ms", func(r tables.Result) string { return num(r.LatencyP50Ms) }},
	{"latency_p95_ms", func(r tables.Result) string { return num(r.LatencyP95Ms) }},
	{"throughput_per_s", func(r tables.Result) string { return num(r.ThroughputPerS) }},
	{"model_bytes", func(r tables.Result) string { return strconv.FormatInt(r.ModelBytes, 10) }},
	{"peak_bytes", func(r tables.Result) string { return strconv.FormatInt(r.PeakBytes, 10) }},
	{"train_seconds", func(r tables.Result) string { return num(r.TrainSeconds) }},
	{"epochs_run", func(r tables.Result) string { return strconv.Itoa(int(r.EpochsRun)) }},
	{"best_epoch", func(r tables.Result) string { return strconv.Itoa(int(r.BestEpoch)) }},
	{"stopped_by", func(r tables.Result) string { return r.StoppedBy }},
}

// num writes a float so that it reads back bit for bit; null is empty.
func num(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// The columns that depend on the seeded training only, not on the machine's
// load: a retrained model must reproduce them exactly.
var reproducible = []string{"family", "depth", "width", "params", "flops", "learning_rate", "batch_size", "epochs",
	"preprocess", "accuracy", "loss", "val_loss", "model_bytes", "peak_bytes", "epochs_run", "best_epoch", "stopped_by"}

// TestExampleTable regenerates examples/replay/results.csv with -update.
// Without it, it retrains a few of the table's models and checks that
// they reproduce their rows: the table is what the evaluation stage
// measures, not numbers made up to look like it.
func TestExampleTable(t *testing.T) {
	if *update {
		cands := exampleCandidates()
		start := time.Now()
		rs := measure(t, cands)
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		header := make([]string, len(tableColumns))
		for i, c := range tableColumns {
			header[i] = c.name
		}
		_ = w.Write(header)
		for _, r := range rs {
			if r.Status != tables.StatusOK {
				t.Fatalf("trial %s failed: %s", r.ID, r.Error)
			}
			row := make([]string, len(tableColumns))
			for i, c := range tableColumns {
				row[i] = c.cell(r)
			}
			_ = w.Write(row)
		}
		w.Flush()
		if err := os.WriteFile(exampleTable, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("measured %d models in %s", len(rs), time.Since(start).Round(time.Second))
	}

	f, err := os.Open(exampleTable)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := lines[0]
	var want []string
	for _, c := range tableColumns {
		want = append(want, c.name)
	}
	if diff := cmp.Diff(want, header); diff != "" {
		t.Fatalf("header (-want +got):\n%s", diff)
	}
	if got, want := len(lines)-1, len(exampleCandidates()); got != want {
		t.Fatalf("%d rows, want %d", got, want)
	}
	rowOf := map[string][]string{}
	for _, l := range lines[1:] {
		rowOf[l[0]+"/"+l[1]+"/"+l[2]] = l
	}
	// The baseline, a model near the example's answer and one of depth 2.
	cands := []tables.Candidate{
		exampleCandidate(tables.FamilyLinear, 0, 0),
		exampleCandidate(tables.FamilyMLP, 1, 37),
		exampleCandidate(tables.FamilyMLP, 2, 20),
	}
	for _, r := range measure(t, cands) {
		stored := rowOf[fmt.Sprintf("%s/%d/%d", r.Family, r.Depth, r.Width)]
		if stored == nil {
			t.Errorf("%s: not in the table", r.ID)
			continue
		}
		for i, c := range tableColumns {
			for _, name := range reproducible {
				if c.name == name && c.cell(r) != stored[i] {
					t.Errorf("%s: %s retrained is %s, the table says %s", r.ID, name, c.cell(r), stored[i])
				}
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }
