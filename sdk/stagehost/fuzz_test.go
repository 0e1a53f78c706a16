package stagehost_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// scriptedPlugin answers a Run call with a fixed list of encoded
// RunResponse messages, whatever the host sends.
type scriptedPlugin struct {
	stagepb.StageServiceClient
	msgs [][]byte
}

func (p *scriptedPlugin) Run(ctx context.Context, _ ...grpc.CallOption) (grpc.BidiStreamingClient[stagepb.RunRequest, stagepb.RunResponse], error) {
	return &scriptedStream{ctx: ctx, msgs: p.msgs}, nil
}

type scriptedStream struct {
	grpc.BidiStreamingClient[stagepb.RunRequest, stagepb.RunResponse]
	ctx  context.Context
	mu   sync.Mutex
	msgs [][]byte
}

func (s *scriptedStream) Context() context.Context       { return s.ctx }
func (s *scriptedStream) CloseSend() error               { return nil }
func (s *scriptedStream) Send(*stagepb.RunRequest) error { return s.ctx.Err() }

func (s *scriptedStream) Recv() (*stagepb.RunResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == 0 {
		return nil, io.EOF
	}
	b := s.msgs[0]
	s.msgs = s.msgs[1:]
	m := &stagepb.RunResponse{}
	if err := proto.Unmarshal(b, m); err != nil {
		// What gRPC does with a message it cannot decode.
		s.msgs = nil
		return nil, status.Errorf(codes.Internal, "grpc: failed to unmarshal the received message: %v", err)
	}
	return m, nil
}

// frameResponses packs encoded messages into one fuzz input, each
// preceded by its length as a uvarint.
func frameResponses(t testing.TB, ms ...*stagepb.RunResponse) []byte {
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

func dataMsg(port string, d *stagepb.ArrowData) *stagepb.RunResponse {
	return &stagepb.RunResponse{Msg: &stagepb.RunResponse_Data{Data: &stagepb.ArrowData{Port: port, DataHeader: d.DataHeader, DataBody: d.DataBody}}}
}

func portEnd(port string) *stagepb.RunResponse {
	return &stagepb.RunResponse{Msg: &stagepb.RunResponse_PortEnd{PortEnd: &stagepb.PortEnd{Port: port}}}
}

// FuzzRunResponses feeds the host's end of a Run call whatever a plugin
// may send: any sequence of messages, well formed or not, with any Arrow
// data in them. The call must end, with a result or an error, and give
// back every byte of Arrow memory; nothing may panic.
func FuzzRunResponses(f *testing.F) {
	rec := intBatch(memory.NewGoAllocator())
	defer rec.Release()
	good := captureMessages(f, rec)
	result := &stagepb.RunResponse{Msg: &stagepb.RunResponse_Result{Result: &stagepb.RunResult{RowsOut: map[string]int64{"out": 3}}}}
	credit := &stagepb.RunResponse{Msg: &stagepb.RunResponse_Credit{Credit: &stagepb.Credit{Port: "in", Messages: 4}}}
	progress := &stagepb.RunResponse{Msg: &stagepb.RunResponse_Progress{Progress: &stagepb.Progress{Done: 1, Total: 2, Message: "half", Metrics: map[string]float64{"loss": 0.5}}}}
	f.Add(frameResponses(f, credit, dataMsg("out", good[0]), dataMsg("out", good[1]), progress, portEnd("out"), result))
	f.Add(frameResponses(f, dataMsg("out", good[0]), portEnd("out"), dataMsg("out", good[1]), result))
	f.Add(frameResponses(f, &stagepb.RunResponse{Msg: &stagepb.RunResponse_Error{Error: &stagepb.Error{
		Kind: stagepb.Error_KIND_INPUT, Port: "in", Message: "bad row",
		Diagnostics: []*stagepb.Diagnostic{{Summary: "s", AttributePath: []string{"a", "b"}}},
	}}}))
	for _, d := range damages(f) {
		ms := captureMessages(f, rec)
		d.fn(f, ms[d.n])
		f.Add(frameResponses(f, dataMsg("out", ms[0]), dataMsg("out", ms[1]), portEnd("out"), result))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		c := stagehost.New(&scriptedPlugin{msgs: unframe(data)}, stagehost.WithPluginName("fuzz"), stagehost.WithAllocator(mem))
		in := intBatch(mem)
		rd := sdktestTable(in)
		in.Release()
		var rows int64
		_, err := c.Run(context.Background(), stagehost.RunRequest{
			Kind: "k", Stage: "k.s",
			Inputs:     map[string]array.RecordReader{"in": rd},
			Outputs:    map[string]func(arrow.RecordBatch) error{"out": func(b arrow.RecordBatch) error { rows += b.NumRows(); return nil }},
			OnProgress: func(sdk.Progress) {},
		})
		rd.Release()
		var re *stagehost.RunError
		if err != nil && !errors.As(err, &re) {
			t.Errorf("error %v is not a *stagehost.RunError", err)
		}
		mem.AssertSize(t, 0)
	})
}

