// Package stages holds the stage kinds of the test plugin that the host's
// tests build and run as a real process: each one exercises one behaviour
// of the protocol or the runner (streaming, schema checks, crashes,
// cancellation, loops, and the faults of faults.go).
package stages

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// TableSchema is what emit writes: a numeric and a text column.
var TableSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "x", Type: arrow.PrimitiveTypes.Float64},
	{Name: "label", Type: arrow.BinaryTypes.String},
}, nil)

// Checked is the allocator the plugin process serves with; the memcheck
// stage fails if anything allocated by earlier runs is still held.
var Checked = memory.NewCheckedAllocator(memory.NewGoAllocator())

type EmitConfig struct {
	Rows      int64 `hcl:"rows" doc:"Rows to emit."`
	BatchRows int64 `hcl:"batch_rows,optional" doc:"Rows per batch (default 10000)."`
}

type NoConfig struct{}

// NewSet returns the test plugin's stages; name "" keeps the executable's.
func NewSet(name string) *sdk.Set {
	var opts []sdk.SetOption
	if name != "" {
		opts = append(opts, sdk.WithName(name))
	}
	set := sdk.NewSet(append(opts, sdk.WithVersion("0.0.1-test"))...)
	sdk.Register(set, "emit", sdk.StageInfo{
		Description: "Emits rows numbered from 0; with `after` connected, only once that input has ended.",
		Inputs:      []sdk.Port{{Name: "after", Optional: true, Description: "Any stage's output, to order this stage after it."}},
		Outputs:     []sdk.Port{{Name: "table", Schema: TableSchema}},
	}, func(c EmitConfig) (sdk.Stage, error) {
		if c.Rows < 0 {
			return nil, sdk.AttrError("rows", "Invalid row count", "rows must be 0 or more.")
		}
		if c.BatchRows <= 0 {
			c.BatchRows = 10000
		}
		return emit{c}, nil
	})
	sdk.Register(set, "passthrough", sdk.StageInfo{
		Description: "Copies its input to its output.",
		Inputs:      []sdk.Port{{Name: "input"}},
		Outputs:     []sdk.Port{{Name: "output"}},
	}, func(NoConfig) (sdk.Stage, error) { return passthrough{}, nil })
	sdk.Register(set, "badschema", sdk.StageInfo{
		Description: "Declares x as int64 but writes float64.",
		Outputs: []sdk.Port{{Name: "out", Schema: arrow.NewSchema([]arrow.Field{
			{Name: "x", Type: arrow.PrimitiveTypes.Int64},
		}, nil)}},
	}, func(NoConfig) (sdk.Stage, error) { return badschema{}, nil })
	sdk.Register(set, "crash", sdk.StageInfo{
		Description: "Exits the process with status 3 after its first batch.",
		Outputs:     []sdk.Port{{Name: "table", Schema: TableSchema}},
	}, func(NoConfig) (sdk.Stage, error) { return crash{}, nil })
	sdk.Register(set, "block", sdk.StageInfo{
		Description: "Waits until its context ends.",
	}, func(NoConfig) (sdk.Stage, error) { return block{}, nil })
	sdk.Register(set, "memcheck", sdk.StageInfo{
		Description: "Fails if the plugin's allocator still holds memory.",
	}, func(NoConfig) (sdk.Stage, error) { return memcheck{}, nil })
	registerLoopStages(set)
	registerEnvStages(set)
	registerCandidateStages(set)
	registerBenchStages(set)
	registerFaultStages(set)
	return set
}

// Batch builds rows [from, from+n) of TableSchema.
func Batch(mem memory.Allocator, from, n int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, TableSchema)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	xs := b.Field(1).(*array.Float64Builder)
	ls := b.Field(2).(*array.StringBuilder)
	ids.Reserve(int(n))
	xs.Reserve(int(n))
	ls.Reserve(int(n))
	for i := from; i < from+n; i++ {
		ids.UnsafeAppend(i)
		xs.UnsafeAppend(float64(i) * 0.5)
		ls.Append(fmt.Sprintf("label-%d", i))
	}
	return b.NewRecordBatch()
}

type emit struct{ cfg EmitConfig }

func (e emit) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	if r, err := in.Reader("after"); err == nil {
		for r.Next() {
		}
	}
	w, err := out.Writer("table")
	if err != nil {
		return err
	}
	mem := sdk.Allocator(ctx)
	for off := int64(0); off < e.cfg.Rows; off += e.cfg.BatchRows {
		rec := Batch(mem, off, min(e.cfg.BatchRows, e.cfg.Rows-off))
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

type passthrough struct{}

func (passthrough) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	w, err := out.Writer("output")
	if err != nil {
		return err
	}
	for r.Next() {
		if err := w.Write(r.RecordBatch()); err != nil {
			return err
		}
	}
	return r.Err()
}

type badschema struct{}

func (badschema) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("out")
	if err != nil {
		return err
	}
	b := array.NewRecordBuilder(sdk.Allocator(ctx), arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64}}, nil))
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1.5, 2.5}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	return w.Write(rec)
}

type crash struct{}

func (crash) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("table")
	if err != nil {
		return err
	}
	rec := Batch(sdk.Allocator(ctx), 0, 100)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return err
	}
	sdk.Logger(ctx).Info("about to crash")
	// Give the batch a moment on the wire, then die as a buggy plugin would.
	time.Sleep(50 * time.Millisecond)
	// Straight to file descriptor 2, as the Go runtime writes a panic.
	fmt.Fprintln(os.NewFile(2, "stderr"), "testkit: crashing on purpose")
	os.Exit(3)
	return nil
}

type block struct{}

func (block) Run(ctx context.Context, _ sdk.Inputs, _ sdk.Outputs) error {
	<-ctx.Done()
	return ctx.Err()
}

type memcheck struct{}

func (memcheck) Run(context.Context, sdk.Inputs, sdk.Outputs) error {
	if n := Checked.CurrentAlloc(); n != 0 {
		return fmt.Errorf("plugin allocator still holds %d bytes", n)
	}
	return nil
}
