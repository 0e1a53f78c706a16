package stages

import (
	"context"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

func registerCandidateStages(set *sdk.Set) {
	sdk.Register(set, "broken_candidates", sdk.StageInfo{
		Description: "Emits a candidates table whose one model cannot be built (a hidden layer of width 0), so its trial fails.",
		Outputs:     []sdk.Port{{Name: "candidates", Schema: tables.CandidatesSchema}},
	}, func(NoConfig) (sdk.Stage, error) { return brokenCandidates{}, nil })
}

type brokenCandidates struct{}

func (brokenCandidates) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("candidates")
	if err != nil {
		return err
	}
	b := tables.BuildCandidates(sdk.Allocator(ctx), []tables.Candidate{{
		ID: "mlp-d1-w0", Family: "mlp", Depth: 1, Width: 0, LearningRate: 0.01,
		BatchSize: 32, Epochs: 2, Preprocess: "standardize", Quantize: "none",
	}})
	defer b.Release()
	return w.Write(b)
}
