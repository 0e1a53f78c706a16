package replay_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/replay"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// TestConformance runs the SDK's conformance suite on the replay stage,
// looking candidates up in the example's table of measured results.
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("replay"))
	replay.Register(set)
	table, err := filepath.Abs("../../examples/replay/results.csv")
	if err != nil {
		t.Fatal(err)
	}
	var cs []tables.Candidate
	for _, w := range []int32{0, 4, 16, 64} {
		depth, family := int32(1), tables.FamilyMLP
		if w == 0 {
			depth, family = 0, tables.FamilyLinear
		}
		p, f := mlp.Count(mlp.LayerSizes(2, int64(depth), int64(w), 2))
		cs = append(cs, tables.Candidate{ID: fmt.Sprintf("%s-d%d-w%d", family, depth, w), Family: family, Depth: depth, Width: w,
			Params: p, FLOPs: f, LearningRate: 0.01, BatchSize: 32, Epochs: 60, Preprocess: "none", Quantize: "none"})
	}
	cands := tables.BuildCandidates(memory.DefaultAllocator, cs)
	defer cands.Release()
	missing := tables.BuildCandidates(memory.DefaultAllocator, []tables.Candidate{{ID: "mlp-d1-w999", Family: "mlp", Depth: 1, Width: 999}})
	defer missing.Release()
	in := func(b arrow.RecordBatch) map[string][]arrow.RecordBatch {
		return map[string][]arrow.RecordBatch{replay.InputPort: {b}}
	}
	sdktest.TestStage(t, set, replay.Kind,
		sdktest.Case{Name: "exact lookups", Config: fmt.Sprintf("path = %q\n", table), Inputs: in(cands)},
		sdktest.Case{Name: "interpolated", Config: fmt.Sprintf("path = %q\ninterpolate = \"log_width\"\n", table), Inputs: in(cands)},
		sdktest.Case{Name: "a size the table lacks", Config: fmt.Sprintf("path = %q\n", table), Inputs: in(missing), WantRunError: true},
		sdktest.Case{Name: "bad interpolation", Config: fmt.Sprintf("path = %q\ninterpolate = \"cubic\"\n", table), WantErrorPaths: []string{"interpolate"}},
	)
}
