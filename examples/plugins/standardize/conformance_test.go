package main

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
)

// TestConformance runs the SDK's conformance suite on the standardize stage,
// as any third-party plugin should in its own CI.
func TestConformance(t *testing.T) {
	in := makeTable(200).batches(memory.DefaultAllocator, 64)
	t.Cleanup(func() {
		for _, b := range in {
			b.Release()
		}
	})
	inputs := map[string][]arrow.RecordBatch{inputPort: in}
	sdktest.TestStage(t, newSet(), kind,
		sdktest.Case{Name: "every feature", Inputs: inputs},
		sdktest.Case{Name: "chosen columns", Inputs: inputs, Config: `
columns = ["a", "c"]
epsilon = 0.001
`},
		sdktest.Case{Name: "empty input", Inputs: map[string][]arrow.RecordBatch{inputPort: nil}},
		sdktest.Case{Name: "unknown column", Inputs: inputs, Config: Config{Columns: []string{"a", "zz"}}, WantRunError: true},
		sdktest.Case{Name: "bad lists", Config: `
columns = ["a", "a"]
epsilon = -1
`, WantErrorPaths: []string{"columns.1", "epsilon"}},
	)
}
