package evaluation_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// spirals returns a small two-spirals dataset as the dataset stage emits
// it, in batches of at most batchRows rows.
func spirals(t *testing.T, rows, batchRows int) []arrow.RecordBatch {
	t.Helper()
	o := dataset.GenDefaults(dataset.GenSpirals)
	o.Rows, o.Seed = rows, 1
	out, err := dataset.GenerateBatches(memory.DefaultAllocator, o, 0.25, 0.1, batchRows)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, b := range out {
			b.Release()
		}
	})
	return out
}

// candidate is a model for 2 features and 2 classes, counted as
// model_choice counts.
func candidate(width int32, quantize string) tables.Candidate {
	depth, family := int32(1), tables.FamilyMLP
	if width == 0 {
		depth, family = 0, tables.FamilyLinear
	}
	p, f := mlp.Count(mlp.LayerSizes(2, int64(depth), int64(width), 2))
	return tables.Candidate{
		ID: fmt.Sprintf("%s-d%d-w%d-%s", family, depth, width, quantize), Family: family, Depth: depth, Width: width,
		Params: p, FLOPs: f, LearningRate: 1e-2, BatchSize: 32, Epochs: 3, Preprocess: "standardize", Quantize: quantize,
	}
}

func table(t *testing.T, b arrow.RecordBatch) []arrow.RecordBatch {
	t.Cleanup(b.Release)
	return []arrow.RecordBatch{b}
}

// TestConformance runs the SDK's conformance suite on the evaluation
// stage: real training, kept to a few epochs of small models.
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("evaluation"))
	evaluation.Register(set)
	ds := spirals(t, 240, 64)
	cands := table(t, tables.BuildCandidates(memory.DefaultAllocator, []tables.Candidate{
		candidate(0, "none"), candidate(8, "none"), candidate(8, "int8"),
	}))
	// A resumed run: the linear model's trial had finished.
	nan := math.NaN()
	done := tables.Result{
		Candidate: candidate(0, "none"), Accuracy: 0.5, Loss: 0.69, LatencyP50Ms: 0.01, LatencyP95Ms: 0.02, ThroughputPerS: 1e5,
		ModelBytes: 24, PeakBytes: 100, TrainSeconds: 0.1, EpochsRun: 3, Status: tables.StatusOK,
		RMSE: nan, R2: nan, AccuracyBefore: nan, LossBefore: nan, RMSEBefore: nan, NonZeroParams: 6, ValLoss: 0.7, BestEpoch: 3, StoppedBy: "epochs",
	}
	resumed := table(t, tables.BuildResults(memory.DefaultAllocator, []tables.Result{done}))

	small := `
epochs           = 2
latency_samples  = 5
throughput_batch = 16
`
	sdktest.TestStage(t, set, evaluation.Kind,
		sdktest.Case{Name: "trains every candidate", Config: small + "parallelism = 2\n",
			Inputs: map[string][]arrow.RecordBatch{evaluation.InputPort: cands, evaluation.DatasetPort: ds}},
		sdktest.Case{Name: "resumed", Config: small,
			Inputs: map[string][]arrow.RecordBatch{evaluation.InputPort: cands, evaluation.DatasetPort: ds, evaluation.ResumePort: resumed}},
		sdktest.Case{Name: "candidates on the dataset port", Config: small, WantRunError: true,
			Inputs: map[string][]arrow.RecordBatch{evaluation.InputPort: cands, evaluation.DatasetPort: cands}},
		sdktest.Case{Name: "out of range", Config: `
epochs           = 0
parallelism      = 0
max_train_time   = "-1s"
holdout_fraction = 1
`, WantErrorPaths: []string{"epochs", "parallelism", "max_train_time", "holdout_fraction"}},
	)
}
