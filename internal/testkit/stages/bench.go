package stages

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// The kinds here cost next to nothing themselves, so that what the load and
// boundary benchmarks measure is the host, the protocol and the run store.

// TrialSchema is what trivial_eval writes: one row per trial.
var TrialSchema = arrow.NewSchema([]arrow.Field{
	{Name: "trial", Type: arrow.PrimitiveTypes.Int64},
	{Name: "score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "status", Type: arrow.BinaryTypes.String},
}, nil)

// FloatsConfig sizes what floats emits.
type FloatsConfig struct {
	Rows      int64 `hcl:"rows" doc:"Rows to emit."`
	Columns   int64 `hcl:"columns,optional" doc:"float32 columns (default 16)."`
	BatchRows int64 `hcl:"batch_rows,optional" doc:"Rows per batch (default 65536)."`
}

func registerBenchStages(set *sdk.Set) {
	sdk.Register(set, "trivial_eval", sdk.StageInfo{
		Description: "An evaluation that costs nothing: one result row per input row, each trial written as its own batch, resumable like the evaluation stage.",
		Inputs: []sdk.Port{
			{Name: "input", Description: "Any table; each row is one trial."},
			{Name: "resume", Optional: true, Description: "Results journalled by an interrupted run."},
		},
		Outputs: []sdk.Port{{Name: "results", Schema: TrialSchema}},
		Resume:  &sdk.Resume{Output: "results", Input: "resume"},
	}, func(NoConfig) (sdk.Stage, error) { return trivialEval{}, nil })
	sdk.Register(set, "floats", sdk.StageInfo{
		Description: "Emits rows of float32 columns c0, c1, ... without computing anything: every batch shares one buffer.",
		Outputs:     []sdk.Port{{Name: "table"}},
	}, func(c FloatsConfig) (sdk.Stage, error) {
		if c.Rows < 0 {
			return nil, sdk.AttrError("rows", "Invalid row count", "rows must be 0 or more.")
		}
		if c.Columns < 0 || c.Columns > 4096 {
			return nil, sdk.AttrError("columns", "Invalid column count", "columns must be between 1 and 4096 (unset: 16).")
		}
		if c.BatchRows < 0 {
			return nil, sdk.AttrError("batch_rows", "Invalid batch size", "batch_rows must be 1 or more.")
		}
		if c.Columns == 0 {
			c.Columns = 16
		}
		if c.BatchRows == 0 {
			c.BatchRows = 1 << 16
		}
		return floats{c}, nil
	})
	sdk.Register(set, "discard", sdk.StageInfo{
		Description: "Reads its input to the end and writes nothing.",
		Inputs:      []sdk.Port{{Name: "input"}},
	}, func(NoConfig) (sdk.Stage, error) { return discard{}, nil })
	sdk.Register(set, "scan", sdk.StageInfo{
		Description: "Reads every byte of its input's buffers and writes nothing.",
		Inputs:      []sdk.Port{{Name: "input"}},
	}, func(NoConfig) (sdk.Stage, error) { return scan{}, nil })
}

type trivialEval struct{}

func (trivialEval) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("results")
	if err != nil {
		return err
	}
	mem := sdk.Allocator(ctx)
	done := map[int64]bool{}
	if r, err := in.Reader("resume"); err == nil {
		for r.Next() {
			b := r.RecordBatch()
			ids := b.Column(0).(*array.Int64)
			for k := 0; k < ids.Len(); k++ {
				done[ids.Value(k)] = true
			}
			if err := w.Write(b); err != nil {
				return err
			}
		}
		if err := r.Err(); err != nil {
			return err
		}
	}
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	var trial int64
	for r.Next() {
		for k := int64(0); k < r.RecordBatch().NumRows(); k++ {
			if !done[trial] {
				if err := writeTrial(mem, w, trial); err != nil {
					return err
				}
			}
			trial++
		}
	}
	return r.Err()
}

// writeTrial writes one trial's row as a batch of its own, as the
// evaluation stage does, so the host journals every trial.
func writeTrial(mem memory.Allocator, w sdk.BatchWriter, trial int64) error {
	b := array.NewRecordBuilder(mem, TrialSchema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).Append(trial)
	b.Field(1).(*array.Float64Builder).Append(1 / float64(trial+1))
	b.Field(2).(*array.StringBuilder).Append("ok")
	rec := b.NewRecordBatch()
	defer rec.Release()
	return w.Write(rec)
}

type floats struct{ cfg FloatsConfig }

// FloatsBatch is a batch of n rows of c float32 columns c0, c1, ...
func FloatsBatch(mem memory.Allocator, c, n int64) arrow.RecordBatch {
	fields := make([]arrow.Field, c)
	for i := range fields {
		fields[i] = arrow.Field{Name: fmt.Sprintf("c%d", i), Type: arrow.PrimitiveTypes.Float32}
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
	defer b.Release()
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = float32(i)
	}
	for i := range fields {
		b.Field(i).(*array.Float32Builder).AppendValues(vals, nil)
	}
	return b.NewRecordBatch()
}

func (f floats) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("table")
	if err != nil {
		return err
	}
	if f.cfg.Rows == 0 {
		return nil
	}
	full := FloatsBatch(sdk.Allocator(ctx), f.cfg.Columns, min(f.cfg.BatchRows, f.cfg.Rows))
	defer full.Release()
	for off := int64(0); off < f.cfg.Rows; off += f.cfg.BatchRows {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := full
		if n := f.cfg.Rows - off; n < full.NumRows() {
			rec = full.NewSlice(0, n)
			defer rec.Release()
		}
		if err := w.Write(rec); err != nil {
			return err
		}
	}
	return nil
}

// scan reads what it is given, which discard does not: a batch read from
// a mapped file costs nothing until its bytes are touched.
type scan struct{}

// ScanSum keeps the compiler from dropping scan's reads.
var ScanSum atomic.Uint64

func (scan) Run(ctx context.Context, in sdk.Inputs, _ sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	var sum uint64
	for r.Next() {
		for _, col := range r.RecordBatch().Columns() {
			for _, buf := range col.Data().Buffers() {
				if buf != nil {
					sum ^= xorWords(buf.Bytes())
				}
			}
		}
	}
	ScanSum.Add(sum)
	return r.Err()
}

func xorWords(b []byte) uint64 {
	var x0, x1, x2, x3 uint64
	for len(b) >= 32 {
		x0 ^= binary.LittleEndian.Uint64(b)
		x1 ^= binary.LittleEndian.Uint64(b[8:])
		x2 ^= binary.LittleEndian.Uint64(b[16:])
		x3 ^= binary.LittleEndian.Uint64(b[24:])
		b = b[32:]
	}
	for _, c := range b {
		x0 ^= uint64(c)
	}
	return x0 ^ x1 ^ x2 ^ x3
}

type discard struct{}

func (discard) Run(ctx context.Context, in sdk.Inputs, _ sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	for r.Next() {
	}
	return r.Err()
}
