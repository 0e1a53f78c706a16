package resize

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Trial statuses of the results table.
const (
	trialOK         = "ok"
	trialFailed     = "failed"
	trialPruned     = "pruned"
	trialInfeasible = "infeasible"
)

// trial is one results row. Missing measurements are NaN.
type trial struct {
	cand                                 tables.Candidate
	status                               string
	accuracy, loss, latencyMs, trainSecs float64
	modelBytes                           float64
	// measuredFrom, repeatsHeld and repeatable are the row's
	// (tables.Result): the measurement it derives from ("" for its own),
	// how many measurements of the model its source holds (0: no fixed
	// number), and whether its next repeat would be a new measurement.
	measuredFrom string
	repeatsHeld  int32
	repeatable   bool
	// After poolRepeats, accuracy and loss of an ok row are its model's
	// means over the model's ok repeats (own holds the row's own values),
	// reps counts those repeats, and accSD and lossSD are their sample
	// standard deviations (NaN below two repeats).
	reps            int
	accSD, lossSD   float64
	ownAcc, ownLoss float64
	// epochsRun is the epochs the training ran (0 when the table does
	// not say): fewer than the candidate's when early stopping cut it.
	epochsRun int32
}

// readResults decodes every batch of the input port.
func readResults(in sdk.Inputs) ([]trial, error) {
	r, err := in.Reader(InputPort)
	if err != nil {
		return nil, err
	}
	var out []trial
	var offset int64
	for r.Next() {
		b := r.RecordBatch()
		ts, err := decodeResults(b, offset)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
		offset += b.NumRows()
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read port %s: %w", InputPort, err)
	}
	if len(out) == 0 {
		return nil, &sdk.InputError{Port: InputPort, Row: -1, Err: errNoResults}
	}
	poolRepeats(out)
	return out, nil
}

// poolRepeats makes a model's measurement the mean of its ok repeats: the
// rows of one candidate_id are its repeats, told apart by repeat (a row
// whose candidate_id and repeat an earlier row has is the same
// measurement again, and counts once). Every ok row of the model then
// carries the means, the count and the spread, so that whichever row
// represents the model, it speaks for all of its measurements.
func poolRepeats(ts []trial) {
	type model struct {
		rows []int
		seen map[int32]bool
		acc  []float64
		loss []float64
	}
	by := map[string]*model{}
	var order []string
	for i := range ts {
		t := &ts[i]
		t.ownAcc, t.ownLoss, t.accSD, t.lossSD = t.accuracy, t.loss, math.NaN(), math.NaN()
		m, ok := by[t.cand.ID]
		if !ok {
			m = &model{seen: map[int32]bool{}}
			by[t.cand.ID] = m
			order = append(order, t.cand.ID)
		}
		m.rows = append(m.rows, i)
		if t.status != trialOK || m.seen[t.cand.Repeat] {
			continue
		}
		m.seen[t.cand.Repeat] = true
		if !math.IsNaN(t.accuracy) {
			m.acc = append(m.acc, t.accuracy)
		}
		if !math.IsNaN(t.loss) {
			m.loss = append(m.loss, t.loss)
		}
	}
	for _, id := range order {
		m := by[id]
		accMean, accSD := meanSD(m.acc)
		lossMean, lossSD := meanSD(m.loss)
		for _, i := range m.rows {
			t := &ts[i]
			t.reps = len(m.seen)
			t.accSD, t.lossSD = accSD, lossSD
			if t.status != trialOK {
				continue
			}
			if !math.IsNaN(t.accuracy) {
				t.accuracy = accMean
			}
			if !math.IsNaN(t.loss) {
				t.loss = lossMean
			}
		}
	}
}

