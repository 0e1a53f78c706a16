package dataset_test

import (
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
)

// TestConformance runs the SDK's conformance suite on the dataset stage:
// generated and file datasets, and configs it must reject with the
// attribute at fault.
func TestConformance(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("dataset"))
	dataset.Register(set)
	sdktest.TestStage(t, set, dataset.Kind,
		sdktest.Case{Name: "spirals", Config: `
generator           = "spirals"
rows                = 300
validation_fraction = 0.1
seed                = 3
`},
		sdktest.Case{Name: "regression", Config: `
generator = "regression"
rows      = 200
features  = 3
`},
		sdktest.Case{Name: "csv file", Config: `
path     = "iris.csv"
base_dir = "../../testdata/datasets/sklearn"
max_rows = 100
sample   = "random"
`},
		sdktest.Case{Name: "parquet file", Config: `
path     = "iris.parquet"
base_dir = "../../testdata/datasets/arrow"
`},
		sdktest.Case{Name: "no source", Config: nil, WantErrorPaths: []string{""}},
		sdktest.Case{Name: "unknown generator", Config: `generator = "spiral"`, WantErrorPaths: []string{"generator"}},
		sdktest.Case{Name: "generator ranges", Config: `
generator = "blobs"
rows      = 0
noise     = -1
`, WantErrorPaths: []string{"rows", "noise"}},
		sdktest.Case{Name: "missing file", Config: `
path     = "nope.csv"
base_dir = "../../testdata/datasets/sklearn"
`, WantErrorPaths: []string{"path"}},
	)
}
