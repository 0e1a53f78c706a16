package dataset

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Task is what the target column asks a model to do.
type Task string

const (
	Classification Task = "classification"
	Regression     Task = "regression"
)

// Schema metadata keys on the "data" port. Other stages read the target and
// task from here rather than from the dataset's config.
// They are the dataset table's contract, declared in sdk/tables.
const (
	MetaTarget     = tables.MetaTarget
	MetaTask       = tables.MetaTask
	MetaClasses    = tables.MetaClasses
	MetaClassNames = tables.MetaClassNames
	MetaSource     = tables.MetaSource
	MetaFormat     = tables.MetaFormat
	MetaSample     = tables.MetaSample
)

// SplitColumn is the utf8 column saying which part each row belongs to.
const SplitColumn = tables.ColSplit

// MaxBatchRows bounds the rows of one emitted batch, so that a batch of a
// few hundred features stays well under the gRPC message limit.
const MaxBatchRows = 64 * 1024

// Table is a dataset held in memory, column by column, before it becomes
// Arrow batches.
type Table struct {
	// Source is the file path, or "generator:NAME".
	Source string
	// Format is the format the file was read as, or "" for generated data.
	Format Format
	// Sample describes the rows max_rows kept, or is "" when every row of
	// the file was kept.
	Sample       string
	FeatureNames []string
	// Features[j][i] is feature j of row i.
	Features   [][]float64
	TargetName string
	Task       Task
	// Labels holds the class index of each row (classification).
	Labels []int64
	// Values holds the target of each row (regression).
	Values []float64
	// Classes is the number of classes (classification), else 0.
	Classes int
	// ClassNames are the original labels of classes 0..Classes-1, when the
	// file named them or they were not already 0..Classes-1.
	ClassNames []string
}

// Rows returns the number of rows.
func (t *Table) Rows() int {
	if t.Task == Classification {
		return len(t.Labels)
	}
	return len(t.Values)
}

func (t *Table) classCounts() []int {
	counts := make([]int, t.Classes)
	for _, l := range t.Labels {
		counts[l]++
	}
	return counts
}

// Schema returns the Arrow schema of the "data" port for this table.
func (t *Table) Schema() *arrow.Schema {
	fields := make([]arrow.Field, 0, len(t.FeatureNames)+2)
	for _, n := range t.FeatureNames {
		fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64})
	}
	targetType := arrow.DataType(arrow.PrimitiveTypes.Float64)
	if t.Task == Classification {
		targetType = arrow.PrimitiveTypes.Int64
	}
	fields = append(fields,
		arrow.Field{Name: t.TargetName, Type: targetType},
		arrow.Field{Name: SplitColumn, Type: arrow.BinaryTypes.String},
	)
	keys := []string{MetaTarget, MetaTask, MetaClasses, MetaSource}
	vals := []string{t.TargetName, string(t.Task), strconv.Itoa(t.Classes), t.Source}
	if t.Format != "" {
		keys = append(keys, MetaFormat)
		vals = append(vals, string(t.Format))
	}
	if t.Sample != "" {
		keys = append(keys, MetaSample)
		vals = append(vals, t.Sample)
	}
	if len(t.ClassNames) > 0 {
		// Marshalling a []string cannot fail.
		b, _ := json.Marshal(t.ClassNames)
		keys = append(keys, MetaClassNames)
		vals = append(vals, string(b))
	}
	md := arrow.NewMetadata(keys, vals)
	return arrow.NewSchema(fields, &md)
}

// WriteBatches builds the table's rows, with their split, as batches of at
// most maxRows rows and hands each to emit, releasing it afterwards: emit
// must Retain a batch it keeps.
func (t *Table) WriteBatches(mem memory.Allocator, parts []Part, maxRows int, emit func(arrow.RecordBatch) error) error {
	n := t.Rows()
	if len(parts) != n {
		return fmt.Errorf("dataset: %d split assignments for %d rows", len(parts), n)
	}
	if maxRows <= 0 {
		maxRows = MaxBatchRows
	}
	schema := t.Schema()
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	nf := len(t.FeatureNames)
	for lo := 0; lo < n; lo += maxRows {
		hi := min(lo+maxRows, n)
		for j := range nf {
			b.Field(j).(*array.Float64Builder).AppendValues(t.Features[j][lo:hi], nil)
		}
		switch tb := b.Field(nf).(type) {
		case *array.Int64Builder:
			tb.AppendValues(t.Labels[lo:hi], nil)
		case *array.Float64Builder:
			tb.AppendValues(t.Values[lo:hi], nil)
		}
		sb := b.Field(nf + 1).(*array.StringBuilder)
		sb.Reserve(hi - lo)
		for _, p := range parts[lo:hi] {
			sb.Append(p.String())
		}
		rec := b.NewRecordBatch()
		err := emit(rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// DataError is a problem with a dataset file, located as precisely as the
// problem allows: by line in text files, by row in Parquet, Arrow and IDX
// files, and by byte offset in IDX files.
type DataError struct {
	File string
	// Line is 1-based; 0 when the problem concerns the whole file or the
	// file is not text.
	Line int
	// Row is the 1-based data row of a Parquet, Arrow or IDX file, or 0.
	Row int
	// Offset is the byte offset of the problem in an IDX file (in its
	// decompressed data when gzipped), valid when HasOffset.
	Offset    int64
	HasOffset bool
	// Column names the column at fault, or is "".
	Column string
	// Field is the 1-based position of the column on its line, or 0.
	Field int
	Err   error
}

func (e *DataError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	switch {
	case e.Row > 0 && e.HasOffset:
		s += fmt.Sprintf(": row %d, offset %d", e.Row, e.Offset)
	case e.Row > 0:
		s += fmt.Sprintf(": row %d", e.Row)
	case e.HasOffset:
		s += fmt.Sprintf(": offset %d", e.Offset)
	}
	switch {
	case e.Column != "" && e.Field > 0:
		s += fmt.Sprintf(": column %q (field %d)", e.Column, e.Field)
	case e.Column != "":
		s += fmt.Sprintf(": column %q", e.Column)
	case e.Field > 0:
		s += fmt.Sprintf(": field %d", e.Field)
	}
	return s + ": " + e.Err.Error()
}

func (e *DataError) Unwrap() error { return e.Err }
