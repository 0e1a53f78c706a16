package resize_test

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/resize"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// fromJSON is a table of schema given as JSON rows; the columns left out
// are null.
func fromJSON(t *testing.T, schema *arrow.Schema, rows []string) []arrow.RecordBatch {
	t.Helper()
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, schema, strings.NewReader("["+strings.Join(rows, ",")+"]"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return []arrow.RecordBatch{rec}
}

// results is a first round of evaluation results for 2 features and 2
// classes, the accuracy rising with width along a saturating curve.
func results(t *testing.T) []arrow.RecordBatch {
	t.Helper()
	var rows []string
	for _, w := range []int{0, 4, 8, 16, 32, 64} {
		depth, family := 1, tables.FamilyMLP
		if w == 0 {
			depth, family = 0, tables.FamilyLinear
		}
		p, f := mlp.Count(mlp.LayerSizes(2, int64(depth), int64(w), 2))
		acc := 0.97 - 1.2*math.Pow(float64(p), -0.5)
		rows = append(rows, fmt.Sprintf(`{"candidate_id": "%s-d%d-w%d", "round": 0, "family": %q, "depth": %d, "width": %d,
			"params": %d, "flops": %d, "learning_rate": 0.01, "batch_size": 32, "epochs": 10, "preprocess": "standardize",
			"quantize": "none", "prune_fraction": 0, "accuracy": %g, "loss": %g, "latency_p95_ms": %g, "model_bytes": %d,
			"train_seconds": %g, "status": "ok"}`,
			family, depth, w, family, depth, w, p, f, acc, 1-acc, 0.001*float64(p), 4*p, 0.01*float64(p)))
	}
	return fromJSON(t, resize.InputSchema, rows)
}

// TestConformance runs the SDK's conformance suite on the resize stage,
// with its targets from the stage block and from a requirements table.
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("resize"))
	resize.Register(set)
	res := results(t)
	req := fromJSON(t, tables.RequirementsSchema, []string{`{"task": "classification", "metric": "accuracy", "min_accuracy": 0.9,
		"max_trials": 30, "n_rows": 1000, "n_features": 2, "n_classes": 2, "cores": 2}`})
	sdktest.TestStage(t, set, resize.Kind,
		sdktest.Case{Name: "targets in the block", Config: `
min_accuracy = 0.9
bootstrap    = 20
`, Inputs: map[string][]arrow.RecordBatch{resize.InputPort: res}},
		sdktest.Case{Name: "requirements table", Config: resize.Config{Strategy: "knee", Bootstrap: ptr(20)},
			Inputs: map[string][]arrow.RecordBatch{resize.InputPort: res, resize.RequirementsPort: req}},
		sdktest.Case{Name: "pareto, growing", Config: `
strategy     = "pareto"
max_width    = 256
min_accuracy = 0.99
bootstrap    = 20
`, Inputs: map[string][]arrow.RecordBatch{resize.InputPort: res}},
		sdktest.Case{Name: "unknown strategy", Config: `strategy = "smallest"`, WantErrorPaths: []string{"strategy"}},
		sdktest.Case{Name: "price without max_utility", Config: `
price      = 0.01
confidence = 1
`, WantErrorPaths: []string{"price", "confidence"}},
	)
}

func ptr[T any](v T) *T { return &v }
