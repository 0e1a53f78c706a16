package wire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	ctymsgpack "github.com/zclconf/go-cty/cty/msgpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// readAllBackend runs one stage kind that reads every input port to its
// end and copies the first to its output.
type readAllBackend struct{}

func (readAllBackend) Describe() ([]byte, error) { return []byte("{}"), nil }

func (readAllBackend) Configure(context.Context, string, cty.Value) []*stagepb.Diagnostic { return nil }

func (readAllBackend) Prepare(_ context.Context, kind string, _ cty.Value) (*Job, error) {
	if kind != "copy" {
		return nil, errors.New("unknown kind")
	}
	return &Job{
		Outputs: []OutputPort{{Name: "out"}},
		Run: func(ctx context.Context, rc *RunContext) error {
			w, err := rc.Writer("out")
			if err != nil {
				return err
			}
			for i, p := range rc.Start.GetInputPorts() {
				rd, err := rc.Reader(p)
				if err != nil {
					return err
				}
				for rd.Next() {
					if i == 0 {
						if err := w.Write(ctx, rd.RecordBatch()); err != nil {
							return err
						}
					}
				}
				if err := rd.Err(); err != nil {
					return err
				}
			}
			return nil
		},
	}, nil
}

func (readAllBackend) Classify(err error) *stagepb.Error {
	return &stagepb.Error{Kind: stagepb.Error_KIND_INTERNAL, Message: err.Error()}
}

// scriptedHost sends a fixed list of encoded RunRequest messages and
// collects what the plugin answers.
type scriptedHost struct {
	grpc.BidiStreamingServer[stagepb.RunRequest, stagepb.RunResponse]
	ctx  context.Context
	mu   sync.Mutex
	msgs [][]byte
	sent []*stagepb.RunResponse
	// before, if set, runs before message i is handed over.
	before   func(i int)
	received int
}

func (s *scriptedHost) Context() context.Context { return s.ctx }

func (s *scriptedHost) Send(m *stagepb.RunResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	return nil
}

func (s *scriptedHost) Recv() (*stagepb.RunRequest, error) {
	s.mu.Lock()
	if len(s.msgs) == 0 {
		s.mu.Unlock()
		return nil, io.EOF
	}
	b := s.msgs[0]
	s.msgs = s.msgs[1:]
	i := s.received
	s.received++
	s.mu.Unlock()
	if s.before != nil {
		s.before(i)
	}
	m := &stagepb.RunRequest{}
	if err := proto.Unmarshal(b, m); err != nil {
		s.mu.Lock()
		s.msgs = nil
		s.mu.Unlock()
		return nil, status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return m, nil
}

func frameRequests(t testing.TB, ms ...*stagepb.RunRequest) []byte {
	t.Helper()
	var out []byte
	for _, m := range ms {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out
}

func unframe(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			break
		}
		out = append(out, b[k:k+int(n)])
		b = b[k+int(n):]
	}
	return out
}

