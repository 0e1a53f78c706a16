// Package stagehost is the host end of the stage protocol: Describe,
// Configure and Run against a connected plugin. It knows nothing of
// processes; sweetspot's plugin host and sdktest put it on top of go-plugin.
package stagehost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc/status"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// Client calls one connected plugin.
type Client struct {
	rpc    stagepb.StageServiceClient
	plugin string
	alloc  memory.Allocator
	chunk  int64
	hook   func(port string, queued int)

	featMu   sync.Mutex
	features map[stagepb.Feature]bool // nil until the plugin said
}

// Option configures a Client.
type Option func(*Client)

// WithPluginName names the plugin in errors.
func WithPluginName(name string) Option { return func(c *Client) { c.plugin = name } }

// WithAllocator sets the allocator of the batches handed to output
// functions; tests pass a checked allocator.
func WithAllocator(a memory.Allocator) Option { return func(c *Client) { c.alloc = a } }

// WithChunkBytes sets the size input batches are split to stay under.
func WithChunkBytes(n int64) Option { return func(c *Client) { c.chunk = n } }

// WithDeliveryHook installs a function called whenever an output message
// arrives, with the number of that port's messages now waiting for the
// consumer. Tests use it to watch flow control.
func WithDeliveryHook(f func(port string, queued int)) Option {
	return func(c *Client) { c.hook = f }
}

