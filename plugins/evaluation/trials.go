package evaluation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"

	"go.opentelemetry.io/otel/attribute"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// ResultWriter writes results rows as trials finish, from any goroutine,
// so the host's journal holds every finished trial if the run is
// interrupted. Stages that run trials (evaluation, exec) share it.
type ResultWriter struct {
	ctx context.Context
	mu  sync.Mutex
	w   sdk.BatchWriter
}

// NewResultWriter writes to the results port's writer.
func NewResultWriter(ctx context.Context, w sdk.BatchWriter) *ResultWriter {
	return &ResultWriter{ctx: ctx, w: w}
}

// Write sends rows as one batch.
func (rw *ResultWriter) Write(rs ...tables.Result) error {
	rec := tables.BuildResults(sdk.Allocator(rw.ctx), rs)
	defer rec.Release()
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if err := rw.w.Write(rec); err != nil {
		return fmt.Errorf("write port %s: %w", OutputPort, err)
	}
	return nil
}

// SkipFinished picks up an interrupted run: it reads the rows the host
// hands back on the resume port, writes them again (so the output is
// whole) and returns the candidates whose trials still have to run. With
// the resume port unconnected it returns cands unchanged.
//
// A stage that keeps models passes its ModelWriter (nil otherwise): a
// finished trial's journalled models row (ResumeModelsPort) is written
// again before its result. A finished trial is never run again, even when
// no model of it was journalled (a journal written before models were
// kept): it then has no models row.
func SkipFinished[C any](in sdk.Inputs, rw *ResultWriter, mw *ModelWriter, cands []C, candidateOf func(C) tables.Candidate) (todo []C, finished int, err error) {
	done, err := resumedResults(in)
	if err != nil || len(done) == 0 {
		return cands, 0, err
	}
	var kept map[string]tables.Model
	if mw != nil {
		if kept, err = resumedModels(in); err != nil {
			return nil, 0, err
		}
	}
	var (
		again []tables.Result
		ms    []tables.Model
	)
	for _, c := range cands {
		k := trialKey(candidateOf(c))
		r, finished := done[k]
		if !finished {
			todo = append(todo, c)
			continue
		}
		if m, ok := kept[k]; ok {
			ms = append(ms, m)
		}
		again = append(again, r)
	}
	if mw != nil {
		if err := mw.Write(ms...); err != nil {
			return nil, 0, err
		}
	}
	if len(again) > 0 {
		if err := rw.Write(again...); err != nil {
			return nil, 0, err
		}
	}
	return todo, len(again), nil
}

// trialKey identifies a trial across an interruption: its round, its
// candidate and its repeat, so that a resumed stage trains no finished
// repeat again and takes no repeat for another.
func trialKey(c tables.Candidate) string {
	return fmt.Sprintf("%d/%s/%d", c.Round, c.ID, c.Repeat)
}

// resumedResults reads the rows of trials finished before an interruption,
// when the host resumes a run; none otherwise.
func resumedResults(in sdk.Inputs) (map[string]tables.Result, error) {
	r, err := in.Reader(ResumePort)
	if errors.Is(err, sdk.ErrNotConnected) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]tables.Result{}
	for r.Next() {
		rs, err := tables.ReadResults(r.RecordBatch())
		if err != nil {
			return nil, &sdk.InputError{Port: ResumePort, Row: -1, Err: err}
		}
		for _, res := range rs {
			out[trialKey(res.Candidate)] = res
		}
	}
	return out, r.Err()
}

// CandidateAttributes are the span attributes of a trial of c, the same
// for every stage that runs trials, so traces read alike whichever ran.
func CandidateAttributes(c tables.Candidate) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("candidate_id", c.ID),
		attribute.String("name", c.Name),
		attribute.String("family", c.Family),
		attribute.String("family_kind", c.Kind),
		attribute.Float64("size", c.Size),
		attribute.Int("width", int(c.Width)),
		attribute.Int("depth", int(c.Depth)),
		attribute.Int64("params", c.Params),
		attribute.Int64("flops", c.FLOPs),
		attribute.Float64("learning_rate", c.LearningRate),
		attribute.Int("batch_size", int(c.BatchSize)),
		attribute.Int("epochs", int(c.Epochs)),
		attribute.String("preprocess", c.Preprocess),
		attribute.String("quantize", c.Quantize),
		attribute.Float64("prune_fraction", c.PruneFraction),
		attribute.Int("repeat", int(c.Repeat)),
	}
	if len(c.Knobs) > 0 {
		attrs = append(attrs, attribute.String("knobs", c.Knobs.String()))
	}
	return attrs
}

// ResultAttributes are the span attributes of a finished trial: its status,
// measurements and training figures. Measurements that do not apply (NaN,
// or -1 for sizes) are left out rather than recorded as numbers.
func ResultAttributes(r tables.Result) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		attribute.String("status", r.Status),
		attribute.Float64("train_seconds", r.TrainSeconds),
		attribute.Int("epochs_run", int(r.EpochsRun)),
	}
	if r.StoppedBy != "" {
		attrs = append(attrs, attribute.String("stopped_by", r.StoppedBy))
	}
	for _, kv := range []struct {
		k string
		v float64
	}{
		{"accuracy", r.Accuracy}, {"loss", r.Loss}, {"rmse", r.RMSE}, {"r2", r.R2},
		{"latency_p50_ms", r.LatencyP50Ms}, {"latency_p95_ms", r.LatencyP95Ms},
		{"throughput_per_s", r.ThroughputPerS}, {"accuracy_before", r.AccuracyBefore},
	} {
		if !math.IsNaN(kv.v) {
			attrs = append(attrs, attribute.Float64(kv.k, kv.v))
		}
	}
	for _, kv := range []struct {
		k string
		v int64
	}{{"model_bytes", r.ModelBytes}, {"peak_bytes", r.PeakBytes}} {
		if kv.v >= 0 {
			attrs = append(attrs, attribute.Int64(kv.k, kv.v))
		}
	}
	return attrs
}
