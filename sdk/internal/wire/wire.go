// Package wire is the plugin end of the stage protocol: it implements the
// generated StageServiceServer on top of a Backend, which the sdk package
// provides. It does not import the sdk package (the sdk imports it), so
// everything stage-specific — decoding configs, building stages, classifying
// their errors — crosses over through Backend.
package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// Backend is what the sdk provides to serve its Set.
type Backend interface {
	// Describe returns the plugin description as JSON.
	Describe() ([]byte, error)
	// Configure validates a config value for a stage kind.
	Configure(ctx context.Context, kind string, config cty.Value) []*stagepb.Diagnostic
	// Prepare decodes a config and builds the stage of one Run. Its error is
	// classified by Classify (a config problem becomes KIND_CONFIG).
	Prepare(ctx context.Context, kind string, config cty.Value) (*Job, error)
	// Classify turns an error of Prepare or a Job into a wire error.
	Classify(err error) *stagepb.Error
}

// Job is one prepared stage run.
type Job struct {
	// Outputs are the stage's output ports. A port with a schema gets an
	// empty stream of that schema when the stage writes nothing to it.
	Outputs []OutputPort
	Run     func(ctx context.Context, rc *RunContext) error
	// Close, if set, is called once after Run.
	Close func(ctx context.Context) error
}

// OutputPort is a declared output port.
type OutputPort struct {
	Name   string
	Schema *arrow.Schema
}

// ErrNotConnected is returned by RunContext.Reader for a port the host does
// not send.
var ErrNotConnected = errors.New("port not connected")

// Options configure a Server.
type Options struct {
	Logger     hclog.Logger
	Allocator  memory.Allocator
	ChunkBytes int64
	Tracer     trace.Tracer
	// ForceFlush, if set, runs at the end of every Run call, before the
	// result goes out: the host may kill the process as soon as it has it.
	ForceFlush func(context.Context) error
	// Plugin is the plugin's name, for span attributes.
	Plugin string
}

// Server implements stagepb.StageServiceServer.
type Server struct {
	stagepb.UnimplementedStageServiceServer
	backend Backend
	opts    Options
}

var _ stagepb.StageServiceServer = (*Server)(nil)

// NewServer returns a server for backend.
func NewServer(b Backend, o Options) *Server {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = stagerpc.DefaultChunkBytes
	}
	if o.Tracer == nil {
		o.Tracer = noop.NewTracerProvider().Tracer("")
	}
	return &Server{backend: b, opts: o}
}

func (s *Server) Describe(context.Context, *stagepb.DescribeRequest) (*stagepb.DescribeResponse, error) {
	js, err := s.backend.Describe()
	if err != nil {
		return nil, status.Errorf(grpccodes.Internal, "describe: %v", err)
	}
	resp := &stagepb.DescribeResponse{DescriptionJson: js}
	if stagerpc.FilesSupported {
		resp.Features = append(resp.Features, stagepb.Feature_FEATURE_INPUT_FILES)
	}
	return resp, nil
}

func (s *Server) Configure(ctx context.Context, req *stagepb.ConfigureRequest) (*stagepb.ConfigureResponse, error) {
	val, err := stagerpc.DecodeConfig(req.GetConfigMsgpack(), req.GetConfigTypeJson())
	if err != nil {
		return &stagepb.ConfigureResponse{Diagnostics: []*stagepb.Diagnostic{{
			Severity: stagepb.Diagnostic_SEVERITY_ERROR,
			Summary:  "Unreadable config value",
			Detail:   err.Error(),
		}}}, nil
	}
	return &stagepb.ConfigureResponse{Diagnostics: s.backend.Configure(ctx, req.GetKind(), val)}, nil
}

