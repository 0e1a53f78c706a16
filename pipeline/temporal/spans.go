package temporal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// A loop round and a stage whose trials run as separate activities are
// spans whose children start on other machines, in other activities,
// before the span itself can be recorded (a span is recorded where it
// ends). Their ids are therefore chosen ahead: derived from the run's trace
// id and the span's place in the run, so workflow code computes them
// deterministically and hands them to the activities as the parent of what
// they do; the span itself is recorded at its end, under the same id, by
// whichever worker ends it (SpanIDGenerator makes that possible).

// tracer is looked up lazily so the worker can install its provider first.
func tracer() trace.Tracer {
	return otel.Tracer("github.com/sweetspot-ml/sweetspot/pipeline/temporal")
}

// SpanRef is a span as workflow code sees it: hex ids, nothing that needs
// a tracer. An empty TraceID means the run is not traced.
type SpanRef struct {
	TraceID string `json:"trace_id,omitempty"`
	SpanID  string `json:"span_id,omitempty"`
}

// Valid reports whether the reference names a span.
func (r SpanRef) Valid() bool { return r.spanContext().IsValid() }

func (r SpanRef) spanContext() trace.SpanContext {
	tid, err1 := trace.TraceIDFromHex(r.TraceID)
	sid, err2 := trace.SpanIDFromHex(r.SpanID)
	if err1 != nil || err2 != nil {
		return trace.SpanContext{}
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
}

// refOf is the reference of a live span.
func refOf(sc trace.SpanContext) SpanRef {
	if !sc.IsValid() {
		return SpanRef{}
	}
	return SpanRef{TraceID: sc.TraceID().String(), SpanID: sc.SpanID().String()}
}

// child returns the id a span with the given place under r gets. It is a
// pure function of the trace and the place, so workflow code may call it.
func (r SpanRef) child(place ...string) SpanRef {
	if r.TraceID == "" {
		return SpanRef{}
	}
	h := sha256.New()
	h.Write([]byte(r.TraceID))
	for _, p := range place {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	sum := h.Sum(nil)
	sid := sum[:8]
	if allZero(sid) {
		sid[7] = 1
	}
	return SpanRef{TraceID: r.TraceID, SpanID: hex.EncodeToString(sid)}
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// withParent returns ctx whose current span is the remote span r, so that
// spans started from it (and, through the plugin protocol, in plugin
// processes) are its children.
func withParent(ctx context.Context, r SpanRef) context.Context {
	sc := r.spanContext()
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

type forcedSpanIDKey struct{}

// withSpanID makes the next span started from ctx take the id sid, when
// the tracer provider uses SpanIDGenerator.
func withSpanID(ctx context.Context, sid trace.SpanID) context.Context {
	return context.WithValue(ctx, forcedSpanIDKey{}, sid)
}

// SpanIDGenerator returns an id generator for a worker's tracer provider
// (telemetry.Config.IDGenerator): random ids, except for the spans this
// package records under ids chosen ahead.
func SpanIDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	for !tid.IsValid() {
		_, _ = rand.Read(tid[:])
	}
	return tid, idGenerator{}.NewSpanID(ctx, tid)
}

func (idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	if sid, ok := ctx.Value(forcedSpanIDKey{}).(trace.SpanID); ok && sid.IsValid() {
		return sid
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		_, _ = rand.Read(sid[:])
	}
	return sid
}

// SpanRecord is a span whose id was chosen ahead, recorded when it ends.
type SpanRecord struct {
	Span   SpanRef   `json:"span"`
	Parent SpanRef   `json:"parent"`
	Name   string    `json:"name"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Attrs  []Attr    `json:"attrs,omitempty"`
	Error  string    `json:"error,omitempty"`
	// RunID routes the span to the run directory's span files.
	RunID string `json:"run_id"`
}

// Attr is a span attribute that survives a JSON round trip.
type Attr struct {
	Key string `json:"k"`
	Str string `json:"s,omitempty"`
	Int *int64 `json:"i,omitempty"`
}

func strAttr(k, v string) Attr { return Attr{Key: k, Str: v} }
func intAttr(k string, v int64) Attr {
	return Attr{Key: k, Int: &v}
}

func (a Attr) kv() attribute.KeyValue {
	if a.Int != nil {
		return attribute.Int64(a.Key, *a.Int)
	}
	return attribute.String(a.Key, a.Str)
}

// record records the span under its chosen id. It needs a tracer provider
// built with SpanIDGenerator; with another, the span gets a random id and
// its children lose their parent.
func (s SpanRecord) record(ctx context.Context) {
	sc := s.Span.spanContext()
	if !sc.IsValid() {
		return
	}
	ctx = withSpanID(withParent(ctx, s.Parent), sc.SpanID())
	attrs := make([]attribute.KeyValue, len(s.Attrs))
	for i, a := range s.Attrs {
		attrs[i] = a.kv()
	}
	_, span := tracer().Start(ctx, s.Name, trace.WithTimestamp(s.Start), trace.WithAttributes(attrs...))
	if s.Error != "" {
		span.RecordError(errors.New(s.Error), trace.WithTimestamp(s.End))
		span.SetStatus(codes.Error, s.Error)
	}
	span.End(trace.WithTimestamp(s.End))
}

// workflowIDAttr is the attribute with which the Temporal interceptor
// names a span's workflow.
const workflowIDAttr = "temporalWorkflowID"

// RunSpanFiles is a span processor for a worker: it appends the spans of
// each run (by trace id) to the run directory's spans/worker-ID.jsonl, so a
// run keeps every worker's spans beside the host's, as a local run does.
type RunSpanFiles struct {
	root, identity string

	mu     sync.Mutex
	traces map[trace.TraceID]string // trace -> run id
	files  map[string]*runFile      // run id -> file
}

type runFile struct {
	f   *os.File
	exp *stdouttrace.Exporter
}

var _ sdktrace.SpanProcessor = (*RunSpanFiles)(nil)

// NewRunSpanFiles returns a processor writing under root (the run store
// root as this worker reaches it).
func NewRunSpanFiles(root, identity string) *RunSpanFiles {
	return &RunSpanFiles{root: root, identity: identity, traces: map[trace.TraceID]string{}, files: map[string]*runFile{}}
}

// route sends the spans of the trace to the run's file from now on.
func (p *RunSpanFiles) route(traceID, runID string) {
	if p == nil {
		return
	}
	tid, err := trace.TraceIDFromHex(traceID)
	if err != nil || runID == "" {
		return
	}
	p.mu.Lock()
	p.traces[tid] = runID
	p.mu.Unlock()
}

// OnStart implements sdktrace.SpanProcessor.
func (p *RunSpanFiles) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd implements sdktrace.SpanProcessor.
func (p *RunSpanFiles) OnEnd(s sdktrace.ReadOnlySpan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	run, ok := p.traces[s.SpanContext().TraceID()]
	if !ok {
		// The Temporal interceptor's spans name their workflow, whose id
		// is the run id: the workflow's own spans may end on this worker
		// before any of the run's activities has run here.
		for _, kv := range s.Attributes() {
			if kv.Key == workflowIDAttr {
				run = kv.Value.AsString()
			}
		}
		if run == "" || run != filepath.Base(run) || strings.HasPrefix(run, ".") {
			return
		}
		if _, err := os.Stat(filepath.Join(p.root, run, "manifest.json")); err != nil {
			return
		}
		p.traces[s.SpanContext().TraceID()] = run
	}
	rf, ok := p.files[run]
	if !ok {
		path := filepath.Join(p.root, run, "spans", "worker-"+fileSafe(p.identity)+".jsonl")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
		if err != nil {
			f.Close()
			return
		}
		rf = &runFile{f: f, exp: exp}
		p.files[run] = rf
	}
	_ = rf.exp.ExportSpans(context.Background(), []sdktrace.ReadOnlySpan{s})
}

// Shutdown implements sdktrace.SpanProcessor: it closes the files.
func (p *RunSpanFiles) Shutdown(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for run, rf := range p.files {
		if err := rf.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("span file of run %s: %w", run, err))
		}
		delete(p.files, run)
	}
	return errors.Join(errs...)
}

// ForceFlush implements sdktrace.SpanProcessor; spans are written as they
// end.
func (p *RunSpanFiles) ForceFlush(context.Context) error { return nil }

// fileSafe makes a worker identity usable in a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, s)
}
