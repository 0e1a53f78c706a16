package modelchoice_test

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/modelchoice"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// requirementsRow is a requirements table of one row given as JSON; the
// columns left out are null.
func requirementsRow(t *testing.T, js string) []arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, tables.RequirementsSchema, strings.NewReader("["+js+"]"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return []arrow.RecordBatch{rec}
}

// TestConformance runs the SDK's conformance suite on the model_choice
// stage.
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("model_choice"))
	modelchoice.Register(set)
	classification := requirementsRow(t, `{"task": "classification", "metric": "accuracy", "n_rows": 300, "n_features": 2, "n_classes": 2, "cores": 2, "max_params": 100000}`)
	regression := requirementsRow(t, `{"task": "regression", "metric": "rmse", "n_rows": 300, "n_features": 10, "n_classes": 0, "cores": 2}`)
	unprofiled := requirementsRow(t, `{"task": "classification", "metric": "accuracy", "cores": 2}`)
	in := func(b []arrow.RecordBatch) map[string][]arrow.RecordBatch {
		return map[string][]arrow.RecordBatch{modelchoice.InputPort: b}
	}
	sdktest.TestStage(t, set, modelchoice.Kind,
		sdktest.Case{Name: "mlp ladder", Inputs: in(classification), Config: `
family "mlp" {
  depth = [1, 2]
  width = { min = 4, max = 256 }
  steps = 5
}
`},
		sdktest.Case{Name: "axis family, no dataset needed", Inputs: in(unprofiled), Config: `
family "axis" {
  name   = "convnet"
  axis "s" {
    min     = 1
    max     = 16
    scale   = "log"
    integer = true
  }
  knobs  = { channels = 4 * s, layers = 1 + floor(log(s, 2)) }
  params = 9 * channels * channels * layers
}
`},
		sdktest.Case{Name: "defaults, regression", Inputs: in(regression)},
		sdktest.Case{Name: "linear", Inputs: in(classification), Config: modelchoice.Config{LinearOnly: true}},
		sdktest.Case{Name: "no dataset profile", Inputs: in(unprofiled), WantRunError: true},
		sdktest.Case{Name: "unknown family kind", Config: `family "mpl" {}`, WantErrorPaths: []string{"family.0"}},
		sdktest.Case{Name: "empty width range", Config: `width = { min = 64, max = 8 }`, WantErrorPaths: []string{"width"}},
	)
}