// Run serves one stage run. Whatever the stage does, the call ends with one
// in-band RunResult or Error; a gRPC error only means the stream itself
// broke.
func (s *Server) Run(stream stagepb.StageService_RunServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(grpccodes.InvalidArgument, "the first message of a run must be RunStart")
	}
	r := &run{
		srv:     s,
		stream:  stream,
		start:   start,
		inboxes: map[string]*stagerpc.Inbox{},
		readers: map[string]array.RecordReader{},
		writers: map[string]*stagerpc.PortWriter{},
		gates:   map[string]*stagerpc.Gate{},
	}
	return r.serve(stream.Context())
}

type run struct {
	srv    *Server
	stream stagepb.StageService_RunServer
	start  *stagepb.RunStart
	sendMu sync.Mutex

	mu      sync.Mutex
	inboxes map[string]*stagerpc.Inbox
	readers map[string]array.RecordReader
	writers map[string]*stagerpc.PortWriter
	runCtx  context.Context

	// gates has a lock of its own: RunContext.Reader holds mu while it
	// waits for a port's first message, and the receive loop, which must
	// go on delivering that message, takes gatesMu to hand out credit.
	gatesMu sync.Mutex
	gates   map[string]*stagerpc.Gate
}

func (r *run) send(m *stagepb.RunResponse) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	return r.stream.Send(m)
}

func (r *run) serve(ctx context.Context) error {
	o := r.srv.opts
	ctx, span := o.Tracer.Start(ctx, "stage "+r.start.GetKind(), trace.WithAttributes(
		attribute.String("plugin", o.Plugin),
		attribute.String("kind", r.start.GetKind()),
		attribute.String("stage", r.start.GetStage()),
		attribute.Int("pid", os.Getpid()),
		attribute.Int("round", int(r.start.GetRound())),
	))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.runCtx = ctx

	for _, p := range r.start.GetInputPorts() {
		r.inboxes[p] = stagerpc.NewInbox(p, stagerpc.InitialCredit, r.grant)
	}
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		if err := r.receive(); err != nil {
			cancel(err)
		}
	}()

	rowsOut, runErr := r.execute(ctx)

	var final *stagepb.RunResponse
	if runErr != nil {
		e := r.srv.backend.Classify(runErr)
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); errors.Is(cause, stagerpc.ErrProtocol) {
				e.Kind, e.Message = stagepb.Error_KIND_INTERNAL, cause.Error()
			} else {
				// Whatever the stage made of it, the run was cancelled.
				e.Kind = stagepb.Error_KIND_CANCELED
			}
		}
		span.RecordError(runErr)
		span.SetStatus(codes.Error, e.GetMessage())
		final = &stagepb.RunResponse{Msg: &stagepb.RunResponse_Error{Error: e}}
	} else {
		var total int64
		for _, n := range rowsOut {
			total += n
		}
		span.SetAttributes(attribute.Int64("rows_out", total))
		final = &stagepb.RunResponse{Msg: &stagepb.RunResponse_Result{Result: &stagepb.RunResult{RowsOut: rowsOut}}}
	}
	span.End()
	if o.ForceFlush != nil {
		// A fresh context: the run's own may be cancelled, and the spans of
		// a cancelled run matter most.
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		if err := o.ForceFlush(fctx); err != nil {
			o.Logger.Warn("flushing spans", "error", err)
		}
		fcancel()
	}
	sendErr := r.send(final)
	r.closeInputs(errors.New("run finished"))
	// The host closes its side once it has the final message; wait for that
	// (briefly) so the receive loop is not left reading a finished stream.
	select {
	case <-recvDone:
	case <-time.After(recvDrainTimeout):
	}
	return sendErr
}