func sdktestTable(rec arrow.RecordBatch) array.RecordReader {
	r, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		panic(err)
	}
	return r
}

// captureMessages is what a port writer sends for rec: its schema's
// message, then its batch's.
func captureMessages(t testing.TB, rec arrow.RecordBatch) []*stagepb.ArrowData {
	t.Helper()
	var out []*stagepb.ArrowData
	w := stagerpc.NewPortWriter("p", stagerpc.NewGate(100), func(d *stagepb.ArrowData) error {
		out = append(out, &stagepb.ArrowData{DataHeader: append([]byte(nil), d.DataHeader...), DataBody: append([]byte(nil), d.DataBody...)})
		return nil
	}, stagerpc.WriterOptions{})
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return out
}

// describingPlugin answers Describe with fixed bytes.
type describingPlugin struct {
	stagepb.StageServiceClient
	js []byte
}

func (p *describingPlugin) Describe(context.Context, *stagepb.DescribeRequest, ...grpc.CallOption) (*stagepb.DescribeResponse, error) {
	return &stagepb.DescribeResponse{DescriptionJson: p.js}, nil
}

// schemaStream frames a schema message as flight.SerializeSchema does: an
// IPC stream of that one message.
func schemaStream(meta []byte) []byte {
	pad := (8 - len(meta)%8) % 8
	out := binary.LittleEndian.AppendUint32(nil, 0xFFFFFFFF)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(meta)+pad))
	out = append(out, meta...)
	out = append(out, make([]byte, pad)...)
	return binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(out, 0xFFFFFFFF), 0)
}

// FuzzDescribe decodes what a plugin describes itself as, as the host
// does: the JSON, then every port's Arrow schema. Nothing may panic.
func FuzzDescribe(f *testing.F) {
	set := sdk.NewSet(sdk.WithName("test"))
	sdk.Register(set, "passthrough", sdk.StageInfo{
		Inputs:  []sdk.Port{{Name: "input", Schema: intSchema}},
		Outputs: []sdk.Port{{Name: "output", Schema: intSchema}},
	}, func(noConfig) (sdk.Stage, error) { return passthrough{}, nil })
	good := set.Describe()
	js, err := json.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	good.Stages[0].Outputs[0].ArrowSchema = schemaStream(cyclicSchema(f))
	js, err = json.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Fuzz(func(t *testing.T, js []byte) {
		d, err := stagehost.New(&describingPlugin{js: js}).Describe(context.Background())
		if err != nil {
			return
		}
		for _, st := range d.Stages {
			for _, p := range append(st.Inputs, st.Outputs...) {
				_, _ = p.PortSchema()
			}
		}
	})
}

// A plugin that declares a damaged schema is refused, not followed.
func TestDamagedPortSchema(t *testing.T) {
	p := describe.PortDescription{Name: "out", ArrowSchema: schemaStream(cyclicSchema(t))}
	_, err := p.PortSchema()
	if err == nil || !strings.Contains(err.Error(), "damaged Arrow metadata: ") {
		t.Errorf("got %v, want ...damaged Arrow metadata: ...", err)
	}
	good := describe.PortDescription{Name: "out", ArrowSchema: schemaStream(schemaMessage(t, intSchema))}
	if s, err := good.PortSchema(); err != nil || !s.Equal(intSchema) {
		t.Errorf("undamaged: got %v, %v", s, err)
	}
}
