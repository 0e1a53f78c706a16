// Package sdktest runs a plugin's stages in process, over the real protocol:
// the set is served in go-plugin's test mode and a host-side client attaches
// to it, so a stage test exercises config decoding, Arrow streaming, flow
// control and error mapping exactly as a host would, with no binary built.
//
// Start (in tests) and Connect (elsewhere) return such a client. TestStage
// is the conformance suite every stage should pass: schemas, released
// batches, cancellation, config diagnostics, Close, stdout.
package sdktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// Option tunes Start.
type Option func(*options)

type options struct {
	chunkBytes int64
	tp         trace.TracerProvider
	hook       func(port string, queued int)
	pluginMem  memory.Allocator
	hostMem    memory.Allocator
}

// WithChunkBytes sets the size batches are split to stay under, on both
// ends: tests of splitting use small values.
func WithChunkBytes(n int64) Option { return func(o *options) { o.chunkBytes = n } }

// WithTracerProvider makes the plugin record its spans with tp.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(o *options) { o.tp = tp } }

// WithDeliveryHook watches the host's output inboxes (see
// stagehost.WithDeliveryHook).
func WithDeliveryHook(f func(port string, queued int)) Option {
	return func(o *options) { o.hook = f }
}

// WithAllocators replaces the checked allocators Start uses on the plugin
// and the host side.
func WithAllocators(plugin, host memory.Allocator) Option {
	return func(o *options) { o.pluginMem, o.hostMem = plugin, host }
}

// Plugin is a set served in process.
type Plugin struct {
	*stagehost.Client
	// Reattach is what a host needs to connect to the served set.
	Reattach *plugin.ReattachConfig
	// PluginMem and HostMem are the allocators of each side. Unless
	// replaced with WithAllocators they are checked allocators: Start
	// asserts at cleanup that both are back to zero, and Close reports
	// what is left.
	PluginMem, HostMem memory.Allocator

	closeOnce sync.Once
	closeErr  error
	stop      func() error
	checked   []*memory.CheckedAllocator
}

// Serve serves set in process until the test ends and returns the config
// to reattach to it.
func Serve(t testing.TB, set *sdk.Set, opts ...sdk.ServeOption) *plugin.ReattachConfig {
	t.Helper()
	opts = append(opts, sdk.ServeLogger(hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: newTestWriter(t)})))
	rc, stop, err := serveInProcess(set, opts...)
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("sdktest: %v", err)
		}
	})
	return rc
}

// serveInProcess serves set in go-plugin's test mode and returns the
// config to reattach to it and a function that stops serving.
func serveInProcess(set *sdk.Set, opts ...sdk.ServeOption) (*plugin.ReattachConfig, func() error, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan stagerpc.Reattach, 1)
	done := make(chan error, 1)
	opts = append(opts, sdk.ServeInProcess(ctx, func(r stagerpc.Reattach) { ch <- r }))
	go func() { done <- set.Serve(opts...) }()
	stop := func() error {
		cancel()
		select {
		case <-done:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("the in-process plugin did not stop")
		}
	}
	select {
	case r := <-ch:
		rc, err := r.Config()
		if err != nil {
			_ = stop()
			return nil, nil, err
		}
		return rc, stop, nil
	case err := <-done:
		cancel()
		return nil, nil, fmt.Errorf("serving ended before it started: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, nil, errors.New("the in-process plugin did not start")
	}
}

// Start serves set in process and returns a connected host-side client.
// Everything stops when the test ends.
func Start(t testing.TB, set *sdk.Set, opts ...Option) *Plugin {
	t.Helper()
	p, err := open(set, newTestWriter(t), opts...)
	if err != nil {
		t.Fatalf("sdktest: %v", err)
	}
	t.Cleanup(func() {
		if err := p.shutdown(); err != nil {
			t.Errorf("sdktest: %v", err)
		}
		// AssertSize names the allocation site of every leaked buffer.
		for _, c := range p.checked {
			c.AssertSize(t, 0)
		}
	})
	return p
}

// Connect serves set in process and returns a connected host-side client,
// as Start does, for code that has no testing.TB: Examples, benchmarks
// harnesses, tools. Its logs go to stderr. Close it when done.
func Connect(set *sdk.Set, opts ...Option) (*Plugin, error) {
	return open(set, os.Stderr, opts...)
}