// execute prepares and runs the job, then ends its output streams.
func (r *run) execute(ctx context.Context) (rowsOut map[string]int64, err error) {
	o := r.srv.opts
	val, err := stagerpc.DecodeConfig(r.start.GetConfigMsgpack(), r.start.GetConfigTypeJson())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadConfigValue, err)
	}
	job, err := r.srv.backend.Prepare(ctx, r.start.GetKind(), val)
	if err != nil {
		return nil, err
	}
	if job.Close != nil {
		defer func() {
			if cerr := job.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	declared := map[string]*arrow.Schema{}
	r.mu.Lock()
	for _, p := range job.Outputs {
		declared[p.Name] = p.Schema
		g := stagerpc.NewGate(stagerpc.InitialCredit)
		r.gatesMu.Lock()
		r.gates[p.Name] = g
		r.gatesMu.Unlock()
		r.writers[p.Name] = stagerpc.NewPortWriter(p.Name, g, r.sendData, stagerpc.WriterOptions{
			Allocator: o.Allocator, ChunkBytes: o.ChunkBytes,
		})
	}
	r.mu.Unlock()

	rc := &RunContext{Start: r.start, Allocator: o.Allocator, Logger: o.Logger, r: r}
	if err := r.runJob(ctx, job, rc); err != nil {
		return nil, err
	}
	rowsOut = map[string]int64{}
	names := make([]string, 0, len(job.Outputs))
	for _, p := range job.Outputs {
		names = append(names, p.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		w := r.writers[name]
		if err := w.Finish(ctx, declared[name]); err != nil {
			return nil, fmt.Errorf("ending output port %q: %w", name, err)
		}
		if err := r.send(&stagepb.RunResponse{Msg: &stagepb.RunResponse_PortEnd{PortEnd: &stagepb.PortEnd{Port: name}}}); err != nil {
			return nil, fmt.Errorf("ending output port %q: %w", name, err)
		}
		rowsOut[name] = w.Rows()
	}
	return rowsOut, nil
}

var errBadConfigValue = errors.New("unreadable config value")

// ErrPanic is wrapped by the error of a stage that panicked.
var ErrPanic = errors.New("stage panicked")

func (r *run) runJob(ctx context.Context, job *Job, rc *RunContext) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.srv.opts.Logger.Error("stage panicked", "kind", r.start.GetKind(), "stage", r.start.GetStage(),
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", ErrPanic, p)
		}
	}()
	defer rc.releaseReaders()
	// Batches of an input port read by path point into a mapped file: were
	// it cut short under the stage all the same, reading past its end
	// would kill the process (SIGBUS). This makes it a panic, recovered as
	// any other, in the stage's own goroutine.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return job.Run(ctx, rc)
}

func (r *run) sendData(d *stagepb.ArrowData) error {
	return r.send(&stagepb.RunResponse{Msg: &stagepb.RunResponse_Data{Data: d}})
}

func (r *run) grant(port string, n int) {
	_ = r.send(&stagepb.RunResponse{Msg: &stagepb.RunResponse_Credit{Credit: &stagepb.Credit{Port: port, Messages: int32(n)}}})
}

// receive reads the host's messages until the host closes its side or the
// stream breaks. It never blocks on a consumer.
func (r *run) receive() error {
	for {
		m, err := r.stream.Recv()
		if err == io.EOF {
			r.closeInputs(fmt.Errorf("%w: host closed the stream before ending every input port", stagerpc.ErrProtocol))
			// No credit can come any more: a writer waiting for some would
			// wait forever.
			r.closeGates(fmt.Errorf("%w: host closed the stream before the run ended", stagerpc.ErrProtocol))
			return nil
		}
		if err != nil {
			err = fmt.Errorf("receiving from host: %w", err)
			r.closeInputs(err)
			r.closeGates(err)
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *stagepb.RunRequest_Data:
			b := r.inboxes[msg.Data.GetPort()]
			if b == nil {
				err = fmt.Errorf("%w: data for input port %q, which the run did not announce", stagerpc.ErrProtocol, msg.Data.GetPort())
			} else {
				err = b.Deliver(msg.Data)
			}
		case *stagepb.RunRequest_PortEnd:
			if b := r.inboxes[msg.PortEnd.GetPort()]; b != nil {
				b.End()
			}
		case *stagepb.RunRequest_Credit:
			r.gatesMu.Lock()
			g := r.gates[msg.Credit.GetPort()]
			r.gatesMu.Unlock()
			if g != nil {
				g.Add(int(msg.Credit.GetMessages()))
			}
		default:
			err = fmt.Errorf("%w: unexpected %T during a run", stagerpc.ErrProtocol, msg)
		}
		if err != nil {
			r.closeInputs(err)
			r.closeGates(err)
			return err
		}
	}
}

