package stagerpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// Gate holds a sender's credit for one port: Acquire takes one message's
// worth, blocking while there is none; Add returns credit.
type Gate struct {
	mu      sync.Mutex
	credit  int
	wake    chan struct{} // closed and replaced whenever credit arrives
	err     error
	waiting atomic.Int32
}

// NewGate returns a gate holding initial credit.
func NewGate(initial int) *Gate {
	return &Gate{credit: initial, wake: make(chan struct{})}
}

// Acquire takes one credit, waiting until there is one, ctx ends or the gate
// is closed.
func (g *Gate) Acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		if g.err != nil {
			err := g.err
			g.mu.Unlock()
			return err
		}
		if g.credit > 0 {
			g.credit--
			g.mu.Unlock()
			return nil
		}
		wake := g.wake
		g.mu.Unlock()
		g.waiting.Add(1)
		select {
		case <-wake:
			g.waiting.Add(-1)
		case <-ctx.Done():
			g.waiting.Add(-1)
			return context.Cause(ctx)
		}
	}
}

// Add returns n credits.
func (g *Gate) Add(n int) {
	if n <= 0 {
		return
	}
	g.mu.Lock()
	g.credit += n
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// Close makes every present and future Acquire fail with err.
func (g *Gate) Close(err error) {
	g.mu.Lock()
	if g.err == nil {
		g.err = err
		close(g.wake)
		g.wake = make(chan struct{})
	}
	g.mu.Unlock()
}

// Waiting reports whether a sender is blocked for want of credit.
func (g *Gate) Waiting() bool { return g.waiting.Load() > 0 }

// ErrProtocol is wrapped by errors about a peer breaking the protocol.
var ErrProtocol = errors.New("stage protocol violation")

// DamagedError is an Arrow message that arrived on a port and failed the
// checks made before arrow-go decodes it. arrow-go decodes IPC metadata
// unchecked, and damaged metadata can make it recurse until the stack
// overflows or allocate terabytes, which no recover survives; so a peer's
// messages are checked first, and a damaged one ends the port's stream
// with this error.
type DamagedError struct {
	Port string
	Err  error
}

func (e *DamagedError) Error() string { return e.Err.Error() }

func (e *DamagedError) Unwrap() []error { return []error{ErrProtocol, e.Err} }

// PortError names the port in an error of reading its stream, dropping
// arrow-go's wrapping of a DamagedError, which says nothing more. dir is
// "input" or "output".
func PortError(dir, port string, err error) error {
	var d *DamagedError
	if errors.As(err, &d) {
		err = d
	}
	return fmt.Errorf("%s port %q: %w", dir, port, err)
}

// Inbox receives one port's messages. The stream's receive loop Delivers
// into it without ever blocking; the port's consumer reads through Recv (a
// flight.DataStreamReader), and each message it takes is credited back to
// the sender.
type Inbox struct {
	port  string
	ch    chan *stagepb.ArrowData
	grant func(port string, n int)

	abortOnce sync.Once
	aborted   chan struct{}
	abortErr  error
	endOnce   sync.Once
	ended     atomic.Bool // Deliver and End come from one goroutine

	pending  int // taken but not yet credited; consumer goroutine only
	queued   atomic.Int64
	maxQueue atomic.Int64
	hook     func(port string, queued int)
}

// NewInbox returns an inbox for port. grant sends credit back to the sender;
// it has no error to return because a stream that cannot carry credit is
// broken, and the receive loop finds that out and aborts the inbox, while
// the messages already queued stay good to read. capacity must be at least
// the sender's credit (InitialCredit).
func NewInbox(port string, capacity int, grant func(port string, n int)) *Inbox {
	return &Inbox{
		port:    port,
		ch:      make(chan *stagepb.ArrowData, capacity),
		grant:   grant,
		aborted: make(chan struct{}),
	}
}

// SetHook installs a function called after each delivery with the number of
// messages now queued; tests use it to watch flow control. Call before any
// delivery.
func (b *Inbox) SetHook(f func(port string, queued int)) { b.hook = f }

// Port is the inbox's port name.
func (b *Inbox) Port() string { return b.port }

// MaxQueued is the most messages that were ever queued at once.
func (b *Inbox) MaxQueued() int { return int(b.maxQueue.Load()) }

// Deliver queues a message. It fails, rather than block, when the sender sent
// beyond its credit.
func (b *Inbox) Deliver(d *stagepb.ArrowData) error {
	if b.ended.Load() {
		// Sending on the closed channel would panic.
		return fmt.Errorf("%w: port %q: data after the port's end", ErrProtocol, b.port)
	}
	select {
	case b.ch <- d:
		q := b.queued.Add(1)
		for {
			m := b.maxQueue.Load()
			if q <= m || b.maxQueue.CompareAndSwap(m, q) {
				break
			}
		}
		if b.hook != nil {
			b.hook(b.port, int(q))
		}
		return nil
	default:
		return fmt.Errorf("%w: port %q: more than %d messages sent without credit", ErrProtocol, b.port, cap(b.ch))
	}
}

// End marks the end of the port's data (after the last Deliver).
func (b *Inbox) End() {
	b.endOnce.Do(func() {
		b.ended.Store(true)
		close(b.ch)
	})
}

// Abort makes the consumer's next Recv fail with err (once the messages
// already queued are not wanted any more).
func (b *Inbox) Abort(err error) {
	b.abortOnce.Do(func() {
		b.abortErr = err
		close(b.aborted)
	})
}

// Recv returns the port's next message, checked to be an Arrow IPC
// message whose body holds what its header says.
func (b *Inbox) Recv() (*stagepb.ArrowData, error) {
	var d *stagepb.ArrowData
	var ok bool
	select {
	case d, ok = <-b.ch:
	default:
		// About to wait: hand back what we hold so the sender is not stuck
		// waiting for credit we are sitting on.
		b.flush()
		select {
		case d, ok = <-b.ch:
		case <-b.aborted:
			// A port that ended before the abort still reads to its end.
			select {
			case d, ok = <-b.ch:
			default:
				return nil, b.abortErr
			}
		}
	}
	if !ok {
		return nil, io.EOF
	}
	b.queued.Add(-1)
	b.pending++
	if b.pending >= max(1, cap(b.ch)/2) {
		b.flush()
	}
	if err := ipcverify.VerifyWireMessage(d.GetDataHeader(), len(d.GetDataBody())); err != nil {
		return nil, &DamagedError{Port: b.port, Err: err}
	}
	return d, nil
}

func (b *Inbox) flush() {
	if b.pending == 0 {
		return
	}
	n := b.pending
	b.pending = 0
	b.grant(b.port, n)
}

// Reader opens the port's Arrow stream. It returns io.EOF when the port
// ended without a single message. Reading the stream never panics: the
// reader turns a panic of arrow-go's decoder into its error.
func (b *Inbox) Reader(opts ...ipc.Option) (rd *Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			rd, err = nil, fmt.Errorf("decoding the Arrow schema: %v", p)
		}
	}()
	first, err := b.Recv()
	if err != nil {
		return nil, err
	}
	mr := &messageReader{in: b, peeked: first}
	mr.refs.Add(1)
	ir, err := ipc.NewReaderFromMessageReader(mr, opts...)
	if err != nil {
		return nil, fmt.Errorf("reading the Arrow stream: %w", err)
	}
	return &Reader{Reader: ir, port: b.port}, nil
}

