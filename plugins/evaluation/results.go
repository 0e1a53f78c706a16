package evaluation

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/modelchoice"
)

// Trial statuses. This stage writes ok and failed; pruned and infeasible
// belong to stages that drop a candidate without training it.
const (
	StatusOK         = "ok"
	StatusFailed     = "failed"
	StatusPruned     = "pruned"
	StatusInfeasible = "infeasible"
)

// The results columns after the candidates columns, in order.
var resultFields = []arrow.Field{
	{Name: "accuracy", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "latency_p50_ms", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "latency_p95_ms", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "throughput_per_s", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "model_bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "peak_bytes", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "train_seconds", Type: arrow.PrimitiveTypes.Float64},
	{Name: "epochs_run", Type: arrow.PrimitiveTypes.Int32},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "error", Type: arrow.BinaryTypes.String},
	{Name: "trace_id", Type: arrow.BinaryTypes.String},
	{Name: "rmse", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "r2", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "accuracy_before", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "loss_before", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "rmse_before", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "nonzero_params", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "val_loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "best_epoch", Type: arrow.PrimitiveTypes.Int32},
	{Name: "stopped_by", Type: arrow.BinaryTypes.String},
}

// Schema is the results table's schema: the candidates columns, then one
// column per measurement (see the package documentation).
var Schema = arrow.NewSchema(append(slices.Clone(modelchoice.Schema.Fields()), resultFields...), nil)

// Result is one row of the results table. Float measurements that do not
// apply (a failed trial, the other task's metric, the *_before columns of a
// model neither quantized nor pruned) are NaN here and null in the table;
// nullable integers are -1 here when null.
type Result struct {
	modelchoice.Candidate
	Accuracy, Loss             float64
	LatencyP50Ms, LatencyP95Ms float64
	ThroughputPerS             float64
	ModelBytes, PeakBytes      int64
	TrainSeconds               float64
	EpochsRun                  int32
	Status, Error, TraceID     string
	RMSE, R2                   float64
	AccuracyBefore, LossBefore float64
	RMSEBefore                 float64
	NonZeroParams              int64
	ValLoss                    float64
	BestEpoch                  int32
	StoppedBy                  string
}

// newResult is a failed result of c with every measurement null.
func newResult(c modelchoice.Candidate) Result {
	nan := math.NaN()
	return Result{
		Candidate: c, Accuracy: nan, Loss: nan, LatencyP50Ms: nan, LatencyP95Ms: nan, ThroughputPerS: nan,
		ModelBytes: -1, PeakBytes: -1, Status: StatusFailed, RMSE: nan, R2: nan,
		AccuracyBefore: nan, LossBefore: nan, RMSEBefore: nan, NonZeroParams: -1, ValLoss: nan,
	}
}

// Build returns the results as one batch of Schema. The caller releases it.
func Build(mem memory.Allocator, rs []Result) arrow.RecordBatch {
	cands := make([]modelchoice.Candidate, len(rs))
	for i, r := range rs {
		cands[i] = r.Candidate
	}
	base := modelchoice.Build(mem, cands)
	defer base.Release()

	b := array.NewRecordBuilder(mem, arrow.NewSchema(resultFields, nil))
	defer b.Release()
	f64 := func(i int, v float64) {
		if math.IsNaN(v) {
			b.Field(i).AppendNull()
			return
		}
		b.Field(i).(*array.Float64Builder).Append(v)
	}
	i64 := func(i int, v int64) {
		if v < 0 {
			b.Field(i).AppendNull()
			return
		}
		b.Field(i).(*array.Int64Builder).Append(v)
	}
	for _, r := range rs {
		f64(0, r.Accuracy)
		f64(1, r.Loss)
		f64(2, r.LatencyP50Ms)
		f64(3, r.LatencyP95Ms)
		f64(4, r.ThroughputPerS)
		i64(5, r.ModelBytes)
		i64(6, r.PeakBytes)
		b.Field(7).(*array.Float64Builder).Append(r.TrainSeconds)
		b.Field(8).(*array.Int32Builder).Append(r.EpochsRun)
		b.Field(9).(*array.StringBuilder).Append(r.Status)
		b.Field(10).(*array.StringBuilder).Append(r.Error)
		b.Field(11).(*array.StringBuilder).Append(r.TraceID)
		f64(12, r.RMSE)
		f64(13, r.R2)
		f64(14, r.AccuracyBefore)
		f64(15, r.LossBefore)
		f64(16, r.RMSEBefore)
		i64(17, r.NonZeroParams)
		f64(18, r.ValLoss)
		b.Field(19).(*array.Int32Builder).Append(r.BestEpoch)
		b.Field(20).(*array.StringBuilder).Append(r.StoppedBy)
	}
	extra := b.NewRecordBatch()
	defer extra.Release()
	cols := append(slices.Clone(base.Columns()), extra.Columns()...)
	return array.NewRecordBatch(Schema, cols, int64(len(rs)))
}

// Read decodes a batch holding the results columns (other columns are
// ignored), for the stages downstream.
func Read(rec arrow.RecordBatch) ([]Result, error) {
	cands, err := modelchoice.Read(rec)
	if err != nil {
		return nil, err
	}
	var errs []error
	cols := make([]arrow.Array, len(resultFields))
	for i, f := range resultFields {
		idx := rec.Schema().FieldIndices(f.Name)
		switch {
		case len(idx) == 0:
			errs = append(errs, fmt.Errorf("column %s is missing", f.Name))
		case !arrow.TypeEqual(rec.Column(idx[0]).DataType(), f.Type):
			errs = append(errs, fmt.Errorf("column %s is %s, want %s", f.Name, rec.Column(idx[0]).DataType(), f.Type))
		case !f.Nullable && rec.Column(idx[0]).NullN() > 0:
			errs = append(errs, fmt.Errorf("column %s has nulls", f.Name))
		default:
			cols[i] = rec.Column(idx[0])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f64 := func(i, r int) float64 {
		c := cols[i].(*array.Float64)
		if c.IsNull(r) {
			return math.NaN()
		}
		return c.Value(r)
	}
	i64 := func(i, r int) int64 {
		c := cols[i].(*array.Int64)
		if c.IsNull(r) {
			return -1
		}
		return c.Value(r)
	}
	str := func(i, r int) string { return cols[i].(*array.String).Value(r) }
	i32 := func(i, r int) int32 { return cols[i].(*array.Int32).Value(r) }
	out := make([]Result, len(cands))
	for r := range out {
		out[r] = Result{
			Candidate: cands[r],
			Accuracy:  f64(0, r), Loss: f64(1, r), LatencyP50Ms: f64(2, r), LatencyP95Ms: f64(3, r), ThroughputPerS: f64(4, r),
			ModelBytes: i64(5, r), PeakBytes: i64(6, r), TrainSeconds: f64(7, r), EpochsRun: i32(8, r),
			Status: str(9, r), Error: str(10, r), TraceID: str(11, r),
			RMSE: f64(12, r), R2: f64(13, r), AccuracyBefore: f64(14, r), LossBefore: f64(15, r), RMSEBefore: f64(16, r),
			NonZeroParams: i64(17, r), ValLoss: f64(18, r), BestEpoch: i32(19, r), StoppedBy: str(20, r),
		}
	}
	return out, nil
}