func (r *run) closeInputs(err error) {
	for _, b := range r.inboxes {
		b.Abort(err)
	}
}

func (r *run) closeGates(err error) {
	r.gatesMu.Lock()
	defer r.gatesMu.Unlock()
	for _, g := range r.gates {
		g.Close(err)
	}
}

const (
	flushTimeout     = 5 * time.Second
	recvDrainTimeout = 2 * time.Second
)

// RunContext is what a Job sees of its Run call.
type RunContext struct {
	Start     *stagepb.RunStart
	Allocator memory.Allocator
	Logger    hclog.Logger
	r         *run
}

// Reader returns the reader of an input port. It waits for the port's
// schema. The reader stays owned by the RunContext.
func (rc *RunContext) Reader(port string) (array.RecordReader, error) {
	r := rc.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if rd, ok := r.readers[port]; ok {
		return rd, nil
	}
	if files := r.inputFiles(port); files != nil {
		fr, err := stagerpc.OpenFiles(port, files.GetFiles(), rc.Allocator)
		if err != nil {
			return nil, stagerpc.PortError("input", port, err)
		}
		pr := &portReader{RecordReader: fr, port: port}
		r.readers[port] = pr
		return pr, nil
	}
	b := r.inboxes[port]
	if b == nil {
		return nil, fmt.Errorf("input port %q: %w", port, ErrNotConnected)
	}
	rd, err := b.Reader(ipc.WithAllocator(rc.Allocator))
	if errors.Is(err, io.EOF) {
		// The host ended the port without even a schema: an empty stream.
		empty, err := array.NewRecordReader(arrow.NewSchema(nil, nil), nil)
		if err != nil {
			return nil, err
		}
		r.readers[port] = empty
		return empty, nil
	}
	if err != nil {
		if cerr := context.Cause(r.runCtx); cerr != nil && !errors.As(err, new(*stagerpc.DamagedError)) {
			return nil, fmt.Errorf("input port %q: %w", port, cerr)
		}
		return nil, stagerpc.PortError("input", port, err)
	}
	pr := &portReader{RecordReader: rd, port: port}
	r.readers[port] = pr
	return pr, nil
}

// inputFiles is the host's list of files for port, if it sends the port
// that way. The paths are the host's: a plugin opens no other.
func (r *run) inputFiles(port string) *stagepb.InputFiles {
	for _, f := range r.start.GetInputFiles() {
		if f.GetPort() == port {
			return f
		}
	}
	return nil
}

// portReader names its port in its error, which the stage may return as
// it is.
type portReader struct {
	array.RecordReader
	port string
}

func (p *portReader) Err() error {
	if err := p.RecordReader.Err(); err != nil {
		return stagerpc.PortError("input", p.port, err)
	}
	return nil
}

func (rc *RunContext) releaseReaders() {
	r := rc.r
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, rd := range r.readers {
		rd.Release()
		delete(r.readers, p)
	}
}

// Writer returns the writer of a declared output port.
func (rc *RunContext) Writer(port string) (*stagerpc.PortWriter, error) {
	r := rc.r
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.writers[port]
	if w == nil {
		names := make([]string, 0, len(r.writers))
		for n := range r.writers {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("stage %s has no output port %q (ports: %v)", r.start.GetKind(), port, names)
	}
	return w, nil
}

// Progress sends a progress event to the host.
func (rc *RunContext) Progress(p *stagepb.Progress) error {
	return rc.r.send(&stagepb.RunResponse{Msg: &stagepb.RunResponse_Progress{Progress: p}})
}

// IsBadConfigValue reports whether err is about a config value that could not
// be decoded at all.
func IsBadConfigValue(err error) bool { return errors.Is(err, errBadConfigValue) }