// messageReader gives an Inbox's messages to arrow-go's IPC reader: each
// one an Arrow IPC message whose header and body came apart on the wire,
// as in Arrow Flight's FlightData (the stream's framing, done here rather
// than with arrow-go's flight package, whose generated gRPC services and
// protobuf registry every plugin process would load at start).
type messageReader struct {
	in     *Inbox
	peeked *stagepb.ArrowData
	msg    *ipc.Message
	refs   atomic.Int64
}

func (m *messageReader) Message() (*ipc.Message, error) {
	d := m.peeked
	m.peeked = nil
	if d == nil {
		var err error
		if d, err = m.in.Recv(); err != nil {
			if m.msg != nil {
				m.msg.Release()
				m.msg = nil
			}
			return nil, err
		}
	}
	m.msg = ipc.NewMessage(memory.NewBufferBytes(d.GetDataHeader()), memory.NewBufferBytes(d.GetDataBody()))
	return m.msg, nil
}

func (m *messageReader) Retain() { m.refs.Add(1) }

func (m *messageReader) Release() {
	if m.refs.Add(-1) == 0 && m.msg != nil {
		m.msg.Release()
		m.msg = nil
	}
}

// Reader is an Inbox's Arrow stream. Each batch it gives has passed
// ipcverify.ValidateBatch: its values read safely.
type Reader struct {
	*ipc.Reader
	port string
	err  error
}

// Next is the IPC reader's, under recover (arrow-go recovers only some of
// its own panics), and checks the batch: arrow-go builds arrays on the
// buffers a message describes without checking them.
func (r *Reader) Next() (ok bool) {
	if r.err != nil {
		return false
	}
	defer func() {
		if p := recover(); p != nil {
			r.err, ok = fmt.Errorf("decoding an Arrow batch: %v", p), false
		}
	}()
	if !r.Reader.Next() {
		return false
	}
	if err := ipcverify.ValidateBatch(r.Reader.RecordBatch()); err != nil {
		r.err = &DamagedError{Port: r.port, Err: fmt.Errorf("damaged Arrow batch: %w", err)}
		return false
	}
	return true
}

// Err is the stream's error.
func (r *Reader) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Reader.Err()
}

