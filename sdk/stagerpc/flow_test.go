package stagerpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

var testSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "s", Type: arrow.BinaryTypes.String},
	{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
}, nil)

// makeBatch builds rows [from, from+n); row i's string is long when
// longEvery divides i, to skew row sizes.
func makeBatch(mem memory.Allocator, from, n int64, longEvery int64) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, testSchema)
	defer b.Release()
	ids := b.Field(0).(*array.Int64Builder)
	xs := b.Field(1).(*array.Float64Builder)
	ss := b.Field(2).(*array.StringBuilder)
	ls := b.Field(3).(*array.ListBuilder)
	lv := ls.ValueBuilder().(*array.Int32Builder)
	for i := from; i < from+n; i++ {
		ids.Append(i)
		if i%7 == 0 {
			xs.AppendNull()
		} else {
			xs.Append(float64(i) / 2)
		}
		s := fmt.Sprintf("row-%d", i)
		if longEvery > 0 && i%longEvery == 0 {
			s = strings.Repeat("x", 100_000)
		}
		ss.Append(s)
		ls.Append(true)
		for j := int32(0); j < int32(i%5); j++ {
			lv.Append(j)
		}
	}
	return b.NewRecordBatch()
}

// pipe connects a PortWriter to an Inbox in memory, the way the two ends of
// a stream do: messages are copied (as the wire does), credit flows back.
type pipe struct {
	gate    *Gate
	inbox   *Inbox
	maxBody atomic.Int64
}

func newPipe(t *testing.T) *pipe {
	p := &pipe{gate: NewGate(InitialCredit)}
	p.inbox = NewInbox("p", InitialCredit, func(port string, n int) { p.gate.Add(n) })
	return p
}

func (p *pipe) send(d *stagepb.ArrowData) error {
	cp := &stagepb.ArrowData{Port: d.Port, DataHeader: append([]byte(nil), d.DataHeader...), DataBody: append([]byte(nil), d.DataBody...)}
	if n := int64(len(cp.DataBody)); n > p.maxBody.Load() {
		p.maxBody.Store(n)
	}
	return p.inbox.Deliver(cp)
}

func TestStreamRoundTripSplitsAndFlowControls(t *testing.T) {
	sendMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	recvMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer sendMem.AssertSize(t, 0)
	defer recvMem.AssertSize(t, 0)

	const chunk = 64 << 10
	p := newPipe(t)
	w := NewPortWriter("p", p.gate, p.send, WriterOptions{Allocator: sendMem, ChunkBytes: chunk})

	var want []arrow.RecordBatch
	for i := int64(0); i < 4; i++ {
		want = append(want, makeBatch(sendMem, i*30000, 30000, 9001))
	}
	defer func() {
		for _, b := range want {
			b.Release()
		}
	}()

	errc := make(chan error, 1)
	go func() {
		ctx := context.Background()
		for _, b := range want {
			if err := w.Write(ctx, b); err != nil {
				errc <- err
				return
			}
		}
		if err := w.Finish(ctx, nil); err != nil {
			errc <- err
			return
		}
		p.inbox.End()
		errc <- nil
	}()

	rd, err := p.inbox.Reader(ipc.WithAllocator(recvMem))
	if err != nil {
		t.Fatal(err)
	}
	var got []arrow.RecordBatch
	for rd.Next() {
		// A slow consumer: the writer must wait for credit, not pile up.
		time.Sleep(200 * time.Microsecond)
		b := rd.RecordBatch()
		b.Retain()
		got = append(got, b)
	}
	if err := rd.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	rd.Release()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	// Messages delivered and not yet taken by the consumer: the credit
	// window bounds them, and the slow consumer lets the writer fill it.
	if m := p.inbox.MaxQueued(); m != InitialCredit {
		t.Errorf("at most %d messages were queued, want exactly the window, %d", m, InitialCredit)
	}
	// A chunk may exceed the target only when one row does.
	if m := p.maxBody.Load(); m > chunk+100_000+1024 {
		t.Errorf("largest message body = %d bytes, want about %d", m, chunk)
	}
	if len(got) < 20 {
		t.Errorf("got %d batches, want the 4 big ones split into many", len(got))
	}
	if w.Rows() != 120000 {
		t.Errorf("writer counted %d rows", w.Rows())
	}
	assertSameRows(t, want, got)
	for _, b := range got {
		b.Release()
	}
}

func assertSameRows(t *testing.T, want, got []arrow.RecordBatch) {
	t.Helper()
	wt := array.NewTableFromRecords(testSchema, want)
	defer wt.Release()
	gt := array.NewTableFromRecords(testSchema, got)
	defer gt.Release()
	if wt.NumRows() != gt.NumRows() {
		t.Fatalf("rows: got %d, want %d", gt.NumRows(), wt.NumRows())
	}
	for i := 0; i < int(wt.NumCols()); i++ {
		if !array.ChunkedEqual(wt.Column(i).Data(), gt.Column(i).Data()) {
			t.Errorf("column %s differs", wt.Schema().Field(i).Name)
		}
	}
}

