package exec_test

import (
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/exec"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// TestConformance runs the SDK's conformance suite on the exec stage, with
// shell commands as trainers: one that reports metrics, one that sleeps
// (cancellation must kill it), one that fails (a failed trial, not a
// failed stage).
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("exec"))
	exec.Register(set)
	var cs []tables.Candidate
	for _, w := range []int32{4, 8} {
		p, f := mlp.Count(mlp.LayerSizes(2, 1, int64(w), 2))
		cs = append(cs, tables.Candidate{ID: fmt.Sprintf("mlp-d1-w%d", w), Family: "mlp", Depth: 1, Width: w,
			Params: p, FLOPs: f, LearningRate: 0.01, BatchSize: 32, Epochs: 3, Preprocess: "none", Quantize: "none"})
	}
	cands := tables.BuildCandidates(memory.DefaultAllocator, cs)
	defer cands.Release()
	in := map[string][]arrow.RecordBatch{exec.InputPort: {cands}}
	sdktest.TestStage(t, set, exec.Kind,
		sdktest.Case{Name: "reports metrics", Inputs: in, Config: `
command = ["sh", "-c", "echo '{\"epoch\": 1, \"loss\": 0.9}'; echo \"{\\\"accuracy\\\": 0.$SWEETSPOT_WIDTH, \\\"loss\\\": 0.5}\""]
`},
		sdktest.Case{Name: "slow trainer", Inputs: in, Config: `
command     = ["sh", "-c", "sleep 2; echo '{\"accuracy\": 1}'"]
parallelism = 2
`},
		sdktest.Case{Name: "failing trainer", Inputs: in, Config: `
command = ["sh", "-c", "echo boom >&2; exit 3"]
`},
		sdktest.Case{Name: "bad config", Config: `
command        = []
dataset_format = "cvs"
`, WantErrorPaths: []string{"command", "dataset_format"}},
	)
}
