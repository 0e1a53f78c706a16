// Command testkit is a stage plugin for the host's own tests: small stages
// that do real Arrow work (numbers, double, a counting loop decider) and
// stages that misbehave on purpose (crash, block). Tests build it into a
// temporary directory as sweetspot-plugin-testkit.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

var numbersSchema = arrow.NewSchema([]arrow.Field{
	{Name: "i", Type: arrow.PrimitiveTypes.Int64},
	{Name: "x", Type: arrow.PrimitiveTypes.Float64},
}, nil)

var decisionSchema = arrow.NewSchema([]arrow.Field{
	{Name: "round", Type: arrow.PrimitiveTypes.Int32},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "chosen_candidate_id", Type: arrow.BinaryTypes.String},
}, nil)

func main() {
	set := sdk.NewSet(sdk.WithName("testkit"), sdk.WithVersion("1.2.3"))
	sdk.Register(set, "numbers", sdk.StageInfo{
		Description: "Emits rows i = from..from+rows-1 with x = i.",
		Outputs:     []sdk.Port{{Name: "data", Schema: numbersSchema}},
	}, func(c numbersConfig) (sdk.Stage, error) {
		if c.Rows < 0 {
			return nil, sdk.AttrError("rows", "Negative row count", fmt.Sprintf("rows must be at least 0, not %d.", c.Rows))
		}
		return c, nil
	})
	sdk.Register(set, "double", sdk.StageInfo{
		Description: "Doubles column x.",
		Inputs:      []sdk.Port{{Name: "input", Schema: numbersSchema}},
		Outputs:     []sdk.Port{{Name: "data", Schema: numbersSchema}},
	}, func(struct{}) (sdk.Stage, error) { return double{}, nil })
	sdk.Register(set, "counter", sdk.StageInfo{
		Description: "Loop decider: continues until it has seen target_rows rows; proposes `step` more.",
		Inputs:      []sdk.Port{{Name: "input", Schema: numbersSchema}},
		Outputs:     []sdk.Port{{Name: "decision", Schema: decisionSchema}, {Name: "proposals", Schema: numbersSchema}},
		Loop:        &sdk.Loop{DecisionPort: "decision", ProposalsPort: "proposals"},
	}, func(c counterConfig) (sdk.Stage, error) { return c, nil })
	sdk.Register(set, "crash", sdk.StageInfo{
		Description: "Emits one batch, then the process exits abruptly.",
		Outputs:     []sdk.Port{{Name: "data", Schema: numbersSchema}},
	}, func(struct{}) (sdk.Stage, error) { return crash{}, nil })
	sdk.Register(set, "block", sdk.StageInfo{
		Description: "Waits until cancelled.",
		Inputs:      []sdk.Port{{Name: "input", Optional: true}},
		Outputs:     []sdk.Port{{Name: "data", Schema: numbersSchema}},
	}, func(struct{}) (sdk.Stage, error) { return block{}, nil })
	if err := set.Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type numbersConfig struct {
	Rows int `hcl:"rows"`
	From int `hcl:"from,optional"`
}

func (c numbersConfig) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("data")
	if err != nil {
		return err
	}
	b := numbers(ctx, int64(c.From), int64(c.Rows))
	defer b.Release()
	return w.Write(b)
}

func numbers(ctx context.Context, from, n int64) arrow.RecordBatch {
	rb := array.NewRecordBuilder(sdk.Allocator(ctx), numbersSchema)
	defer rb.Release()
	for i := from; i < from+n; i++ {
		rb.Field(0).(*array.Int64Builder).Append(i)
		rb.Field(1).(*array.Float64Builder).Append(float64(i))
	}
	return rb.NewRecordBatch()
}

type double struct{}

func (double) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	w, err := out.Writer("data")
	if err != nil {
		return err
	}
	for r.Next() {
		b := r.RecordBatch()
		rb := array.NewRecordBuilder(sdk.Allocator(ctx), numbersSchema)
		is := b.Column(0).(*array.Int64)
		xs := b.Column(1).(*array.Float64)
		for k := 0; k < int(b.NumRows()); k++ {
			rb.Field(0).(*array.Int64Builder).Append(is.Value(k))
			rb.Field(1).(*array.Float64Builder).Append(2 * xs.Value(k))
		}
		nb := rb.NewRecordBatch()
		rb.Release()
		err := w.Write(nb)
		nb.Release()
		if err != nil {
			return err
		}
	}
	return r.Err()
}

type counterConfig struct {
	TargetRows int `hcl:"target_rows"`
	Step       int `hcl:"step"`
}

func (c counterConfig) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	var seen, maxI int64 = 0, -1
	for r.Next() {
		b := r.RecordBatch()
		seen += b.NumRows()
		is := b.Column(0).(*array.Int64)
		for k := 0; k < is.Len(); k++ {
			maxI = max(maxI, is.Value(k))
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	status, reason := "continue", fmt.Sprintf("seen %d of %d rows", seen, c.TargetRows)
	if seen >= int64(c.TargetRows) {
		status, reason = "converged", fmt.Sprintf("seen %d rows, target %d reached", seen, c.TargetRows)
	}
	dw, err := out.Writer("decision")
	if err != nil {
		return err
	}
	db := array.NewRecordBuilder(sdk.Allocator(ctx), decisionSchema)
	defer db.Release()
	db.Field(0).(*array.Int32Builder).Append(int32(sdk.Info(ctx).Round))
	db.Field(1).(*array.StringBuilder).Append(status)
	db.Field(2).(*array.StringBuilder).Append(reason)
	db.Field(3).(*array.StringBuilder).Append(fmt.Sprintf("rows-%d", seen))
	dec := db.NewRecordBatch()
	defer dec.Release()
	if err := dw.Write(dec); err != nil {
		return err
	}
	pw, err := out.Writer("proposals")
	if err != nil {
		return err
	}
	if status != "continue" {
		return nil
	}
	next := numbers(ctx, maxI+1, int64(c.Step))
	defer next.Release()
	return pw.Write(next)
}

type crash struct{}

func (crash) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("data")
	if err != nil {
		return err
	}
	b := numbers(ctx, 0, 10)
	defer b.Release()
	if err := w.Write(b); err != nil {
		return err
	}
	os.Exit(3)
	return nil
}

type block struct{}

func (block) Run(ctx context.Context, _ sdk.Inputs, _ sdk.Outputs) error {
	<-ctx.Done()
	return ctx.Err()
}
