package optimization_test

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/optimization"
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
	out, err := dataset.GenerateBatches(memory.DefaultAllocator, o, 0.25, 0, batchRows)
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

// ladder is a candidates table for 2 features and 2 classes, as
// model_choice emits it.
func ladder(t *testing.T, widths ...int32) []arrow.RecordBatch {
	t.Helper()
	var cs []tables.Candidate
	for _, w := range widths {
		depth, family := int32(1), tables.FamilyMLP
		if w == 0 {
			depth, family = 0, tables.FamilyLinear
		}
		p, f := mlp.Count(mlp.LayerSizes(2, int64(depth), int64(w), 2))
		cs = append(cs, tables.Candidate{
			ID: fmt.Sprintf("%s-d%d-w%d", family, depth, w), Family: family, Depth: depth, Width: w,
			Params: p, FLOPs: f, LearningRate: 1e-3, BatchSize: 32, Epochs: 2, Preprocess: "none", Quantize: "none",
		})
	}
	b := tables.BuildCandidates(memory.DefaultAllocator, cs)
	t.Cleanup(b.Release)
	return []arrow.RecordBatch{b}
}

// TestConformance runs the SDK's conformance suite on the optimization
// stage, with one- and two-epoch short runs so that it stays quick.
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("optimization"))
	optimization.Register(set)
	inputs := map[string][]arrow.RecordBatch{
		optimization.InputPort:   ladder(t, 0, 4, 16),
		optimization.DatasetPort: spirals(t, 240, 50),
	}
	sdktest.TestStage(t, set, optimization.Kind,
		sdktest.Case{Name: "halving and expansion", Inputs: inputs, Config: `
learning_rate  = [0.01, 0.003]
preprocess     = ["standardize", "minmax"]
quantize       = ["none", "int8"]
prune          = [0, 0.5]
halving_epochs = 1
eta            = 2
parallelism    = 2
`},
		sdktest.Case{Name: "one option each", Inputs: inputs, Config: optimization.Config{
			LearningRate: []float64{0.01}, HalvingEpochs: ptr(1),
		}},
		sdktest.Case{Name: "empty lists", Config: `
learning_rate = []
quantize      = ["int4"]
`, WantErrorPaths: []string{"learning_rate", "quantize.0"}},
		sdktest.Case{Name: "eta below 2", Config: `eta = 1`, WantErrorPaths: []string{"eta"}},
	)
}

func ptr[T any](v T) *T { return &v }
