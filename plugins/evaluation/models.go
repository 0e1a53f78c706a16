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
	_, err := mw.Keep(tables.NewModel(r, modelfile.Format, file))
	return err
}

// Keep writes one trial's models row, unless its bytes are larger than a
// row carries (MaxModelRowBytes): that is said in the log, and kept is
// false.
func (mw *ModelWriter) Keep(m tables.Model) (kept bool, err error) {
	if len(m.Bytes) > MaxModelRowBytes {
		sdk.Logger(mw.ctx).Warn("model not kept: its file is larger than a models row carries",
			"candidate", m.ID, "repeat", m.Repeat, "bytes", len(m.Bytes), "max_bytes", MaxModelRowBytes)
		return false, nil
	}
	return true, mw.Write(m)
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