// New returns a client of a connected plugin.
func New(rpc stagepb.StageServiceClient, opts ...Option) *Client {
	c := &Client{rpc: rpc, alloc: memory.DefaultAllocator, chunk: stagerpc.DefaultChunkBytes}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Describe asks the plugin for its description.
func (c *Client) Describe(ctx context.Context) (*describe.PluginDescription, error) {
	resp, err := c.rpc.Describe(ctx, &stagepb.DescribeRequest{})
	if err != nil {
		return nil, fmt.Errorf("describing plugin %s: %s", c.plugin, RPCMessage(err))
	}
	c.noteFeatures(resp)
	var d describe.PluginDescription
	if err := json.Unmarshal(resp.GetDescriptionJson(), &d); err != nil {
		return nil, fmt.Errorf("describing plugin %s: invalid description: %w", c.plugin, err)
	}
	return &d, nil
}

func (c *Client) noteFeatures(resp *stagepb.DescribeResponse) {
	fs := map[stagepb.Feature]bool{}
	for _, f := range resp.GetFeatures() {
		fs[f] = true
	}
	c.featMu.Lock()
	c.features = fs
	c.featMu.Unlock()
}

// has reports whether the plugin offers a protocol feature, asking it
// once. A plugin that cannot say offers none.
func (c *Client) has(ctx context.Context, f stagepb.Feature) bool {
	c.featMu.Lock()
	known := c.features != nil
	c.featMu.Unlock()
	if !known {
		resp, err := c.rpc.Describe(ctx, &stagepb.DescribeRequest{})
		if err != nil {
			return false
		}
		c.noteFeatures(resp)
	}
	c.featMu.Lock()
	defer c.featMu.Unlock()
	return c.features[f]
}

// Configure asks the plugin to validate a config value for kind.
func (c *Client) Configure(ctx context.Context, kind string, config cty.Value) (sdk.Diagnostics, error) {
	msg, ty, err := stagerpc.EncodeConfig(config)
	if err != nil {
		return nil, err
	}
	resp, err := c.rpc.Configure(ctx, &stagepb.ConfigureRequest{Kind: kind, ConfigMsgpack: msg, ConfigTypeJson: ty})
	if err != nil {
		return nil, fmt.Errorf("configuring %s with plugin %s: %s", kind, c.plugin, RPCMessage(err))
	}
	return diagnosticsFromProto(resp.GetDiagnostics()), nil
}

// RPCMessage is the text of a gRPC error without its "rpc error: code = "
// wrapping, which users should never see.
func RPCMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// RunRequest is one stage run.
type RunRequest struct {
	Kind, Stage, RunID, WorkDir string
	Round                       int
	Config                      cty.Value
	// Inputs are streamed concurrently, one goroutine per port; InputOrder
	// is the order announced to the plugin (ports missing from it follow,
	// sorted). Run does not Release the readers: the caller owns them, and
	// may do so once Run has returned.
	Inputs     map[string]array.RecordReader
	InputOrder []string
	// InputFiles names, for a port of Inputs, the committed Arrow IPC
	// files its reader reads: files nobody changes any more. A plugin
	// that offers FEATURE_INPUT_FILES gets their paths and maps them
	// itself, and the port's reader is left unread; any other plugin gets
	// the reader's batches on the stream. The plugin's process must reach
	// the paths (it runs on this machine).
	InputFiles map[string][]InputFile
	// Outputs receive each output port's batches, one call at a time per
	// port. The batch is valid during the call: Retain it to keep it. An
	// error stops the run. Ports without a function are drained and counted.
	Outputs map[string]func(arrow.RecordBatch) error
	// OnProgress receives the stage's progress events; it must not block.
	OnProgress func(sdk.Progress)
}

// InputFile is one committed Arrow IPC file of an input port.
type InputFile struct {
	Path string
	// Size is the file's size when it was committed, in bytes; the plugin
	// refuses a file of another size. 0: not recorded.
	Size int64
}

// RunResult is a successful run.
type RunResult struct {
	// RowsOut counts the rows written on each output port.
	RowsOut map[string]int64
}

// Run runs one stage and waits for it to end.
func (c *Client) Run(ctx context.Context, req RunRequest) (*RunResult, error) {
	msg, ty, err := stagerpc.EncodeConfig(req.Config)
	if err != nil {
		return nil, &RunError{Plugin: c.plugin, Stage: req.Stage, Kind: KindConfig, Message: err.Error(), Err: err}
	}
	order, files, err := c.splitInputs(ctx, req)
	if err != nil {
		return nil, &RunError{Plugin: c.plugin, Stage: req.Stage, Kind: KindInput, Message: err.Error(), Err: err}
	}
	parent := ctx
	// The stream does not carry the caller's deadline: gRPC would hand it
	// to the plugin, whose copy may fire first and reset the stream before
	// the caller's context says why. Ending the caller's context cancels
	// the stream instead.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	stop := context.AfterFunc(parent, func() { cancel(context.Cause(parent)) })
	defer stop()

	stream, err := c.rpc.Run(ctx)
	if err != nil {
		return nil, c.streamError(parent, req, err)
	}
	h := &hostRun{
		c: c, req: req, stream: stream, cancel: cancel,
		inboxes: map[string]*stagerpc.Inbox{},
		gates:   map[string]*stagerpc.Gate{},
	}
	for _, p := range order {
		h.gates[p] = stagerpc.NewGate(stagerpc.InitialCredit)
	}
	err = h.send(&stagepb.RunRequest{Msg: &stagepb.RunRequest_Start{Start: &stagepb.RunStart{
		Kind: req.Kind, Stage: req.Stage, ConfigMsgpack: msg, ConfigTypeJson: ty,
		RunId: req.RunID, Round: int32(req.Round), InputPorts: order, WorkDir: req.WorkDir,
		InputFiles: files,
	}}})
	if err != nil {
		// The real cause arrives on the receive side.
		_, rerr := stream.Recv()
		if rerr == nil || rerr == io.EOF {
			rerr = err
		}
		return nil, c.streamError(parent, req, rerr)
	}

	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	h.stopSending = stopSending
	for _, p := range order {
		h.senders.Add(1)
		go h.sendPort(sendCtx, p)
	}

	recvErr := h.receive()
	if recvErr != nil {
		cancel(recvErr)
	}
	for _, b := range h.inboxes {
		b.Abort(errStreamEnded)
	}
	h.consumers.Wait()
	stopSending()
	h.senders.Wait()

	h.mu.Lock()
	local, remote, result := h.local, h.remote, h.result
	h.mu.Unlock()
	switch {
	case local != nil:
		return nil, local
	case remote != nil:
		remote.Plugin, remote.Stage = c.plugin, req.Stage
		return nil, remote
	case result != nil:
		return &RunResult{RowsOut: result.GetRowsOut()}, nil
	case recvErr != nil:
		return nil, c.streamError(parent, req, recvErr)
	default:
		return nil, c.streamError(parent, req, io.ErrUnexpectedEOF)
	}
}

var errStreamEnded = errors.New("the run's stream ended")

// splitInputs sorts the input ports into those streamed, in the order
// announced, and those the plugin reads from files.
func (c *Client) splitInputs(ctx context.Context, req RunRequest) (streamed []string, files []*stagepb.InputFiles, err error) {
	all := inputOrder(req)
	if len(req.InputFiles) == 0 || !c.has(ctx, stagepb.Feature_FEATURE_INPUT_FILES) {
		return all, nil, nil
	}
	for _, p := range all {
		fs, ok := req.InputFiles[p]
		if !ok {
			streamed = append(streamed, p)
			continue
		}
		pf := &stagepb.InputFiles{Port: p}
		for _, f := range fs {
			// The plugin's working directory need not be ours.
			abs, err := filepath.Abs(f.Path)
			if err != nil {
				return nil, nil, fmt.Errorf("input port %q: %w", p, err)
			}
			pf.Files = append(pf.Files, &stagepb.InputFile{Path: abs, Size: f.Size})
		}
		files = append(files, pf)
	}
	return streamed, files, nil
}

func inputOrder(req RunRequest) []string {
	seen := map[string]bool{}
	var order []string
	for _, p := range req.InputOrder {
		if _, ok := req.Inputs[p]; ok && !seen[p] {
			order = append(order, p)
			seen[p] = true
		}
	}
	var rest []string
	for p, r := range req.Inputs {
		if !seen[p] && r != nil {
			rest = append(rest, p)
		}
	}
	sort.Strings(rest)
	return append(order, rest...)
}

// streamError explains a broken stream: the caller's cancellation, or the
// plugin gone.
func (c *Client) streamError(parent context.Context, req RunRequest, err error) error {
	if cerr := parent.Err(); cerr != nil {
		return &RunError{Plugin: c.plugin, Stage: req.Stage, Kind: KindCanceled,
			Message: "run stopped: " + cerr.Error(), Err: context.Cause(parent)}
	}
	msg := "lost the connection to the plugin"
	if err != io.ErrUnexpectedEOF {
		msg += ": " + RPCMessage(err)
	} else {
		msg += " before the run ended"
	}
	return &RunError{Plugin: c.plugin, Stage: req.Stage, Kind: KindCrashed, Message: msg}
}

type hostRun struct {
	c           *Client
	req         RunRequest
	stream      stagepb.StageService_RunClient
	cancel      context.CancelCauseFunc
	stopSending context.CancelFunc

	sendMu     sync.Mutex
	sendClosed bool

	gates     map[string]*stagerpc.Gate  // input ports; fixed before the run starts
	inboxes   map[string]*stagerpc.Inbox // output ports; receive loop only
	consumers sync.WaitGroup
	senders   sync.WaitGroup
	closing   sync.Once

	mu     sync.Mutex
	local  error
	remote *RunError
	result *stagepb.RunResult
}

func (h *hostRun) send(m *stagepb.RunRequest) error {
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	if h.sendClosed {
		return errStreamEnded
	}
	return h.stream.Send(m)
}

// fail records a host-side failure and stops the run.
func (h *hostRun) fail(err error) {
	h.mu.Lock()
	if h.local == nil {
		h.local = err
	}
	h.mu.Unlock()
	h.cancel(err)
}

func (h *hostRun) localError(kind ErrorKind, port string, err error) *RunError {
	return &RunError{Plugin: h.c.plugin, Stage: h.req.Stage, Kind: kind, Port: port, Message: err.Error(), Err: err}
}

func (h *hostRun) sendPort(ctx context.Context, port string) {
	defer h.senders.Done()
	rd := h.req.Inputs[port]
	pw := stagerpc.NewPortWriter(port, h.gates[port], func(d *stagepb.ArrowData) error {
		return h.send(&stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: d}})
	}, stagerpc.WriterOptions{Allocator: h.c.alloc, ChunkBytes: h.c.chunk})
	err := func() error {
		for rd.Next() {
			if err := pw.Write(ctx, rd.RecordBatch()); err != nil {
				return err
			}
		}
		if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) {
			return &readError{port: port, err: err}
		}
		if err := pw.Finish(ctx, rd.Schema()); err != nil {
			return err
		}
		return h.send(&stagepb.RunRequest{Msg: &stagepb.RunRequest_PortEnd{PortEnd: &stagepb.PortEnd{Port: port}}})
	}()
	// A failed send means the stream broke, and the receive side reports
	// why. Only a failure of the caller's reader is ours to report.
	var re *readError
	if errors.As(err, &re) {
		h.fail(h.localError(KindInput, port, err))
	}
}

