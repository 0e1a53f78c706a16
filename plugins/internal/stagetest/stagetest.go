// Package stagetest runs a stage in process, without the wire, for the
// first-party plugins' unit tests: inputs are slices of batches, outputs are
// collected. sdk/sdktest tests the same stages through the real wire.
package stagetest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Inputs maps each connected input port to its batches; a port absent
// from the map is not connected. The caller keeps ownership of the batches.
type Inputs map[string][]arrow.RecordBatch

// inputs serves Inputs through RecordReaders that, as in the SDK, the stage
// does not release.
type inputs struct {
	ports   Inputs
	readers []array.RecordReader
}

func (in *inputs) Reader(port string) (array.RecordReader, error) {
	batches, ok := in.ports[port]
	if !ok {
		return nil, fmt.Errorf("input port %q: %w", port, sdk.ErrNotConnected)
	}
	if len(batches) == 0 {
		return nil, fmt.Errorf("input port %q: test gave no batch, so no schema", port)
	}
	r, err := array.NewRecordReader(batches[0].Schema(), batches)
	if err != nil {
		return nil, err
	}
	in.readers = append(in.readers, r)
	return r, nil
}

func (in *inputs) release() {
	for _, r := range in.readers {
		r.Release()
	}
	in.readers = nil
}

// Outputs collects what a stage writes. Like the SDK's writer, it holds each
// port to its declared schema and to the schema of its first batch.
type Outputs struct {
	mu       sync.Mutex
	declared map[string]*arrow.Schema
	batches  map[string][]arrow.RecordBatch
}

// Writer implements sdk.Outputs.
func (o *Outputs) Writer(port string) (sdk.BatchWriter, error) {
	if _, ok := o.declared[port]; !ok {
		return nil, fmt.Errorf("no output port %q", port)
	}
	return writerFunc(func(b arrow.RecordBatch) error {
		o.mu.Lock()
		defer o.mu.Unlock()
		if prev := o.batches[port]; len(prev) > 0 {
			if !prev[0].Schema().Equal(b.Schema()) {
				return fmt.Errorf("output port %q: %w: schema changed from %s to %s", port, sdk.ErrSchemaMismatch, prev[0].Schema(), b.Schema())
			}
		} else if d := o.declared[port]; d != nil {
			if gap := sdk.CheckSchema(d, b.Schema()); !gap.OK() {
				return fmt.Errorf("output port %q: %w: %s", port, sdk.ErrSchemaMismatch, strings.Join(gap.Problems(), "; "))
			}
		}
		b.Retain()
		o.batches[port] = append(o.batches[port], b)
		return nil
	}), nil
}

type writerFunc func(arrow.RecordBatch) error

func (f writerFunc) Write(b arrow.RecordBatch) error { return f(b) }

// Batches returns what the stage wrote to port. The batches stay valid
// until the test ends.
func (o *Outputs) Batches(port string) []arrow.RecordBatch {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.batches[port]
}

func (o *Outputs) release() {
	for _, bs := range o.batches {
		for _, b := range bs {
			b.Release()
		}
	}
	o.batches = nil
}

// Run runs st with the given inputs and returns its outputs and error. The
// ports of info bound what the stage may write; collected batches are
// released when the test ends. Without a span in ctx, the run gets one from
// the global tracer provider, as a plugin's run gets one from the SDK.
func Run(t testing.TB, ctx context.Context, info sdk.StageInfo, st sdk.Stage, in Inputs) (*Outputs, error) {
	t.Helper()
	out := &Outputs{declared: map[string]*arrow.Schema{}, batches: map[string][]arrow.RecordBatch{}}
	for _, p := range info.Outputs {
		out.declared[p.Name] = p.Schema
	}
	t.Cleanup(out.release)
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		// The SDK runs every stage inside a span of the tracer provider
		// it serves with, which the stage's own spans then come from;
		// here the process's global provider stands for it.
		var span trace.Span
		ctx, span = otel.Tracer("github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest").Start(ctx, "stage")
		defer span.End()
	}
	ins := &inputs{ports: in}
	defer ins.release()
	err := st.Run(ctx, ins, out)
	if c, ok := st.(sdk.Closer); ok {
		if cerr := c.Close(ctx); cerr != nil && err == nil {
			err = cerr
		}
	}
	return out, err
}

// Concat joins the batches of a port into one, for reading results.
func Concat(t testing.TB, batches []arrow.RecordBatch) arrow.RecordBatch {
	t.Helper()
	if len(batches) == 0 {
		t.Fatal("no batches")
	}
	tbl := array.NewTableFromRecords(batches[0].Schema(), batches)
	defer tbl.Release()
	cols := make([]arrow.Array, tbl.NumCols())
	for i := range cols {
		c, err := array.Concatenate(tbl.Column(i).Data().Chunks(), memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		cols[i] = c
	}
	rec := array.NewRecordBatch(tbl.Schema(), cols, tbl.NumRows())
	for _, c := range cols {
		c.Release()
	}
	t.Cleanup(rec.Release)
	return rec
}
