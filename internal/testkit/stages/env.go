package stages

import (
	"context"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// EnvSchema is what getenv writes: one row per variable asked for.
var EnvSchema = arrow.NewSchema([]arrow.Field{
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "value", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

type GetenvConfig struct {
	Names []string `hcl:"names" doc:"Variables to look up in the plugin's environment."`
}

func registerEnvStages(set *sdk.Set) {
	sdk.Register(set, "getenv", sdk.StageInfo{
		Description: "Reports the plugin process's value of each named variable (null when unset), so tests can see what the host passed.",
		Outputs:     []sdk.Port{{Name: "env", Schema: EnvSchema}},
	}, func(c GetenvConfig) (sdk.Stage, error) { return getenv{c}, nil })
}

type getenv struct{ cfg GetenvConfig }

func (g getenv) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("env")
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(sdk.Allocator(ctx), EnvSchema)
	defer b.Release()
	names := b.Field(0).(*array.StringBuilder)
	values := b.Field(1).(*array.StringBuilder)
	for _, n := range g.cfg.Names {
		names.Append(n)
		if v, ok := os.LookupEnv(n); ok {
			values.Append(v)
		} else {
			values.AppendNull()
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return w.Write(rec)
}
