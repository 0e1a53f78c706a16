package modelchoice

import (
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Build returns the candidates as one batch of the candidates schema. The
// caller releases it.
func Build(mem memory.Allocator, cs []Candidate) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, Schema)
	defer b.Release()
	for _, c := range cs {
		b.Field(0).(*array.StringBuilder).Append(c.ID)
		b.Field(1).(*array.Int32Builder).Append(c.Round)
		b.Field(2).(*array.StringBuilder).Append(c.Family)
		b.Field(3).(*array.Int32Builder).Append(c.Depth)
		b.Field(4).(*array.Int32Builder).Append(c.Width)
		b.Field(5).(*array.Int64Builder).Append(c.Params)
		b.Field(6).(*array.Int64Builder).Append(c.FLOPs)
		b.Field(7).(*array.Float64Builder).Append(c.LearningRate)
		b.Field(8).(*array.Int32Builder).Append(c.BatchSize)
		b.Field(9).(*array.Int32Builder).Append(c.Epochs)
		b.Field(10).(*array.StringBuilder).Append(c.Preprocess)
		b.Field(11).(*array.StringBuilder).Append(c.Quantize)
		b.Field(12).(*array.Float64Builder).Append(c.PruneFraction)
	}
	return b.NewRecordBatch()
}

// Read decodes a batch holding the candidates columns (other columns are
// ignored), for the stages downstream.
func Read(rec arrow.RecordBatch) ([]Candidate, error) {
	var errs []error
	col := func(name string, want arrow.DataType) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			errs = append(errs, fmt.Errorf("column %s is missing", name))
			return nil
		}
		c := rec.Column(idx[0])
		if !arrow.TypeEqual(c.DataType(), want) {
			errs = append(errs, fmt.Errorf("column %s is %s, want %s", name, c.DataType(), want))
			return nil
		}
		if c.NullN() > 0 {
			errs = append(errs, fmt.Errorf("column %s has nulls", name))
			return nil
		}
		return c
	}
	fields := make([]arrow.Array, len(Schema.Fields()))
	for i, f := range Schema.Fields() {
		fields[i] = col(f.Name, f.Type)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// A string column's Value is a view into the batch's buffer, which the
	// reader may free or unmap once the batch is released; candidates
	// outlive their batch (in decisions, span attributes, proposals), so
	// their strings are copies.
	str := func(i int) interface{ Value(int) string } { return clonedStrings{fields[i].(*array.String)} }
	i32 := func(i int) *array.Int32 { return fields[i].(*array.Int32) }
	i64 := func(i int) *array.Int64 { return fields[i].(*array.Int64) }
	f64 := func(i int) *array.Float64 { return fields[i].(*array.Float64) }
	out := make([]Candidate, rec.NumRows())
	for r := range out {
		out[r] = Candidate{
			ID: str(0).Value(r), Round: i32(1).Value(r), Family: str(2).Value(r),
			Depth: i32(3).Value(r), Width: i32(4).Value(r),
			Params: i64(5).Value(r), FLOPs: i64(6).Value(r),
			LearningRate: f64(7).Value(r), BatchSize: i32(8).Value(r), Epochs: i32(9).Value(r),
			Preprocess: str(10).Value(r), Quantize: str(11).Value(r), PruneFraction: f64(12).Value(r),
		}
	}
	return out, nil
}

// clonedStrings reads copies of a string column's values.
type clonedStrings struct{ a *array.String }

func (c clonedStrings) Value(i int) string { return strings.Clone(c.a.Value(i)) }