func TestGateBlocksUntilCredit(t *testing.T) {
	g := NewGate(1)
	ctx := context.Background()
	if err := g.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- g.Acquire(ctx) }()
	select {
	case err := <-got:
		t.Fatalf("Acquire without credit returned %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if !g.Waiting() {
		t.Error("Waiting() = false while a sender waits")
	}
	g.Add(1)
	if err := <-got; err != nil {
		t.Fatal(err)
	}

	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	if err := g.Acquire(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Acquire after cancel = %v", err)
	}
	boom := errors.New("stream broke")
	g.Close(boom)
	if err := g.Acquire(ctx); err != boom {
		t.Errorf("Acquire after Close = %v", err)
	}
}

func TestInboxRejectsMessagesBeyondCredit(t *testing.T) {
	b := NewInbox("p", 2, func(string, int) {})
	for i := 0; i < 2; i++ {
		if err := b.Deliver(&stagepb.ArrowData{}); err != nil {
			t.Fatal(err)
		}
	}
	err := b.Deliver(&stagepb.ArrowData{})
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), `port "p"`) {
		t.Errorf("Deliver beyond credit = %v", err)
	}
	if b.MaxQueued() != 2 {
		t.Errorf("MaxQueued = %d", b.MaxQueued())
	}
}

func TestInboxAbortAfterEndStillReadsToEnd(t *testing.T) {
	b := NewInbox("p", 4, func(string, int) {})
	_ = b.Deliver(portMessages(t, testSchema)[0]) // Recv checks the message
	b.End()
	b.Abort(errors.New("aborted"))
	if _, err := b.Recv(); err != nil {
		t.Fatalf("first Recv = %v", err)
	}
	for i := 0; i < 50; i++ {
		if _, err := b.Recv(); err != io.EOF {
			t.Fatalf("Recv after end = %v, want io.EOF", err)
		}
	}
}

func TestEmptyStreamCarriesSchema(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	p := newPipe(t)
	w := NewPortWriter("p", p.gate, p.send, WriterOptions{Allocator: mem})
	if err := w.Finish(context.Background(), testSchema); err != nil {
		t.Fatal(err)
	}
	p.inbox.End()
	rd, err := p.inbox.Reader(ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	if !rd.Schema().Equal(testSchema) {
		t.Errorf("schema = %v", rd.Schema())
	}
	if rd.Next() {
		t.Error("an empty stream has a batch")
	}

	// With neither batches nor schema there is no stream at all.
	p2 := newPipe(t)
	w2 := NewPortWriter("p", p2.gate, p2.send, WriterOptions{Allocator: mem})
	if err := w2.Finish(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	p2.inbox.End()
	if _, err := p2.inbox.Reader(); !errors.Is(err, io.EOF) {
		t.Errorf("Reader of a port with no stream = %v, want io.EOF", err)
	}
}

func TestForEachChunk(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tests := []struct {
		name      string
		rows      int64
		longEvery int64
		max       int64
		wantMin   int // chunks at least
		wantMax   int
	}{
		{"small batch is not split", 100, 0, 1 << 20, 1, 1},
		{"even rows", 100_000, 0, 256 << 10, 8, 40},
		{"skewed rows", 1000, 10, 256 << 10, 40, 200},
		{"one huge row stays alone", 3, 1, 1000, 3, 3},
		{"empty batch", 0, 0, 10, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := makeBatch(mem, 0, tt.rows, tt.longEvery)
			defer rec.Release()
			var chunks int
			var rows int64
			err := ForEachChunk(rec, tt.max, func(c arrow.RecordBatch) error {
				chunks++
				rows += c.NumRows()
				if c.NumRows() > 1 && recordBytes(c) > tt.max {
					t.Errorf("chunk of %d rows is %d bytes > %d", c.NumRows(), recordBytes(c), tt.max)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if rows != tt.rows {
				t.Errorf("chunks hold %d rows, want %d", rows, tt.rows)
			}
			if chunks < tt.wantMin || chunks > tt.wantMax {
				t.Errorf("%d chunks, want %d..%d", chunks, tt.wantMin, tt.wantMax)
			}
		})
	}
}

// TestRecordBytesMatchesIPC keeps the estimate honest against the real
// encoder for sliced data.
func TestRecordBytesMatchesIPC(t *testing.T) {
	mem := memory.NewGoAllocator()
	rec := makeBatch(mem, 0, 50_000, 1000)
	defer rec.Release()
	for _, r := range [][2]int64{{0, 50_000}, {10, 20}, {1000, 1001}, {25_000, 50_000}} {
		s := rec.NewSlice(r[0], r[1])
		var mu sync.Mutex
		var body int
		w := NewPortWriter("p", NewGate(100), func(d *stagepb.ArrowData) error {
			mu.Lock()
			body = len(d.DataBody)
			mu.Unlock()
			return nil
		}, WriterOptions{ChunkBytes: 1 << 40})
		if err := w.Write(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		est := recordBytes(s)
		s.Release()
		// IPC pads each buffer to 8 bytes: allow that much per buffer.
		if d := int64(body) - est; d < -64 || d > 128 {
			t.Errorf("rows %v: estimate %d, IPC body %d", r, est, body)
		}
	}
}