type readError struct {
	port string
	err  error
}

func (e *readError) Error() string { return fmt.Sprintf("reading input port %q: %v", e.port, e.err) }
func (e *readError) Unwrap() error { return e.err }

func (h *hostRun) grant(port string, n int) {
	// Once the plugin has finished, credit has no one to go to.
	_ = h.send(&stagepb.RunRequest{Msg: &stagepb.RunRequest_Credit{Credit: &stagepb.Credit{Port: port, Messages: int32(n)}}})
}

// finish stops the input senders once the plugin has its say, then closes
// our side of the stream so the plugin's receive loop ends.
func (h *hostRun) finish() {
	h.closing.Do(func() {
		h.stopSending()
		go func() {
			h.senders.Wait()
			h.sendMu.Lock()
			defer h.sendMu.Unlock()
			if !h.sendClosed {
				h.sendClosed = true
				_ = h.stream.CloseSend()
			}
		}()
	})
}

func (h *hostRun) inbox(port string) *stagerpc.Inbox {
	b := h.inboxes[port]
	if b == nil {
		b = stagerpc.NewInbox(port, stagerpc.InitialCredit, h.grant)
		if h.c.hook != nil {
			b.SetHook(h.c.hook)
		}
		h.inboxes[port] = b
		h.consumers.Add(1)
		go h.consume(b)
	}
	return b
}

