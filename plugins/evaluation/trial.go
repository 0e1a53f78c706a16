package evaluation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/modelfile"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// TracerName is the instrumentation scope of the trial spans.
const TracerName = "github.com/sweetspot-ml/sweetspot/plugins/evaluation"

// Quantize values.
const (
	QuantizeNone = tables.None
	QuantizeInt8 = "int8"
)

// maxTrialParams bounds a model's size: its training state (parameters,
// gradients, two Adam moments and a snapshot) is 20 bytes a parameter, so
// this is about 2.7 GB.
const maxTrialParams = 1 << 27

// TrainingKey identifies what a candidate trains: two candidates with the
// same key (variants differing only in quantize, prune_fraction, round or
// candidate_id) train the same float model, which the stage trains once.
//
// A candidate's samples are part of it when set (a subsample is another
// training), and absent otherwise, so keys and seeds from before the
// samples column stay what they were.
func TrainingKey(c tables.Candidate, epochs int) string {
	key := fmt.Sprintf("%s|d%d|w%d|p%d|lr%g|b%d|e%d|%s", c.Family, c.Depth, c.Width, c.Params, c.LearningRate, c.BatchSize, epochs, c.Preprocess)
	if c.Samples > 0 {
		key += fmt.Sprintf("|s%d", c.Samples)
	}
	return key
}

// TrialSeed is the seed of a training: the stage's seed mixed with a hash
// of its training key, so that it depends on nothing else (not on the
// other candidates, their order or parallelism).
func TrialSeed(seed uint64, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return seed*0x9e3779b97f4a7c15 ^ h.Sum64()
}

// RepeatSeed is the seed of repeat r of a training: TrialSeed itself for
// repeat 0, so that results and caches from before repeats stay valid,
// and for a later repeat the same mix with the repeat in the key, so each
// repeat draws its own initialization, shuffling and holdout.
func RepeatSeed(seed uint64, key string, repeat int32) uint64 {
	if repeat == 0 {
		return TrialSeed(seed, key)
	}
	return TrialSeed(seed, fmt.Sprintf("%s|repeat%d", key, repeat))
}

// GroupKey identifies what one training serves: the candidates of a
// training key and one repeat.
func GroupKey(c tables.Candidate, epochs int) string {
	return fmt.Sprintf("%s#%d", TrainingKey(c, epochs), c.Repeat)
}

// Repeats lists the trials of the candidates when each is to be measured
// n times: a candidate of repeat 0 (the default) gives repeats 0 to n-1,
// in order; a candidate that names a later repeat (one the resize stage
// asks for) is measured once, as that repeat.
func Repeats(cands []tables.Candidate, n int) []tables.Candidate {
	out := make([]tables.Candidate, 0, len(cands)*max(n, 1))
	for _, c := range cands {
		if c.Repeat > 0 || n <= 1 {
			out = append(out, c)
			continue
		}
		for r := range n {
			c.Repeat = int32(r)
			out = append(out, c)
		}
	}
	return out
}

// TrialName is the name of a trial's span: "trial ID", with the repeat
// after it from the second measurement on.
func TrialName(c tables.Candidate) string {
	if c.Repeat > 0 {
		return fmt.Sprintf("trial %s repeat %d", c.ID, c.Repeat)
	}
	return "trial " + c.ID
}

// pruneKey names a training to the pruner, unique across the stage's
// rounds: the round, the training key and the repeat.
func pruneKey(c tables.Candidate, epochs int) string {
	return fmt.Sprintf("r%d/%s", c.Round, GroupKey(c, epochs))
}

// SpecFor returns the model shape of a candidate for a dataset with the
// given inputs (after preprocessing), or why it cannot be built.
func SpecFor(c tables.Candidate, inputs int, ds *prep.Dataset) (nn.Spec, error) {
	spec := nn.Spec{Inputs: inputs, Outputs: ds.Outputs(), Task: ds.Task}
	switch c.Family {
	case tables.FamilyLinear:
		if c.Depth != 0 || c.Width != 0 {
			return spec, fmt.Errorf("a linear candidate has depth 0 and width 0, not depth %d and width %d", c.Depth, c.Width)
		}
	case tables.FamilyMLP:
		if c.Depth < 1 || c.Depth > 64 {
			return spec, fmt.Errorf("an mlp has 1 to 64 hidden layers, not depth %d (the depth-0 model is the linear family)", c.Depth)
		}
		if c.Width < 1 {
			return spec, fmt.Errorf("an mlp's hidden layers need at least 1 unit, not width %d", c.Width)
		}
		for range c.Depth {
			spec.Hidden = append(spec.Hidden, int(c.Width))
		}
	default:
		return spec, fmt.Errorf("unknown model family %q; this stage trains mlp and linear", c.Family)
	}
	if err := spec.Validate(); err != nil {
		return spec, err
	}
	if p := spec.Params(); p > maxTrialParams {
		return spec, fmt.Errorf("%d parameters is more than this trainer takes (%d)", p, maxTrialParams)
	}
	return spec, nil
}