// meanSD returns the mean and the sample standard deviation of v (NaN
// when v has fewer than two values; the mean NaN when it has none).
func meanSD(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// decodeResults reads one batch; offset is the stream row of its first row,
// for error messages.
func decodeResults(b arrow.RecordBatch, offset int64) ([]trial, error) {
	if b.NumRows() == 0 {
		return nil, nil
	}
	cands, err := tables.ReadCandidates(b)
	if err != nil {
		return nil, &sdk.InputError{Port: InputPort, Row: -1, Err: err}
	}
	var errs []error
	col := func(name string, want arrow.DataType) arrow.Array {
		idx := b.Schema().FieldIndices(name)
		if len(idx) == 0 {
			errs = append(errs, &sdk.InputError{Port: InputPort, Row: -1, Column: name, Err: errors.New("column is missing")})
			return nil
		}
		c := b.Column(idx[0])
		if !arrow.TypeEqual(c.DataType(), want) {
			errs = append(errs, &sdk.InputError{Port: InputPort, Row: -1, Column: name, Err: fmt.Errorf("column is %s, want %s", c.DataType(), want)})
			return nil
		}
		return c
	}
	acc := col("accuracy", arrow.PrimitiveTypes.Float64)
	loss := col("loss", arrow.PrimitiveTypes.Float64)
	lat := col("latency_p95_ms", arrow.PrimitiveTypes.Float64)
	mb := col("model_bytes", arrow.PrimitiveTypes.Int64)
	ts := col("train_seconds", arrow.PrimitiveTypes.Float64)
	status := col("status", arrow.BinaryTypes.String)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Columns that came later: absent in older tables.
	var from, held, more, setting, chosen, ran arrow.Array
	if idx := b.Schema().FieldIndices(tables.ColEpochsRun); len(idx) > 0 {
		ran = col(tables.ColEpochsRun, arrow.PrimitiveTypes.Int32)
	}
	if idx := b.Schema().FieldIndices(tables.ColMeasuredFrom); len(idx) > 0 {
		from = col(tables.ColMeasuredFrom, arrow.BinaryTypes.String)
	}
	if idx := b.Schema().FieldIndices(tables.ColRepeatsHeld); len(idx) > 0 {
		held = col(tables.ColRepeatsHeld, arrow.PrimitiveTypes.Int32)
	}
	if idx := b.Schema().FieldIndices(tables.ColRepeatable); len(idx) > 0 {
		more = col(tables.ColRepeatable, arrow.FixedWidthTypes.Boolean)
	}
	if idx := b.Schema().FieldIndices(tables.ColSetting); len(idx) > 0 {
		setting = col(tables.ColSetting, arrow.BinaryTypes.String)
		chosen = col(tables.ColSettingChosen, arrow.FixedWidthTypes.Boolean)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f := func(a arrow.Array, i int) float64 {
		if a.IsNull(i) {
			return math.NaN()
		}
		return a.(*array.Float64).Value(i)
	}
	out := make([]trial, 0, len(cands))
	for i := range cands {
		row := offset + int64(i)
		// A setting a search tried and did not choose is its evidence,
		// not a measurement of the size (tables.Result.Outranked): the
		// chosen setting's row speaks for the size.
		if setting != nil && !setting.IsNull(i) && (chosen.IsNull(i) || !chosen.(*array.Boolean).Value(i)) {
			continue
		}
		if status.IsNull(i) {
			return nil, &sdk.InputError{Port: InputPort, Row: row, Column: "status", Err: errors.New("status is null")}
		}
		t := trial{
			cand:      cands[i],
			status:    strings.Clone(status.(*array.String).Value(i)), // outlives the batch
			accuracy:  f(acc, i),
			loss:      f(loss, i),
			latencyMs: f(lat, i),
			trainSecs: f(ts, i),
		}
		if mb.IsNull(i) {
			t.modelBytes = math.NaN()
		} else {
			t.modelBytes = float64(mb.(*array.Int64).Value(i))
		}
		if ran != nil && !ran.IsNull(i) {
			t.epochsRun = ran.(*array.Int32).Value(i)
		}
		if from != nil && !from.IsNull(i) {
			t.measuredFrom = strings.Clone(from.(*array.String).Value(i))
		}
		if held != nil && !held.IsNull(i) {
			t.repeatsHeld = max(held.(*array.Int32).Value(i), 0)
		}
		if more != nil && !more.IsNull(i) {
			t.repeatable = more.(*array.Boolean).Value(i)
		}
		switch t.status {
		case trialOK, trialFailed, trialPruned, trialInfeasible:
		default:
			return nil, &sdk.InputError{Port: InputPort, Row: row, Column: "status", Err: fmt.Errorf("status %q is not one of ok, failed, pruned, infeasible", t.status)}
		}
		// Values no metric can take mean a broken upstream; fitting them
		// would give a confident wrong answer.
		if v := t.accuracy; !math.IsNaN(v) && !(v >= 0 && v <= 1) {
			return nil, &sdk.InputError{Port: InputPort, Row: row, Column: "accuracy", Err: fmt.Errorf("accuracy %g is not between 0 and 1", v)}
		}
		if v := t.loss; !math.IsNaN(v) && !(v >= 0 && !math.IsInf(v, 0)) {
			return nil, &sdk.InputError{Port: InputPort, Row: row, Column: "loss", Err: fmt.Errorf("loss %g is not a finite number of 0 or more", v)}
		}
		if t.cand.Params < 1 {
			return nil, &sdk.InputError{Port: InputPort, Row: row, Column: "params", Err: fmt.Errorf("params %d is not positive", t.cand.Params)}
		}
		if t.cand.Depth < 0 || t.cand.Width < 0 || t.cand.Width > maxWidth {
			return nil, &sdk.InputError{Port: InputPort, Row: row, Column: "width", Err: fmt.Errorf("depth %d, width %d out of range", t.cand.Depth, t.cand.Width)}
		}
		out = append(out, t)
	}
	return out, nil
}

// readRequirements reads the optional requirements port; nil when it is
// not connected.
func readRequirements(in sdk.Inputs) (*tables.Requirements, error) {
	r, err := in.Reader(RequirementsPort)
	if errors.Is(err, sdk.ErrNotConnected) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var rows []tables.Requirements
	for r.Next() {
		b := r.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		row, err := tables.ReadRequirements(b)
		if err != nil {
			return nil, &sdk.InputError{Port: RequirementsPort, Row: -1, Err: err}
		}
		rows = append(rows, row)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read port %s: %w", RequirementsPort, err)
	}
	if len(rows) != 1 {
		return nil, &sdk.InputError{Port: RequirementsPort, Row: -1, Err: fmt.Errorf("the requirements table has %d rows, want 1", len(rows))}
	}
	return &rows[0], nil
}

// readSpace reads the optional space port: every model the search may
// propose. nil when it is not connected.
func readSpace(in sdk.Inputs) ([]tables.Candidate, error) {
	r, err := in.Reader(SpacePort)
	if errors.Is(err, sdk.ErrNotConnected) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []tables.Candidate
	for r.Next() {
		cs, err := tables.ReadCandidates(r.RecordBatch())
		if err != nil {
			return nil, &sdk.InputError{Port: SpacePort, Row: -1, Err: err}
		}
		out = append(out, cs...)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read port %s: %w", SpacePort, err)
	}
	return out, nil
}
