package tables

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// columns finds a schema's fields in a batch, by name, checking types and
// nullability; errs collects every problem.
type columns struct {
	cols []arrow.Array
	errs []error
}

// optional names columns a batch may lack; their cells then read as null.
func newColumns(rec arrow.RecordBatch, schema *arrow.Schema, optional ...string) *columns {
	c := &columns{cols: make([]arrow.Array, schema.NumFields())}
	for i, f := range schema.Fields() {
		idx := rec.Schema().FieldIndices(f.Name)
		switch {
		case len(idx) == 0 && slices.Contains(optional, f.Name):
		case len(idx) == 0:
			c.errs = append(c.errs, fmt.Errorf("column %s is missing", f.Name))
		case !arrow.TypeEqual(rec.Column(idx[0]).DataType(), f.Type):
			c.errs = append(c.errs, fmt.Errorf("column %s is %s, want %s", f.Name, rec.Column(idx[0]).DataType(), f.Type))
		case !f.Nullable && rec.Column(idx[0]).NullN() > 0:
			c.errs = append(c.errs, fmt.Errorf("column %s has nulls", f.Name))
		default:
			c.cols[i] = rec.Column(idx[0])
		}
	}
	return c
}

func nan() float64 { return math.NaN() }

func (c *columns) err() error { return errors.Join(c.errs...) }

// str reads a copy of a string cell: a string column's Value is a view
// into the batch's buffer, which the reader may free or unmap once the
// batch is released, and rows outlive their batch.
func (c *columns) str(i, r int) string {
	if c.cols[i] == nil {
		return ""
	}
	a := c.cols[i].(*array.String)
	if a.IsNull(r) {
		return ""
	}
	return strings.Clone(a.Value(r))
}

func (c *columns) i32(i, r int) int32 { return c.cols[i].(*array.Int32).Value(r) }

// i32Or reads a nullable int32 cell of a column the batch may lack; a
// null or a missing column is def.
func (c *columns) i32Or(i, r int, def int32) int32 {
	if c.cols[i] == nil {
		return def
	}
	a := c.cols[i].(*array.Int32)
	if a.IsNull(r) {
		return def
	}
	return a.Value(r)
}

// boolOr reads a nullable bool cell of a column the batch may lack; a
// null or a missing column is def.
func (c *columns) boolOr(i, r int, def bool) bool {
	if c.cols[i] == nil {
		return def
	}
	a := c.cols[i].(*array.Boolean)
	if a.IsNull(r) {
		return def
	}
	return a.Value(r)
}

// appendI32 appends v, or a null for a negative value.
func appendI32(b array.Builder, v int32) {
	if v < 0 {
		b.AppendNull()
		return
	}
	b.(*array.Int32Builder).Append(v)
}

// i64 reads an int64 cell; a null (or a missing optional column) is -1.
func (c *columns) i64(i, r int) int64 {
	if c.cols[i] == nil {
		return -1
	}
	a := c.cols[i].(*array.Int64)
	if a.IsNull(r) {
		return -1
	}
	return a.Value(r)
}

// i64Set reads an int64 cell; ok is false for a null or a missing
// optional column.
func (c *columns) i64Set(i, r int) (v int64, ok bool) {
	if c.cols[i] == nil || c.cols[i].IsNull(r) {
		return 0, false
	}
	return c.cols[i].(*array.Int64).Value(r), true
}

// f64 reads a float64 cell; a null is NaN.
func (c *columns) f64(i, r int) float64 {
	if c.cols[i] == nil {
		return math.NaN()
	}
	a := c.cols[i].(*array.Float64)
	if a.IsNull(r) {
		return math.NaN()
	}
	return a.Value(r)
}

// appendF64 appends v, or a null for NaN.
func appendF64(b array.Builder, v float64) {
	if math.IsNaN(v) {
		b.AppendNull()
		return
	}
	b.(*array.Float64Builder).Append(v)
}

// appendI64 appends v, or a null for a negative value.
func appendI64(b array.Builder, v int64) {
	if v < 0 {
		b.AppendNull()
		return
	}
	b.(*array.Int64Builder).Append(v)
}

// appendStr appends v, or a null for "".
func appendStr(b array.Builder, v string) {
	if v == "" {
		b.AppendNull()
		return
	}
	b.(*array.StringBuilder).Append(v)
}