// Compression returns the post-training compression a candidate asks for.
func Compression(c tables.Candidate) (nn.Compression, error) {
	var out nn.Compression
	switch c.Quantize {
	case "", tables.None:
	case QuantizeInt8:
		out.Int8 = true
	default:
		return out, fmt.Errorf("unknown quantize %q; want none or int8", c.Quantize)
	}
	if !(c.PruneFraction >= 0 && c.PruneFraction < 1) {
		return out, fmt.Errorf("prune_fraction %g is outside [0, 1)", c.PruneFraction)
	}
	out.PruneFraction = c.PruneFraction
	return out, nil
}

func (s *Stage) epochsOf(c tables.Candidate) int {
	if s.epochs > 0 {
		return s.epochs
	}
	return int(c.Epochs)
}

// TrainConfig returns the training config of a candidate.
func (s *Stage) TrainConfig(c tables.Candidate) nn.Config {
	epochs := s.epochsOf(c)
	return nn.Config{
		LearningRate: c.LearningRate, BatchSize: int(c.BatchSize), Epochs: epochs,
		Patience: s.patience, NoisePatience: s.noisePatience, Seed: RepeatSeed(s.seed, TrainingKey(c, epochs), c.Repeat), HoldoutFraction: s.holdout, MaxTime: s.maxTrainTime,
	}
}

// trained is a float model trained for a group of candidates, or why it
// could not be.
type trained struct {
	from     string // the candidate whose trial trained it
	model    nn.Model
	rep      nn.Report
	seconds  float64
	test     *nn.Data
	measured nn.Metrics
	// header and transform go into the model file of each variant.
	header    modelfile.Header
	transform *prep.Transform
	err       error
	// pruned is why the pruner stopped the training; empty when it ran
	// its budget.
	pruned string
	// samples is how many training rows it was given.
	samples int64
}

// train builds and trains c's float model, inside c's trial span. Its
// error is only ctx's.
func (s *Stage) train(ctx context.Context, span trace.Span, c tables.Candidate, preps *Preparations, pr *prune.Stage) (*trained, error) {
	t := &trained{from: c.ID}
	prepared, err := preps.Get(c.Preprocess)
	if err != nil {
		t.err = err
		return t, nil
	}
	spec, err := SpecFor(c, prepared.Inputs, preps.Dataset())
	if err != nil {
		t.err = err
		return t, nil
	}
	if c.Params != 0 && c.Params != spec.Params() {
		t.err = fmt.Errorf("the candidate has %d parameters but its model for this dataset (%d inputs, %d outputs) has %d: the candidates were made for another dataset or preprocessing", c.Params, spec.Inputs, spec.Outputs, spec.Params())
		return t, nil
	}
	train, err := s.trainingRows(prepared.Train, c.Samples)
	if err != nil {
		t.err = err
		return t, nil
	}
	t.samples = int64(train.Rows)
	cfg := s.TrainConfig(c)
	cfg.OnEpoch = func(st nn.EpochStats) {
		attrs := []attribute.KeyValue{attribute.Int("epoch", st.Epoch), attribute.Float64("loss", st.Loss)}
		if !math.IsNaN(st.ValLoss) {
			attrs = append(attrs, attribute.Float64("val_loss", st.ValLoss))
		}
		if !math.IsNaN(st.ValAccuracy) {
			attrs = append(attrs, attribute.Float64("val_accuracy", st.ValAccuracy))
		}
		span.AddEvent("epoch", trace.WithAttributes(attrs...))
	}
	var curve [][2]float64
	key, model := pruneKey(c, s.epochsOf(c)), TrainingKey(c, s.epochsOf(c))
	// A model trained before is asked for again at full budget (a repeat,
	// or a pruned model the search needs): its values are reported, its
	// verdict not followed (prune.Stage).
	again := pr != nil && pr.Trained(model)
	if pr != nil {
		// Each epoch's validation value goes to the pruner shared by the
		// stage's trials; its verdict may end the training there.
		cfg.Stop = func(st nn.EpochStats) bool {
			v := st.ValAccuracy
			if pr.Settings.Metric == "val_loss" {
				v = st.ValLoss
			}
			if math.IsNaN(v) {
				return false
			}
			curve = append(curve, [2]float64{float64(st.Epoch), v})
			stop, reason := pr.Report(key, st.Epoch, v)
			// The last epoch's verdict stops nothing: the training has
			// run its budget and is a full measurement.
			if stop = stop && !again && st.Epoch < cfg.Epochs; stop {
				t.pruned = reason
				span.AddEvent("pruned", trace.WithAttributes(attribute.Int("epoch", st.Epoch), attribute.String("reason", reason)))
			}
			return stop
		}
	}
	start := time.Now()
	t.model, t.rep, err = s.trainer.Fit(ctx, spec, train, prepared.Validation, cfg)
	t.seconds = time.Since(start).Seconds()
	if pr != nil && ctx.Err() == nil {
		// The pruner learns how the training ended, whichever way it did,
		// unless the stage run was canceled under it.
		pr.Done(key, model, curve, err == nil && t.pruned == "")
	}
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, ctxErr
		}
		t.err = err
		return t, nil
	}
	t.test = prepared.Test
	// Measured in the compact form, as every variant is (see trial).
	compact, err := nn.Compress(t.model, nn.Compression{})
	if err != nil {
		t.err = err
		return t, nil
	}
	if t.measured, err = nn.Evaluate(compact, t.test); err != nil {
		t.err = err
	}
	t.header = modelfile.HeaderOf(preps.Dataset(), prepared.Spec.String(), "", 0)
	t.transform = prepared.Transform
	return t, nil
}