// receive reads the plugin's messages until the stream ends. It never
// blocks on a consumer: each port's inbox holds up to its credit.
func (h *hostRun) receive() error {
	for {
		m, err := h.stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch msg := m.GetMsg().(type) {
		case *stagepb.RunResponse_Data:
			if err := h.inbox(msg.Data.GetPort()).Deliver(msg.Data); err != nil {
				h.fail(h.localError(KindInternal, msg.Data.GetPort(), err))
			}
		case *stagepb.RunResponse_PortEnd:
			h.inbox(msg.PortEnd.GetPort()).End()
		case *stagepb.RunResponse_Credit:
			if g := h.gates[msg.Credit.GetPort()]; g != nil {
				g.Add(int(msg.Credit.GetMessages()))
			}
		case *stagepb.RunResponse_Progress:
			if h.req.OnProgress != nil {
				p := msg.Progress
				h.req.OnProgress(sdk.Progress{Done: p.GetDone(), Total: p.GetTotal(), Message: p.GetMessage(), Metrics: p.GetMetrics()})
			}
		case *stagepb.RunResponse_Result:
			h.mu.Lock()
			h.result = msg.Result
			h.mu.Unlock()
			h.finish()
		case *stagepb.RunResponse_Error:
			h.mu.Lock()
			h.remote = runErrorOf(msg.Error)
			h.mu.Unlock()
			h.finish()
		}
	}
}

func (h *hostRun) consume(b *stagerpc.Inbox) {
	defer h.consumers.Done()
	port := b.Port()
	rd, err := b.Reader(ipc.WithAllocator(h.c.alloc))
	if errors.Is(err, io.EOF) {
		return
	}
	if err != nil {
		if !errors.Is(err, errStreamEnded) {
			h.fail(h.localError(KindInternal, port, stagerpc.PortError("output", port, err)))
		}
		return
	}
	defer rd.Release()
	fn := h.req.Outputs[port]
	for rd.Next() {
		if fn == nil {
			continue
		}
		if err := fn(rd.RecordBatch()); err != nil {
			h.fail(h.localError(KindInternal, port, fmt.Errorf("output port %q: %w", port, err)))
			return
		}
	}
	if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, errStreamEnded) {
		h.fail(h.localError(KindInternal, port, stagerpc.PortError("output", port, err)))
	}
}
