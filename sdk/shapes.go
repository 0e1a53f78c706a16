package sdk

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// The common shapes of a stage, with the batch loop written once: a stage
// that maps each batch of one input to a batch of one output, and a stage
// that writes a table of one row.

// BatchFunc maps one input batch to one output batch. The input batch is
// valid only during the call; the returned batch belongs to the caller of
// the BatchFunc, which releases it (so return a new batch, or the input
// after Retain). A nil batch writes nothing.
type BatchFunc func(ctx context.Context, b arrow.RecordBatch) (arrow.RecordBatch, error)

// MapBatches is a stage that reads the input port inPort batch by batch,
// maps each with f and writes the result to the output port outPort:
// the loop, the cancellation check between batches, the releases and the
// reader's error are its own. An *InputError that f returns is placed in
// the stream: its Port is filled in, and its Row, counted within the
// batch, becomes the row of the port's stream.
func MapBatches(inPort, outPort string, f BatchFunc) Stage {
	return mapStage{in: inPort, out: outPort, f: f}
}

type mapStage struct {
	in, out string
	f       BatchFunc
}

var _ Stage = mapStage{}

func (m mapStage) Run(ctx context.Context, in Inputs, out Outputs) error {
	r, err := in.Reader(m.in)
	if err != nil {
		return err
	}
	w, err := out.Writer(m.out)
	if err != nil {
		return err
	}
	var offset int64
	for r.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := r.RecordBatch()
		res, err := m.f(ctx, b)
		if err != nil {
			var ie *InputError
			if errors.As(err, &ie) {
				if ie.Port == "" {
					ie.Port = m.in
				}
				if ie.Row >= 0 {
					ie.Row += offset
				}
			}
			if res != nil {
				res.Release()
			}
			return err
		}
		offset += b.NumRows()
		if res == nil {
			continue
		}
		err = w.Write(res)
		res.Release()
		if err != nil {
			return fmt.Errorf("output port %q: %w", m.out, err)
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("input port %q: %w", m.in, err)
	}
	return nil
}

// WriteRow writes a table of one row to w: one value per field of schema,
// in order, each a Go value of the field's type (string for utf8; int32,
// int64, float64 or bool; nil, or a nil pointer, for a null). It builds
// the batch with the stage's allocator and releases it.
func WriteRow(ctx context.Context, w BatchWriter, schema *arrow.Schema, values ...any) error {
	if len(values) != schema.NumFields() {
		return fmt.Errorf("WriteRow: %d values for %d fields", len(values), schema.NumFields())
	}
	b := array.NewRecordBuilder(Allocator(ctx), schema)
	defer b.Release()
	for i, v := range values {
		if err := appendValue(b.Field(i), v); err != nil {
			return fmt.Errorf("WriteRow: field %s: %w", schema.Field(i).Name, err)
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	return w.Write(rec)
}

func appendValue(fb array.Builder, v any) error {
	if v == nil {
		fb.AppendNull()
		return nil
	}
	switch x := v.(type) {
	case *string:
		return appendPtr(fb, x)
	case *int32:
		return appendPtr(fb, x)
	case *int64:
		return appendPtr(fb, x)
	case *float64:
		return appendPtr(fb, x)
	case *bool:
		return appendPtr(fb, x)
	}
	switch b := fb.(type) {
	case *array.StringBuilder:
		if s, ok := v.(string); ok {
			b.Append(s)
			return nil
		}
	case *array.Int32Builder:
		if n, ok := v.(int32); ok {
			b.Append(n)
			return nil
		}
	case *array.Int64Builder:
		if n, ok := v.(int64); ok {
			b.Append(n)
			return nil
		}
	case *array.Float64Builder:
		if f, ok := v.(float64); ok {
			b.Append(f)
			return nil
		}
	case *array.BooleanBuilder:
		if t, ok := v.(bool); ok {
			b.Append(t)
			return nil
		}
	default:
		return fmt.Errorf("type %s is not supported", fb.Type())
	}
	return fmt.Errorf("a %T does not fit type %s", v, fb.Type())
}

func appendPtr[T any](fb array.Builder, p *T) error {
	if p == nil {
		fb.AppendNull()
		return nil
	}
	return appendValue(fb, *p)
}