// FuzzRunRequests feeds the plugin's end of a Run call whatever a host (or
// anything reaching the plugin's socket) may send: any sequence of
// messages, with any config and Arrow data in them. The call must end
// with one final message, a result or an error, or a gRPC error, and give
// back every byte of Arrow memory; nothing may panic.
func FuzzRunRequests(f *testing.F) {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{1, 2, 3}, nil)
	col := b.NewArray()
	b.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 3)
	col.Release()
	defer rec.Release()
	var data []*stagepb.ArrowData
	w := stagerpc.NewPortWriter("in", stagerpc.NewGate(100), func(d *stagepb.ArrowData) error {
		data = append(data, &stagepb.ArrowData{Port: "in", DataHeader: append([]byte(nil), d.DataHeader...), DataBody: append([]byte(nil), d.DataBody...)})
		return nil
	}, stagerpc.WriterOptions{})
	if err := w.Write(context.Background(), rec); err != nil {
		f.Fatal(err)
	}
	if err := w.Finish(context.Background(), nil); err != nil {
		f.Fatal(err)
	}
	cfg := cty.ObjectVal(map[string]cty.Value{"n": cty.NumberIntVal(3)})
	msg, err := ctymsgpack.Marshal(cfg, cfg.Type())
	if err != nil {
		f.Fatal(err)
	}
	ty, err := ctyjson.MarshalType(cfg.Type())
	if err != nil {
		f.Fatal(err)
	}
	start := func(ports ...string) *stagepb.RunRequest {
		return &stagepb.RunRequest{Msg: &stagepb.RunRequest_Start{Start: &stagepb.RunStart{
			Kind: "copy", Stage: "copy.c", ConfigMsgpack: msg, ConfigTypeJson: ty, InputPorts: ports, RunId: "r", Round: 1,
		}}}
	}
	dataMsg := func(d *stagepb.ArrowData) *stagepb.RunRequest {
		return &stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: d}}
	}
	end := func(p string) *stagepb.RunRequest {
		return &stagepb.RunRequest{Msg: &stagepb.RunRequest_PortEnd{PortEnd: &stagepb.PortEnd{Port: p}}}
	}
	credit := &stagepb.RunRequest{Msg: &stagepb.RunRequest_Credit{Credit: &stagepb.Credit{Port: "out", Messages: 8}}}
	f.Add(frameRequests(f, start("in"), dataMsg(data[0]), dataMsg(data[1]), end("in"), credit))
	f.Add(frameRequests(f, start("in", "other"), end("other"), dataMsg(data[0]), end("in"), dataMsg(data[1])))
	f.Add(frameRequests(f, start(), credit, credit))
	// More batches than the output's credit, and a host that never grants
	// any: the plugin must not wait for it forever.
	many := []*stagepb.RunRequest{start("in"), dataMsg(data[0])}
	for range 2 * stagerpc.InitialCredit {
		many = append(many, dataMsg(data[1]))
	}
	f.Add(frameRequests(f, append(many, end("in"))...))
	f.Add(frameRequests(f, dataMsg(data[0])))

	f.Fuzz(func(t *testing.T, in []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		s := NewServer(readAllBackend{}, Options{Allocator: mem})
		h := &scriptedHost{ctx: context.Background(), msgs: unframe(in)}
		if err := s.Run(h); err == nil {
			var final int
			for _, m := range h.sent {
				if m.GetResult() != nil || m.GetError() != nil {
					final++
				}
			}
			if final != 1 {
				t.Errorf("the run ended with %d final messages, want 1", final)
			}
		}
		mem.AssertSize(t, 0)
	})
}

// A stage waiting for an input port's first message must not stop the
// plugin from receiving it: credit for an output port arriving meanwhile
// once deadlocked the run (the waiting reader held the lock the receive
// loop needed to hand out that credit).
func TestCreditWhileReaderWaits(t *testing.T) {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	rec := array.NewRecordBatch(schema, nil, 0)
	defer rec.Release()
	var data []*stagepb.ArrowData
	w := stagerpc.NewPortWriter("in", stagerpc.NewGate(100), func(d *stagepb.ArrowData) error {
		data = append(data, &stagepb.ArrowData{Port: "in", DataHeader: append([]byte(nil), d.DataHeader...), DataBody: append([]byte(nil), d.DataBody...)})
		return nil
	}, stagerpc.WriterOptions{Allocator: mem})
	if err := w.Finish(context.Background(), schema); err != nil {
		t.Fatal(err)
	}
	msgs := frameRequests(t,
		&stagepb.RunRequest{Msg: &stagepb.RunRequest_Start{Start: &stagepb.RunStart{Kind: "copy", Stage: "copy.c", InputPorts: []string{"in"}}}},
		&stagepb.RunRequest{Msg: &stagepb.RunRequest_Credit{Credit: &stagepb.Credit{Port: "out", Messages: 1}}},
		&stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: data[0]}},
		&stagepb.RunRequest{Msg: &stagepb.RunRequest_PortEnd{PortEnd: &stagepb.PortEnd{Port: "in"}}},
	)
	h := &scriptedHost{ctx: context.Background(), msgs: unframe(msgs), before: func(i int) {
		if i == 1 {
			// Time for the stage to start waiting for the input.
			time.Sleep(100 * time.Millisecond)
		}
	}}
	done := make(chan error, 1)
	go func() { done <- NewServer(readAllBackend{}, Options{}).Run(h) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the run is stuck")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if last := h.sent[len(h.sent)-1]; last.GetResult() == nil {
		t.Errorf("the run ended with %v, want a result", last)
	}
}