// PortWriter writes one port's batches as Arrow IPC messages, split by rows
// to keep each message body under the chunk size, each message waiting for
// credit.
type PortWriter struct {
	port      string
	gate      *Gate
	send      func(*stagepb.ArrowData) error
	alloc     memory.Allocator
	chunk     int64
	schema    *arrow.Schema // the stream's schema, once started
	w         *ipc.Writer
	ctx       context.Context
	rows      atomic.Int64
	messages  atomic.Int64
	mu        sync.Mutex
	finished  bool
	sendError error
}

// WriterOptions configure a PortWriter.
type WriterOptions struct {
	Allocator  memory.Allocator // default memory.DefaultAllocator
	ChunkBytes int64            // default DefaultChunkBytes
}

// NewPortWriter returns a writer for port. send puts one message on the
// stream; it must not keep the message's byte slices after it returns.
func NewPortWriter(port string, gate *Gate, send func(*stagepb.ArrowData) error, o WriterOptions) *PortWriter {
	if o.Allocator == nil {
		o.Allocator = memory.DefaultAllocator
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	return &PortWriter{port: port, gate: gate, send: send, alloc: o.Allocator, chunk: o.ChunkBytes}
}

// Port is the writer's port name.
func (w *PortWriter) Port() string { return w.port }

// Rows is the number of rows written so far.
func (w *PortWriter) Rows() int64 { return w.rows.Load() }

// Messages is the number of messages sent so far.
func (w *PortWriter) Messages() int64 { return w.messages.Load() }

// Schema is the schema of the port's stream, or nil before the first batch.
func (w *PortWriter) Schema() *arrow.Schema {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.schema
}

// Write sends rec, split into chunks. The first batch fixes the stream's
// schema; the caller checks later batches against it first, for a better
// error than the IPC writer's.
func (w *PortWriter) Write(ctx context.Context, rec arrow.RecordBatch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return fmt.Errorf("port %q: write after end of stream", w.port)
	}
	if w.w == nil {
		w.start(rec.Schema())
	}
	w.ctx = ctx
	defer func() { w.ctx = nil }()
	err := ForEachChunk(rec, w.chunk, func(c arrow.RecordBatch) error {
		if err := w.w.Write(c); err != nil {
			return w.cause(err)
		}
		w.rows.Add(c.NumRows())
		return nil
	})
	return err
}

// cause prefers the error of the send (a cancelled context, a broken
// stream) over the IPC writer's wrapping of it.
func (w *PortWriter) cause(err error) error {
	if w.sendError != nil {
		return w.sendError
	}
	return err
}

func (w *PortWriter) start(schema *arrow.Schema) {
	w.schema = schema
	w.w = ipc.NewWriterWithPayloadWriter(&dataSender{w: w}, ipc.WithSchema(schema), ipc.WithAllocator(w.alloc))
}

// Finish ends the Arrow stream. When nothing was written and schema is not
// nil, it first sends a stream with no batches, so the receiver still learns
// the port's schema. The caller then sends the port's PortEnd.
func (w *PortWriter) Finish(ctx context.Context, schema *arrow.Schema) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return nil
	}
	w.finished = true
	if w.w == nil {
		if schema == nil {
			return nil
		}
		w.start(schema)
	}
	w.ctx = ctx
	defer func() { w.ctx = nil }()
	if err := w.w.Close(); err != nil {
		return w.cause(err)
	}
	return nil
}

// dataSender puts each IPC message the writer makes on the stream, header
// and body apart (see messageReader).
type dataSender struct {
	w    *PortWriter
	body bytes.Buffer
}

func (s *dataSender) Start() error { return nil }
func (s *dataSender) Close() error { return nil }

func (s *dataSender) WritePayload(p ipc.Payload) error {
	meta := p.Meta()
	defer meta.Release()
	s.body.Reset()
	if err := p.SerializeBody(&s.body); err != nil {
		return err
	}
	return s.send(meta.Bytes(), s.body.Bytes())
}

func (s *dataSender) send(header, body []byte) error {
	w := s.w
	ctx := w.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if n := len(header) + len(body); n > MaxMessageBytes-64<<10 {
		w.sendError = fmt.Errorf("port %q: one row is too large to send: split down to a single row, its Arrow message is %.1f MiB, over the %d MiB gRPC message limit (keep large values in files and pass their paths)",
			w.port, float64(n)/(1<<20), MaxMessageBytes>>20)
		return w.sendError
	}
	if err := w.gate.Acquire(ctx); err != nil {
		w.sendError = err
		return err
	}
	if err := w.send(&stagepb.ArrowData{Port: w.port, DataHeader: header, DataBody: body}); err != nil {
		w.sendError = err
		return err
	}
	w.messages.Add(1)
	return nil
}

// SerializeSchema is a schema as an Arrow IPC stream with no batches, as
// Arrow Flight's SerializeSchema writes it: how a description carries a
// port's schema (describe.PortDescription.ArrowSchema).
func SerializeSchema(schema *arrow.Schema, mem memory.Allocator) []byte {
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	w.Close()
	return buf.Bytes()
}
