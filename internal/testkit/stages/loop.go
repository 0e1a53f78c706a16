package stages

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// DecisionSchema is what counter writes on its decision port.
var DecisionSchema = arrow.NewSchema([]arrow.Field{
	{Name: "round", Type: arrow.PrimitiveTypes.Int32},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "chosen_candidate_id", Type: arrow.BinaryTypes.String},
}, nil)

// CounterConfig sets when counter's loop ends.
type CounterConfig struct {
	TargetRows int64 `hcl:"target_rows" doc:"Rows to have seen, over every round, before converging."`
	Step       int64 `hcl:"step" doc:"Rows proposed for the next round."`
}

func registerLoopStages(set *sdk.Set) {
	sdk.Register(set, "double", sdk.StageInfo{
		Description: "Doubles column x of its input.",
		Inputs:      []sdk.Port{{Name: "input", Schema: TableSchema}},
		Outputs:     []sdk.Port{{Name: "table", Schema: TableSchema}},
	}, func(NoConfig) (sdk.Stage, error) { return double{}, nil })
	sdk.Register(set, "counter", sdk.StageInfo{
		Description: "Loop decider: continues until it has seen target_rows rows, proposing step more each round.",
		Inputs:      []sdk.Port{{Name: "input", Schema: TableSchema}},
		Outputs:     []sdk.Port{{Name: "decision", Schema: DecisionSchema}, {Name: "proposals", Schema: TableSchema}},
		Loop:        &sdk.Loop{DecisionPort: "decision", ProposalsPort: "proposals"},
	}, func(c CounterConfig) (sdk.Stage, error) {
		if c.Step <= 0 {
			return nil, sdk.AttrError("step", "Invalid step", "step must be at least 1.")
		}
		return counter{c}, nil
	})
}

type double struct{}

func (double) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	w, err := out.Writer("table")
	if err != nil {
		return err
	}
	for r.Next() {
		b := r.RecordBatch()
		xs := b.Column(1).(*array.Float64)
		xb := array.NewFloat64Builder(sdk.Allocator(ctx))
		for k := 0; k < xs.Len(); k++ {
			xb.Append(2 * xs.Value(k))
		}
		x2 := xb.NewArray()
		xb.Release()
		nb := array.NewRecordBatch(TableSchema, []arrow.Array{b.Column(0), x2, b.Column(2)}, b.NumRows())
		x2.Release()
		err := w.Write(nb)
		nb.Release()
		if err != nil {
			return err
		}
	}
	return r.Err()
}

type counter struct{ cfg CounterConfig }

func (c counter) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	var seen, maxID int64 = 0, -1
	for r.Next() {
		ids := r.RecordBatch().Column(0).(*array.Int64)
		seen += int64(ids.Len())
		for k := 0; k < ids.Len(); k++ {
			maxID = max(maxID, ids.Value(k))
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	status, reason := "continue", fmt.Sprintf("seen %d of %d rows", seen, c.cfg.TargetRows)
	if seen >= c.cfg.TargetRows {
		status, reason = "converged", fmt.Sprintf("seen %d rows, target %d reached", seen, c.cfg.TargetRows)
	}
	mem := sdk.Allocator(ctx)
	db := array.NewRecordBuilder(mem, DecisionSchema)
	defer db.Release()
	db.Field(0).(*array.Int32Builder).Append(int32(sdk.Info(ctx).Round))
	db.Field(1).(*array.StringBuilder).Append(status)
	db.Field(2).(*array.StringBuilder).Append(reason)
	db.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("rows-%d", seen))
	dec := db.NewRecordBatch()
	defer dec.Release()
	dw, err := out.Writer("decision")
	if err != nil {
		return err
	}
	if err := dw.Write(dec); err != nil {
		return err
	}
	if status != "continue" {
		return nil
	}
	pw, err := out.Writer("proposals")
	if err != nil {
		return err
	}
	next := Batch(mem, maxID+1, c.cfg.Step)
	defer next.Release()
	return pw.Write(next)
}