func open(set *sdk.Set, w io.Writer, opts ...Option) (*Plugin, error) {
	// Stopping a served plugin makes go-plugin log errors about its closed
	// listener: noise, once the plugin is being shut down.
	logs := &muteWriter{w: w}
	o := options{}
	for _, f := range opts {
		f(&o)
	}
	var checked []*memory.CheckedAllocator
	if o.pluginMem == nil {
		c := memory.NewCheckedAllocator(memory.NewGoAllocator())
		checked = append(checked, c)
		o.pluginMem = c
	}
	if o.hostMem == nil {
		c := memory.NewCheckedAllocator(memory.NewGoAllocator())
		checked = append(checked, c)
		o.hostMem = c
	}

	serveOpts := []sdk.ServeOption{
		sdk.ServeAllocator(o.pluginMem),
		sdk.ServeLogger(hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Warn, Output: logs})),
	}
	if o.chunkBytes > 0 {
		serveOpts = append(serveOpts, sdk.ServeChunkBytes(o.chunkBytes))
	}
	if o.tp != nil {
		serveOpts = append(serveOpts, sdk.ServeTracerProvider(o.tp))
	}
	rc, stopServing, err := serveInProcess(set, serveOpts...)
	if err != nil {
		return nil, err
	}
	rpc, kill, err := Attach(rc, hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: logs}))
	if err != nil {
		logs.mute()
		return nil, errors.Join(err, stopServing())
	}
	hostOpts := []stagehost.Option{stagehost.WithPluginName(set.Describe().Name), stagehost.WithAllocator(o.hostMem)}
	if o.chunkBytes > 0 {
		hostOpts = append(hostOpts, stagehost.WithChunkBytes(o.chunkBytes))
	}
	if o.hook != nil {
		hostOpts = append(hostOpts, stagehost.WithDeliveryHook(o.hook))
	}
	return &Plugin{
		Client:    stagehost.New(rpc, hostOpts...),
		Reattach:  rc,
		PluginMem: o.pluginMem,
		HostMem:   o.hostMem,
		checked:   checked,
		stop: func() error {
			logs.mute()
			kill()
			return stopServing()
		},
	}, nil
}

// Close disconnects, stops serving and reports Arrow memory either side
// still holds (checked allocators only). Calling it again returns the
// first call's result.
func (p *Plugin) Close() error {
	errs := []error{p.shutdown()}
	for _, c := range p.checked {
		if n := c.CurrentAlloc(); n != 0 {
			side := "host"
			if c == p.PluginMem {
				side = "plugin"
			}
			errs = append(errs, fmt.Errorf("%d bytes of Arrow memory still allocated on the %s side", n, side))
		}
	}
	return errors.Join(errs...)
}

// shutdown disconnects and stops serving, once.
func (p *Plugin) shutdown() error {
	p.closeOnce.Do(func() { p.closeErr = p.stop() })
	return p.closeErr
}

// Attach connects to a served plugin the way a host does (go-plugin
// reattach, gRPC with the protocol's options) and returns the stage service
// client and a function that disconnects.
func Attach(rc *plugin.ReattachConfig, logger hclog.Logger) (stagepb.StageServiceClient, func(), error) {
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: stagerpc.Handshake(sdk.ProtocolVersion),
		VersionedPlugins: map[int]plugin.PluginSet{
			sdk.ProtocolVersion: {stagerpc.PluginName: &stagerpc.Plugin{}},
		},
		// Reattaching skips version negotiation and uses Plugins.
		Plugins:          plugin.PluginSet{stagerpc.PluginName: &stagerpc.Plugin{}},
		Reattach:         rc,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  stagerpc.DialOptions(),
		Logger:           logger,
	})
	proto, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, nil, fmt.Errorf("attaching to plugin: %w", err)
	}
	raw, err := proto.Dispense(stagerpc.PluginName)
	if err != nil {
		client.Kill()
		return nil, nil, fmt.Errorf("dispensing stage service: %w", err)
	}
	return raw.(stagepb.StageServiceClient), client.Kill, nil
}

// Table is a convenience reader over in-memory batches, for RunRequest
// inputs. It Retains the batches; Release it when done.
func Table(schema *arrow.Schema, batches ...arrow.RecordBatch) array.RecordReader {
	r, err := array.NewRecordReader(schema, batches)
	if err != nil {
		panic(fmt.Sprintf("sdktest.Table: %v", err))
	}
	return r
}

// Collector gathers the batches of output ports. Release it when done.
// The host delivers each port on its own goroutine, so collecting is
// locked; read Batches once the run has returned.
type Collector struct {
	mu      sync.Mutex
	Batches map[string][]arrow.RecordBatch
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{Batches: map[string][]arrow.RecordBatch{}}
}

// Port returns an output function for RunRequest.Outputs that keeps the
// port's batches.
func (c *Collector) Port(name string) func(arrow.RecordBatch) error {
	return func(b arrow.RecordBatch) error {
		b.Retain()
		c.mu.Lock()
		c.Batches[name] = append(c.Batches[name], b)
		c.mu.Unlock()
		return nil
	}
}

// Rows counts the rows collected on a port.
func (c *Collector) Rows(port string) int64 {
	var n int64
	for _, b := range c.Batches[port] {
		n += b.NumRows()
	}
	return n
}

// Release releases every collected batch.
func (c *Collector) Release() {
	for _, bs := range c.Batches {
		for _, b := range bs {
			b.Release()
		}
	}
	c.Batches = map[string][]arrow.RecordBatch{}
}

// muteWriter passes writes on until muted.
type muteWriter struct {
	mu    sync.Mutex
	w     io.Writer
	muted bool
}

func (m *muteWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.muted {
		return len(p), nil
	}
	return m.w.Write(p)
}

func (m *muteWriter) mute() {
	m.mu.Lock()
	m.muted = true
	m.mu.Unlock()
}

// testWriter sends log lines to the test's log until the test is over;
// go-plugin may still log from its goroutines after that, which t.Logf
// does not allow.
type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

var _ io.Writer = (*testWriter)(nil)

func newTestWriter(t testing.TB) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}
