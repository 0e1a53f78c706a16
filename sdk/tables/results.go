package tables

import (
	"cmp"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Results columns, after the candidates columns.
const (
	ColAccuracy       = "accuracy"
	ColLoss           = "loss"
	ColLatencyP50Ms   = "latency_p50_ms"
	ColLatencyP95Ms   = "latency_p95_ms"
	ColThroughputPerS = "throughput_per_s"
	ColModelBytes     = "model_bytes"
	ColPeakBytes      = "peak_bytes"
	ColTrainSeconds   = "train_seconds"
	ColEpochsRun      = "epochs_run"
	ColStatus         = "status"
	ColError          = "error"
	ColTraceID        = "trace_id"
	ColRMSE           = "rmse"
	ColR2             = "r2"
	ColAccuracyBefore = "accuracy_before"
	ColLossBefore     = "loss_before"
	ColRMSEBefore     = "rmse_before"
	ColNonZeroParams  = "nonzero_params"
	ColValLoss        = "val_loss"
	ColBestEpoch      = "best_epoch"
	ColStoppedBy      = "stopped_by"
	ColMeasuredFrom   = "measured_from"
	ColRepeatsHeld    = "repeats_held"
	ColRepeatable     = "repeatable"
	ColDenseParams    = "dense_params"
	ColSetting        = "setting"
	ColSettingChosen  = "setting_chosen"
	ColSettingScore   = "setting_score"
)

// Trial statuses of the results table. The evaluation stages write ok and
// failed; pruned and infeasible belong to stages that drop a candidate
// without training it to the end.
const (
	StatusOK         = "ok"
	StatusFailed     = "failed"
	StatusPruned     = "pruned"
	StatusInfeasible = "infeasible"
)

// Statuses lists the trial statuses.
var Statuses = []string{StatusOK, StatusFailed, StatusPruned, StatusInfeasible}

// ResultFields are the results columns after the candidates columns, in
// order.
var ResultFields = []arrow.Field{
	{Name: ColAccuracy, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColLoss, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColLatencyP50Ms, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColLatencyP95Ms, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColThroughputPerS, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColModelBytes, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColPeakBytes, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColTrainSeconds, Type: arrow.PrimitiveTypes.Float64},
	{Name: ColEpochsRun, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColStatus, Type: arrow.BinaryTypes.String},
	{Name: ColError, Type: arrow.BinaryTypes.String},
	{Name: ColTraceID, Type: arrow.BinaryTypes.String},
	{Name: ColRMSE, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColR2, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColAccuracyBefore, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColLossBefore, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColRMSEBefore, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColNonZeroParams, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColValLoss, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: ColBestEpoch, Type: arrow.PrimitiveTypes.Int32},
	{Name: ColStoppedBy, Type: arrow.BinaryTypes.String},
	{Name: ColMeasuredFrom, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColRepeatsHeld, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ColRepeatable, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: ColDenseParams, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: ColSetting, Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: ColSettingChosen, Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: ColSettingScore, Type: arrow.PrimitiveTypes.Float64, Nullable: true},
}

// ResultsSchema is the results table: the candidates columns, then one
// column per measurement.
var ResultsSchema = arrow.NewSchema(append(slices.Clone(CandidatesSchema.Fields()), ResultFields...), nil)

// Result is one row of the results table. Float measurements that do not
// apply (a failed trial, the other task's metric, the *_before columns of a
// model neither quantized nor pruned) are NaN here and null in the table;
// nullable integers are -1 here when null.
type Result struct {
	Candidate
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
	// MeasuredFrom names the measurement a row derives from when it is
	// not a measurement of its own training: a replayed row's table row,
	// and an interpolated row's nearest measured row. Rows with the same
	// MeasuredFrom are one measurement, not several (the resize stage's
	// fit counts them once). Empty for a trained trial.
	MeasuredFrom string
	// RepeatsHeld is how many measurements of the model its source holds
	// when that number is fixed (a replay table's rows of the model): a
	// repeat at or beyond it measures nothing new. 0 (null in the table)
	// when another repeat is a new measurement (a trainer, with a seed of
	// its own).
	RepeatsHeld int32
	// Repeatable says that the next repeat of the candidate would be a
	// new measurement: a trainer's (another seed), or a replay table's
	// that holds more. false (null in the table) when it would not, or
	// the stage does not say: the resize stage then asks for no repeat.
	Repeatable bool
	// DenseParams is the parameter count of the model before pruning,
	// when pruning changed it: Params then counts the weights the pruned
	// model stores. 0 (null in the table) when Params is the dense count.
	DenseParams int64
	// Setting is the setting of the stage's search space the trial tried
	// (a search block), as a JSON object of the params' values, keys
	// sorted; "" (null in the table) for a stage without one.
	Setting string
	// SettingChosen marks, among the trials of a model size's settings,
	// the one whose result is the size's: the setting best on the
	// validation metric, trained on the full budget. The others
	// (Outranked) stay in the table as the search's evidence. false (null
	// in the table) without a setting.
	SettingChosen bool
	// SettingScore is the validation metric the search compared the
	// settings by (NaN, null in the table, when the trial has none).
	SettingScore float64
}

// Outranked reports whether the row is a setting a search tried and did
// not choose for its model size (another setting, or a halving rung below
// the full budget): evidence of the search, not a measurement of the size,
// which the resize stage leaves out.
func (r Result) Outranked() bool { return r.Setting != "" && !r.SettingChosen }

// NewResult is a failed result of c with every measurement null.
func NewResult(c Candidate) Result {
	nan := nan()
	return Result{
		Candidate: c, Accuracy: nan, Loss: nan, LatencyP50Ms: nan, LatencyP95Ms: nan, ThroughputPerS: nan,
		ModelBytes: -1, PeakBytes: -1, Status: StatusFailed, RMSE: nan, R2: nan,
		AccuracyBefore: nan, LossBefore: nan, RMSEBefore: nan, NonZeroParams: -1, ValLoss: nan, SettingScore: nan,
	}
}

// BuildResults returns the results as one batch of ResultsSchema. The
// caller releases it.
func BuildResults(mem memory.Allocator, rs []Result) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, ResultsSchema)
	defer b.Release()
	n := CandidatesSchema.NumFields()
	for _, r := range rs {
		appendCandidate(b, r.Candidate)
		f := func(i int) array.Builder { return b.Field(n + i) }
		appendF64(f(0), r.Accuracy)
		appendF64(f(1), r.Loss)
		appendF64(f(2), r.LatencyP50Ms)
		appendF64(f(3), r.LatencyP95Ms)
		appendF64(f(4), r.ThroughputPerS)
		appendI64(f(5), r.ModelBytes)
		appendI64(f(6), r.PeakBytes)
		f(7).(*array.Float64Builder).Append(r.TrainSeconds)
		f(8).(*array.Int32Builder).Append(r.EpochsRun)
		f(9).(*array.StringBuilder).Append(r.Status)
		f(10).(*array.StringBuilder).Append(r.Error)
		f(11).(*array.StringBuilder).Append(r.TraceID)
		appendF64(f(12), r.RMSE)
		appendF64(f(13), r.R2)
		appendF64(f(14), r.AccuracyBefore)
		appendF64(f(15), r.LossBefore)
		appendF64(f(16), r.RMSEBefore)
		appendI64(f(17), r.NonZeroParams)
		appendF64(f(18), r.ValLoss)
		f(19).(*array.Int32Builder).Append(r.BestEpoch)
		f(20).(*array.StringBuilder).Append(r.StoppedBy)
		appendStr(f(21), r.MeasuredFrom)
		appendI32(f(22), cmp.Or(r.RepeatsHeld, -1))
		if r.Repeatable {
			f(23).(*array.BooleanBuilder).Append(true)
		} else {
			f(23).AppendNull()
		}
		if r.DenseParams > 0 {
			f(24).(*array.Int64Builder).Append(r.DenseParams)
		} else {
			f(24).AppendNull()
		}
		if r.Setting != "" {
			f(25).(*array.StringBuilder).Append(r.Setting)
			f(26).(*array.BooleanBuilder).Append(r.SettingChosen)
			appendF64(f(27), r.SettingScore)
		} else {
			f(25).AppendNull()
			f(26).AppendNull()
			f(27).AppendNull()
		}
	}
	return b.NewRecordBatch()
}

