package evaluation

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/modelfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// MaxModelRowBytes bounds the model file a models row carries: one row
// travels as one Arrow message, and the wire takes at most 32 MiB. A
// trial whose file is larger keeps no model (its results row is whole;
// the log says so); sweetspot's answers are small models, so this bounds
// only the widest candidates of a search.
const MaxModelRowBytes = 24 << 20

// ModelWriter writes models rows as trials finish, from any goroutine.
// A trial's models row is written before its results row: the results
// row is what marks a trial finished on resume, so a finished trial's
// model is always in the journal with it.
type ModelWriter struct {
	ctx context.Context
	mu  sync.Mutex
	w   sdk.BatchWriter
}

// NewModelWriter writes to the models port's writer.
func NewModelWriter(ctx context.Context, w sdk.BatchWriter) *ModelWriter {
	return &ModelWriter{ctx: ctx, w: w}
}

// Write sends rows as one batch.
func (mw *ModelWriter) Write(ms ...tables.Model) error {
	if len(ms) == 0 {
		return nil
	}
	rec := tables.BuildModels(sdk.Allocator(mw.ctx), ms)
	defer rec.Release()
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if err := mw.w.Write(rec); err != nil {
		return fmt.Errorf("write port %s: %w", ModelsPort, err)
	}
	return nil
}

// keep writes the models row of a finished trial, unless it failed or
// its file is too large for a row (said in the log).
func (mw *ModelWriter) keep(r tables.Result, file []byte) error {
	if file == nil {
		return nil
	}
	if len(file) > MaxModelRowBytes {
		sdk.Logger(mw.ctx).Warn("model not kept: its file is larger than a models row carries",
			"candidate", r.ID, "repeat", r.Repeat, "bytes", len(file), "max_bytes", MaxModelRowBytes)
		return nil
	}
	return mw.Write(tables.NewModel(r, modelfile.Format, file))
}

// resumedModels reads the models rows of trials finished before an
// interruption, by trial; none when the port is not connected.
func resumedModels(in sdk.Inputs) (map[string]tables.Model, error) {
	r, err := in.Reader(ResumeModelsPort)
	if errors.Is(err, sdk.ErrNotConnected) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]tables.Model{}
	for r.Next() {
		ms, err := tables.ReadModels(r.RecordBatch())
		if err != nil {
			return nil, &sdk.InputError{Port: ResumeModelsPort, Row: -1, Err: err}
		}
		for _, m := range ms {
			out[trialKey(tables.Candidate{ID: m.ID, Round: m.Round, Repeat: m.Repeat})] = m
		}
	}
	return out, r.Err()
}

// skipFinished picks up an interrupted run as SkipFinished does, with
// the models: a finished trial's journalled model is written again
// before its result. A finished trial is never trained again, even when
// no model of it was journalled (a journal written before models were
// kept): it then has no models row.
func skipFinished(in sdk.Inputs, rw *ResultWriter, mw *ModelWriter, cands []tables.Candidate) ([]tables.Candidate, int, error) {
	done, err := resumedResults(in)
	if err != nil || len(done) == 0 {
		return cands, 0, err
	}
	kept, err := resumedModels(in)
	if err != nil {
		return nil, 0, err
	}
	var (
		todo  []tables.Candidate
		again []tables.Result
		ms    []tables.Model
	)
	for _, c := range cands {
		k := trialKey(c)
		r, finished := done[k]
		if m, ok := kept[k]; ok && finished {
			ms = append(ms, m)
		}
		if finished {
			again = append(again, r)
			continue
		}
		todo = append(todo, c)
	}
	if err := mw.Write(ms...); err != nil {
		return nil, 0, err
	}
	if len(again) > 0 {
		if err := rw.Write(again...); err != nil {
			return nil, 0, err
		}
	}
	return todo, len(again), nil
}
