package requirements_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/requirements"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
)

// generated returns a dataset as the dataset stage emits it, in batches of
// at most batchRows rows.
func generated(t *testing.T, o dataset.GenOptions, batchRows int) []arrow.RecordBatch {
	t.Helper()
	out, err := dataset.GenerateBatches(memory.DefaultAllocator, o, 0.2, 0.1, batchRows)
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

// TestConformance runs the SDK's conformance suite on the requirements
// stage, with and without a dataset to profile.
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("requirements"))
	requirements.Register(set)
	spirals := generated(t, dataset.GenOptions{Kind: dataset.GenSpirals, Rows: 300, Noise: 0.05, Classes: 2, Features: 2, Seed: 1}, 64)
	regression := generated(t, dataset.GenOptions{Kind: dataset.GenRegression, Rows: 100, Noise: 0.1, Features: 3, Seed: 1}, 0)
	sdktest.TestStage(t, set, requirements.Kind,
		sdktest.Case{Name: "targets and budget, no dataset", Config: `
min_accuracy   = 0.95
max_latency_ms = 0.5
max_params     = 200000
max_train_time = "90s"
budget {
  max_trials = 40
  max_wall   = "15m"
}
`},
		sdktest.Case{Name: "classification dataset", Config: `min_accuracy = 0.9`,
			Inputs: map[string][]arrow.RecordBatch{requirements.InputPort: spirals}},
		sdktest.Case{Name: "regression dataset", Config: `max_loss = 0.05`,
			Inputs: map[string][]arrow.RecordBatch{requirements.InputPort: regression}},
		sdktest.Case{Name: "accuracy metric on regression data", Config: `metric = "accuracy"`,
			Inputs:       map[string][]arrow.RecordBatch{requirements.InputPort: regression},
			WantRunError: true},
		sdktest.Case{Name: "out of range", Config: `
min_accuracy = 95
max_params   = 0
budget {
  max_trials = 0
  max_wall   = "-1s"
}
`, WantErrorPaths: []string{"min_accuracy", "max_params", "budget.max_trials", "budget.max_wall"}},
		sdktest.Case{Name: "unknown metric", Config: `metric = "acuracy"`, WantErrorPaths: []string{"metric"}},
	)
}