// ReadResults decodes a batch holding the results columns (other columns
// are ignored).
func ReadResults(rec arrow.RecordBatch) ([]Result, error) {
	cands, err := ReadCandidates(rec)
	if err != nil {
		return nil, err
	}
	c := newColumns(rec, arrow.NewSchema(ResultFields, nil), ColMeasuredFrom, ColRepeatsHeld, ColRepeatable, ColDenseParams, ColSetting, ColSettingChosen, ColSettingScore)
	if err := c.err(); err != nil {
		return nil, err
	}
	out := make([]Result, len(cands))
	for r := range out {
		out[r] = Result{
			Candidate: cands[r],
			Accuracy:  c.f64(0, r), Loss: c.f64(1, r), LatencyP50Ms: c.f64(2, r), LatencyP95Ms: c.f64(3, r), ThroughputPerS: c.f64(4, r),
			ModelBytes: c.i64(5, r), PeakBytes: c.i64(6, r), TrainSeconds: c.f64(7, r), EpochsRun: c.i32(8, r),
			Status: c.str(9, r), Error: c.str(10, r), TraceID: c.str(11, r),
			RMSE: c.f64(12, r), R2: c.f64(13, r), AccuracyBefore: c.f64(14, r), LossBefore: c.f64(15, r), RMSEBefore: c.f64(16, r),
			NonZeroParams: c.i64(17, r), ValLoss: c.f64(18, r), BestEpoch: c.i32(19, r), StoppedBy: c.str(20, r),
			MeasuredFrom: c.str(21, r), RepeatsHeld: max(c.i32Or(22, r, 0), 0), Repeatable: c.boolOr(23, r, false),
			DenseParams: max(c.i64(24, r), 0),
			Setting:     c.str(25, r), SettingChosen: c.boolOr(26, r, false), SettingScore: c.f64(27, r),
		}
	}
	return out, nil
}
