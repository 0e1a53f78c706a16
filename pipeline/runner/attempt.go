package runner

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// Attempt is one attempt at a run, on either engine: the run's span, the
// attempt's start and end in the manifest, and the events that say so.
// Both engines begin and end a run through it, so what a run records of
// itself does not depend on where its stages ran.
type Attempt struct {
	run   *runstore.Run
	span  trace.Span
	start time.Time
	emit  func(Event)
}

// BeginAttempt starts the run's span (ctx carries it) and records the
// attempt's start; engine is "" for a local run. The caller holds the
// run's lock.
func BeginAttempt(ctx context.Context, run *runstore.Run, p *config.Pipeline, engine string, emit func(Event)) (context.Context, *Attempt, error) {
	name := "pipeline"
	if len(p.Paths) > 0 {
		name = p.Paths[0]
	}
	attrs := []attribute.KeyValue{
		attribute.StringSlice("file", p.Paths),
		attribute.String("run_id", run.ID()),
		attribute.String("vars_hash", p.Hash),
	}
	if engine != "" {
		attrs = append(attrs, attribute.String("engine", engine))
	}
	ctx, span := tracer().Start(ctx, "run "+name, trace.WithAttributes(attrs...))
	if err := run.Begin(span.SpanContext().TraceID().String(), engine); err != nil {
		span.End()
		return ctx, nil, err
	}
	a := &Attempt{run: run, span: span, start: time.Now(), emit: emit}
	a.emit(Event{Type: EventRunStarted, RunID: run.ID()})
	return ctx, a, nil
}

// End records how the attempt ended (runErr nil: it succeeded) and
// returns the run's error.
func (a *Attempt) End(runErr error) error {
	if runErr != nil {
		a.span.RecordError(runErr)
		a.span.SetStatus(codes.Error, runErr.Error())
	}
	a.span.SetAttributes(attribute.String("status", runstore.StatusOf(runErr)))
	a.span.End()
	status, err := a.run.End(runErr)
	a.emit(Event{Type: EventRunFinished, RunID: a.run.ID(), Status: status, Elapsed: time.Since(a.start), Error: errString(err)})
	return err
}
