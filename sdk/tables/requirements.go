package tables

import (
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Requirements columns.
const (
	ColTask            = "task"
	ColMetric          = "metric"
	ColMinAccuracy     = "min_accuracy"
	ColMaxLoss         = "max_loss"
	ColMaxLatencyMs    = "max_latency_ms"
	ColMaxParams       = "max_params"
	ColMaxModelBytes   = "max_model_bytes"
	ColMaxTrainSeconds = "max_train_seconds"
	ColMaxTrials       = "max_trials"
	ColMaxWallSeconds  = "max_wall_seconds"
	ColRows            = "n_rows"
	ColFeatures        = "n_features"
	ColClasses         = "n_classes"
	ColCores           = "cores"
	ColMemoryBytes     = "memory_bytes"
)

// Tasks.
const (
	Classification = "classification"
	Regression     = "regression"
)

// RequirementsSchema is the requirements table: one row of targets,
// budget, dataset profile and machine.
var RequirementsSchema = arrow.NewSchema([]arrow.Field{
	{Name: ColTask, Type: arrow.BinaryTypes.String},
	{Name: ColMetric, Type: arrow.BinaryTypes.String},
	{Name: ColMinAccuracy, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColMaxLoss, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColMaxLatencyMs, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColMaxParams, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColMaxModelBytes, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColMaxTrainSeconds, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColMaxTrials, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColMaxWallSeconds, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColRows, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColFeatures, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColClasses, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColCores, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColMemoryBytes, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
}, nil)

// Requirements is the requirements row; nil pointers are nulls.
type Requirements struct {
	Task, Metric    string
	MinAccuracy     *float64
	MaxLoss         *float64
	MaxLatencyMs    *float64
	MaxParams       *int64
	MaxModelBytes   *int64
	MaxTrainSeconds *float64
	MaxTrials       *int32
	MaxWallSeconds  *float64
	Rows            *int64
	Features        *int32
	Classes         *int32
	Cores           int32
	MemoryBytes     *int64
}

// BuildRequirements returns the row as one batch of RequirementsSchema.
// The caller releases it.
func BuildRequirements(mem memory.Allocator, r Requirements) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, RequirementsSchema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append(r.Task)
	b.Field(1).(*array.StringBuilder).Append(r.Metric)
	optF64(b.Field(2), r.MinAccuracy)
	optF64(b.Field(3), r.MaxLoss)
	optF64(b.Field(4), r.MaxLatencyMs)
	optI64(b.Field(5), r.MaxParams)
	optI64(b.Field(6), r.MaxModelBytes)
	optF64(b.Field(7), r.MaxTrainSeconds)
	optI32(b.Field(8), r.MaxTrials)
	optF64(b.Field(9), r.MaxWallSeconds)
	optI64(b.Field(10), r.Rows)
	optI32(b.Field(11), r.Features)
	optI32(b.Field(12), r.Classes)
	b.Field(13).(*array.Int32Builder).Append(r.Cores)
	optI64(b.Field(14), r.MemoryBytes)
	return b.NewRecordBatch()
}

func optF64(b array.Builder, v *float64) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.(*array.Float64Builder).Append(*v)
}

func optI64(b array.Builder, v *int64) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.(*array.Int64Builder).Append(*v)
}

func optI32(b array.Builder, v *int32) {
	if v == nil {
		b.AppendNull()
		return
	}
	b.(*array.Int32Builder).Append(*v)
}

// ReadRequirements decodes a requirements batch of exactly one row.
func ReadRequirements(rec arrow.RecordBatch) (Requirements, error) {
	if rec.NumRows() != 1 {
		return Requirements{}, fmt.Errorf("requirements table has %d rows, want 1", rec.NumRows())
	}
	var r Requirements
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
		return c
	}
	str := func(name string) string {
		if c := col(name, arrow.BinaryTypes.String); c != nil && c.IsValid(0) {
			return c.(*array.String).Value(0)
		}
		return ""
	}
	f64 := func(name string) *float64 {
		if c := col(name, arrow.PrimitiveTypes.Float64); c != nil && c.IsValid(0) {
			v := c.(*array.Float64).Value(0)
			return &v
		}
		return nil
	}
	i64 := func(name string) *int64 {
		if c := col(name, arrow.PrimitiveTypes.Int64); c != nil && c.IsValid(0) {
			v := c.(*array.Int64).Value(0)
			return &v
		}
		return nil
	}
	i32 := func(name string) *int32 {
		if c := col(name, arrow.PrimitiveTypes.Int32); c != nil && c.IsValid(0) {
			v := c.(*array.Int32).Value(0)
			return &v
		}
		return nil
	}
	r.Task, r.Metric = str(ColTask), str(ColMetric)
	r.MinAccuracy, r.MaxLoss, r.MaxLatencyMs = f64(ColMinAccuracy), f64(ColMaxLoss), f64(ColMaxLatencyMs)
	r.MaxParams, r.MaxModelBytes = i64(ColMaxParams), i64(ColMaxModelBytes)
	r.MaxTrainSeconds, r.MaxTrials, r.MaxWallSeconds = f64(ColMaxTrainSeconds), i32(ColMaxTrials), f64(ColMaxWallSeconds)
	r.Rows, r.Features, r.Classes = i64(ColRows), i32(ColFeatures), i32(ColClasses)
	if c := i32(ColCores); c != nil {
		r.Cores = *c
	}
	r.MemoryBytes = i64(ColMemoryBytes)
	return r, errors.Join(errs...)
}