// trial trains (unless shared holds its group's model) and measures one
// candidate. Its model file is file (nil when the trial failed). Its
// error is only ctx's: every other problem is the result's.
func (s *Stage) trial(ctx context.Context, c tables.Candidate, preps *Preparations, shared *trained, pr *prune.Stage) (r tables.Result, file []byte, t *trained, err error) {
	r = tables.NewResult(c)
	r.Repeatable = true // the next repeat trains from a seed of its own
	seed := RepeatSeed(s.seed, TrainingKey(c, s.epochsOf(c)), c.Repeat)
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName).Start(ctx, TrialName(c), trace.WithAttributes(append(CandidateAttributes(c),
		attribute.Int("epochs", s.epochsOf(c)), attribute.Int64("seed", int64(seed)))...))
	defer span.End()
	if sc := span.SpanContext(); sc.HasTraceID() {
		r.TraceID = sc.TraceID().String()
	}
	fail := func(e error) {
		r.Status, r.Error = tables.StatusFailed, e.Error()
		span.RecordError(e)
		span.SetStatus(codes.Error, e.Error())
		span.SetAttributes(attribute.String("status", r.Status), attribute.Int("epochs_run", int(r.EpochsRun)))
	}
	defer func() {
		// A bug in one trial must not take the others down with it.
		if p := recover(); p != nil {
			traceID := r.TraceID
			r = tables.NewResult(c)
			r.TraceID, r.Repeatable = traceID, true
			fail(fmt.Errorf("internal error: %v", p))
			if t == nil {
				t = &trained{from: c.ID, err: fmt.Errorf("internal error in trial %s: %v", c.ID, p)}
			}
			file, err = nil, nil
		}
	}()

	t = shared
	if t == nil {
		if t, err = s.train(ctx, span, c, preps, pr); err != nil {
			span.SetStatus(codes.Error, "canceled")
			return r, nil, nil, err
		}
	} else {
		span.SetAttributes(attribute.String("model_from", t.from))
	}
	r.TrainSeconds, r.EpochsRun = t.seconds, int32(t.rep.EpochsRun)
	if t.samples > 0 {
		// The row says how much data the model saw: every training
		// row's count when the candidate left samples unset.
		r.Samples = t.samples
	}
	if t.err != nil {
		fail(t.err)
		return r, nil, t, nil
	}
	if r.Params == 0 {
		// A candidate may leave the counting to this stage.
		r.Params, r.FLOPs = t.model.Params(), t.model.FLOPs()
	}
	comp, e := Compression(c)
	if e != nil {
		fail(e)
		return r, nil, t, nil
	}
	r.BestEpoch, r.ValLoss, r.StoppedBy = int32(t.rep.BestEpoch), t.rep.BestValLoss, t.rep.StoppedBy
	r.PeakBytes = t.rep.PeakBytes
	if comp != (nn.Compression{}) {
		r.AccuracyBefore, r.LossBefore, r.RMSEBefore = t.measured.Accuracy, t.measured.Loss, t.measured.RMSE
	}
	// The model measured is the model kept: the compact form (with no
	// compression asked, the float32 weights as stored), so that the
	// kept file predicts exactly what its row records.
	model, e := nn.Compress(t.model, comp)
	if e != nil {
		fail(e)
		return r, nil, t, nil
	}
	r.PeakBytes += model.Bytes()
	// A pruned model counts the weights it stores (nn.Compact.Params);
	// the dense count stays beside it.
	if p := model.Params(); p != r.Params {
		r.DenseParams, r.Params = r.Params, p
	}
	m, e := nn.Evaluate(model, t.test)
	if e != nil {
		fail(e)
		return r, nil, t, nil
	}
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		fail(fmt.Errorf("%w: the test loss is %g", nn.ErrDiverged, m.Loss))
		return r, nil, t, nil
	}
	r.Accuracy, r.Loss, r.RMSE, r.R2 = m.Accuracy, m.Loss, m.RMSE, m.R2
	meas := Measure(model, t.test, s.latencySamples, s.throughputBatch)
	r.LatencyP50Ms, r.LatencyP95Ms, r.ThroughputPerS = meas.P50Ms, meas.P95Ms, meas.ThroughputPerS
	r.PeakBytes += meas.Bytes
	r.ModelBytes, r.NonZeroParams = model.Bytes(), model.NonZero()
	if t.pruned != "" {
		// Stopped by the pruner: its values are those of the best weights
		// of the epochs it ran, no measurement at full training, and it
		// keeps no model.
		r.Status, r.Error = tables.StatusPruned, t.pruned
		span.SetAttributes(ResultAttributes(r)...)
		span.SetStatus(codes.Ok, "")
		return r, nil, t, nil
	}
	h := t.header
	h.Quantize, h.PruneFraction = cmp.Or(c.Quantize, tables.None), c.PruneFraction
	if file, e = modelfile.Encode(h, t.transform, model); e != nil {
		fail(fmt.Errorf("keep the model: %w", e))
		return r, nil, t, nil
	}
	r.Status = tables.StatusOK

	attrs := ResultAttributes(r)
	span.SetAttributes(attrs...)
	span.SetStatus(codes.Ok, "")
	return r, file, t, nil
}

// Measurement is a model's measured speed.
type Measurement struct {
	P50Ms, P95Ms   float64
	ThroughputPerS float64
	// Bytes is the size of the predictors' buffers.
	Bytes int64
}

// warmup passes run before latency is timed, so that caches and branch
// predictors hold the model as they would in service.
const warmup = 10

// minThroughputTime is how long throughput is timed at least.
const minThroughputTime = 50 * time.Millisecond

// Measure times samples batch-1 forward passes over the rows of d, one by
// one, and full batches of batch rows for at least 50 ms (and at least two
// batches).
func Measure(m nn.Model, d *nn.Data, samples, batch int) Measurement {
	one := m.NewPredictor(1)
	row := func(i int) []float32 { i %= d.Rows; return d.X[i*d.Cols : (i+1)*d.Cols] }
	for i := range warmup {
		one.Predict(row(i), 1)
	}
	times := make([]float64, samples)
	for i := range times {
		x := row(i)
		t0 := time.Now()
		one.Predict(x, 1)
		times[i] = float64(time.Since(t0).Nanoseconds()) / 1e6
	}
	slices.Sort(times)
	out := Measurement{P50Ms: NearestRank(times, 0.5), P95Ms: NearestRank(times, 0.95)}

	many := m.NewPredictor(batch)
	x := make([]float32, batch*d.Cols)
	for i := range batch {
		copy(x[i*d.Cols:], row(i))
	}
	many.Predict(x, batch)
	reps := 0
	t0 := time.Now()
	for reps < 2 || time.Since(t0) < minThroughputTime {
		many.Predict(x, batch)
		reps++
	}
	out.ThroughputPerS = float64(reps*batch) / time.Since(t0).Seconds()
	out.Bytes = one.Bytes() + many.Bytes() + 4*int64(len(x)) + 8*int64(len(times))
	return out
}

// NearestRank returns the q-quantile of sorted values by the nearest-rank
// method: the smallest value with at least q of the values at or below it.
func NearestRank(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	k := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}
