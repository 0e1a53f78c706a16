package stagehost_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// Flatbuffers navigation, just enough to damage a message on purpose.
func u32(b []byte, p int) int { return int(binary.LittleEndian.Uint32(b[p:])) }

// fbRef follows the offset field i of the table at t to what it points at.
func fbRef(t testing.TB, b []byte, table, i int) int {
	t.Helper()
	vt := table - int(int32(binary.LittleEndian.Uint32(b[table:])))
	if 4+2*i >= int(binary.LittleEndian.Uint16(b[vt:])) {
		t.Fatalf("field %d absent", i)
	}
	p := table + int(binary.LittleEndian.Uint16(b[vt+4+2*i:]))
	return p + u32(b, p)
}

// fbElem is the table element k of the vector at v.
func fbElem(b []byte, v, k int) int { e := v + 4 + 4*k; return e + u32(b, e) }

// schemaMessage is the message a port writer sends first for schema.
func schemaMessage(t testing.TB, schema *arrow.Schema) []byte {
	t.Helper()
	var out []byte
	w := stagerpc.NewPortWriter("p", stagerpc.NewGate(100), func(d *stagepb.ArrowData) error {
		if out == nil {
			out = append([]byte(nil), d.DataHeader...)
		}
		return nil
	}, stagerpc.WriterOptions{})
	if err := w.Finish(context.Background(), schema); err != nil {
		t.Fatal(err)
	}
	return out
}

// cyclicSchema is the schema message of a struct column whose only child
// is the struct itself. arrow-go adds flatbuffers offsets as uint32, which
// wrap, and follows the cycle until the stack overflows: unchecked, this
// message kills the process that decodes it.
func cyclicSchema(t testing.TB) []byte {
	t.Helper()
	m := schemaMessage(t, arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.StructOf(arrow.Field{Name: "leaf", Type: arrow.PrimitiveTypes.Int64})}}, nil))
	s := fbRef(t, m, u32(m, 0), 2)           // Message.header: the Schema
	field := fbElem(m, fbRef(t, m, s, 1), 0) // Schema.fields[0]
	e := fbRef(t, m, field, 5) + 4           // Field.children[0]
	binary.LittleEndian.PutUint32(m[e:], uint32(field-e))
	return m
}

// farBuffer damages a batch message: its second buffer (the first column's
// values) starts far past the body. The metadata are well formed; arrow-go
// panics slicing the body.
func farBuffer(t testing.TB, m []byte) []byte {
	t.Helper()
	m = append([]byte(nil), m...)
	rb := fbRef(t, m, u32(m, 0), 2)
	bufs := fbRef(t, m, rb, 2) // RecordBatch.buffers: {offset, length} structs
	if u32(m, bufs) < 2 {
		t.Fatal("fewer than 2 buffers")
	}
	binary.LittleEndian.PutUint64(m[bufs+4+16:], 1<<40)
	return m
}

// nullsWithoutBitmap damages a batch message: its column claims a null
// but has no validity bitmap. arrow-go builds the array; reading whether
// a value is null would then panic, in whatever code reads it.
func nullsWithoutBitmap(t testing.TB, m []byte) []byte {
	t.Helper()
	m = append([]byte(nil), m...)
	rb := fbRef(t, m, u32(m, 0), 2)
	nodes := fbRef(t, m, rb, 1) // RecordBatch.nodes: {length, null_count} structs
	binary.LittleEndian.PutUint64(m[nodes+4+8:], 1)
	return m
}

var intSchema = arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)

func intBatch(mem memory.Allocator) arrow.RecordBatch {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.AppendValues([]int64{1, 2, 3}, nil)
	col := b.NewArray()
	defer col.Release()
	return array.NewRecordBatch(intSchema, []arrow.Array{col}, 3)
}

// damage replaces the n-th (0-based) ArrowData message of a port.
type damage struct {
	name string
	n    int
	fn   func(t testing.TB, d *stagepb.ArrowData)
	want string
}

func damages(t testing.TB) []damage {
	cyclic := cyclicSchema(t)
	rec := intBatch(memory.NewGoAllocator())
	defer rec.Release()
	var lz4 []*stagepb.ArrowData
	w := flight.NewRecordWriter(captureSender{&lz4}, ipc.WithSchema(intSchema), ipc.WithLZ4())
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	compressed := lz4[1]
	return []damage{{
		name: "schema whose field is its own child",
		n:    0,
		fn:   func(t testing.TB, d *stagepb.ArrowData) { d.DataHeader = cyclic },
		want: "damaged Arrow metadata: ",
	}, {
		name: "batch buffer past its body",
		n:    1,
		fn:   func(t testing.TB, d *stagepb.ArrowData) { d.DataHeader = farBuffer(t, d.DataHeader) },
		want: "arrow/ipc: unknown error while reading: ",
	}, {
		name: "null without a validity bitmap",
		n:    1,
		fn:   func(t testing.TB, d *stagepb.ArrowData) { d.DataHeader = nullsWithoutBitmap(t, d.DataHeader) },
		want: `damaged Arrow batch: column "x": buffer 0 holds 0 bytes, 3 rows of int64 need 1`,
	}, {
		name: "batch body cut short",
		n:    1,
		fn:   func(t testing.TB, d *stagepb.ArrowData) { d.DataBody = d.DataBody[:len(d.DataBody)-8] },
		want: "damaged Arrow message: its metadata announce a body of 24 bytes, and 16 came",
	}, {
		name: "compressed batch",
		n:    1,
		fn: func(t testing.TB, d *stagepb.ArrowData) {
			d.DataHeader, d.DataBody = compressed.DataHeader, compressed.DataBody
		},
		want: "compressed Arrow message: the stage protocol does not compress batches",
	}}
}

type captureSender struct{ out *[]*stagepb.ArrowData }

func (c captureSender) Send(fd *flight.FlightData) error {
	*c.out = append(*c.out, &stagepb.ArrowData{DataHeader: append([]byte(nil), fd.DataHeader...), DataBody: append([]byte(nil), fd.DataBody...)})
	return nil
}

// tamperingClient damages one ArrowData message of a port on its way
// out (toPlugin) or in.
type tamperingClient struct {
	stagepb.StageServiceClient
	t        testing.TB
	toPlugin bool
	port     string
	d        damage
}

func (c *tamperingClient) Run(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[stagepb.RunRequest, stagepb.RunResponse], error) {
	s, err := c.StageServiceClient.Run(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return &tamperingStream{BidiStreamingClient: s, c: c}, nil
}

type tamperingStream struct {
	grpc.BidiStreamingClient[stagepb.RunRequest, stagepb.RunResponse]
	c    *tamperingClient
	mu   sync.Mutex
	seen int
}

func (s *tamperingStream) tamper(d *stagepb.ArrowData) *stagepb.ArrowData {
	if d == nil || d.GetPort() != s.c.port {
		return d
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen++
	if s.seen-1 != s.c.d.n {
		return d
	}
	d = &stagepb.ArrowData{Port: d.Port, DataHeader: append([]byte(nil), d.DataHeader...), DataBody: append([]byte(nil), d.DataBody...)}
	s.c.d.fn(s.c.t, d)
	return d
}

func (s *tamperingStream) Send(m *stagepb.RunRequest) error {
	if d := m.GetData(); s.c.toPlugin && d != nil {
		m = &stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: s.tamper(d)}}
	}
	return s.BidiStreamingClient.Send(m)
}

func (s *tamperingStream) Recv() (*stagepb.RunResponse, error) {
	m, err := s.BidiStreamingClient.Recv()
	if d := m.GetData(); err == nil && !s.c.toPlugin && d != nil {
		m = &stagepb.RunResponse{Msg: &stagepb.RunResponse_Data{Data: s.tamper(d)}}
	}
	return m, err
}

type noConfig struct{}

type passthrough struct{}

func (passthrough) Run(_ context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader("input")
	if err != nil {
		return err
	}
	w, err := out.Writer("output")
	if err != nil {
		return err
	}
	for r.Next() {
		if err := w.Write(r.RecordBatch()); err != nil {
			return err
		}
	}
	return r.Err()
}

// A damaged Arrow message on a stage's stream, either way, ends the run
// with an error naming the stage and the port, and neither process dies:
// the host's checks guard the host, the sdk's the plugin.
func TestDamagedArrowMessages(t *testing.T) {
	set := sdk.NewSet(sdk.WithName("test"))
	sdk.Register(set, "passthrough", sdk.StageInfo{
		Inputs:  []sdk.Port{{Name: "input"}},
		Outputs: []sdk.Port{{Name: "output"}},
	}, func(noConfig) (sdk.Stage, error) { return passthrough{}, nil })
	pluginMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer pluginMem.AssertSize(t, 0)
	rc := sdktest.Serve(t, set, sdk.ServeAllocator(pluginMem))
	rpc, kill, err := sdktest.Attach(rc, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer kill()

	for _, dir := range []struct {
		name     string
		toPlugin bool
		port     string
		prefix   string
	}{
		{"host to plugin", true, "input", `stage passthrough.p (plugin test): input port "input": `},
		{"plugin to host", false, "output", `stage passthrough.p (plugin test): output port "output": `},
	} {
		for _, d := range damages(t) {
			t.Run(dir.name+"/"+d.name, func(t *testing.T) {
				hostMem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer hostMem.AssertSize(t, 0)
				c := stagehost.New(&tamperingClient{StageServiceClient: rpc, t: t, toPlugin: dir.toPlugin, port: dir.port, d: d},
					stagehost.WithPluginName("test"), stagehost.WithAllocator(hostMem))
				rec := intBatch(hostMem)
				in := sdktest.Table(intSchema, rec)
				rec.Release()
				defer in.Release()
				_, err := c.Run(context.Background(), stagehost.RunRequest{
					Kind: "passthrough", Stage: "passthrough.p",
					Inputs: map[string]array.RecordReader{"input": in},
				})
				var re *stagehost.RunError
				if !errors.As(err, &re) {
					t.Fatalf("got %v, want a *stagehost.RunError", err)
				}
				got := err.Error()
				want := dir.prefix + d.want
				if len(got) > len(want) {
					got = got[:len(want)]
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("error %q\n(-want +got, prefix):\n%s", err, diff)
				}
				if errors.Is(err, stagehost.ErrPluginCrashed) {
					t.Error("the plugin died")
				}
			})
		}
	}
	// The plugin still serves.
	if _, err := stagehost.New(rpc).Describe(context.Background()); err != nil {
		t.Errorf("describe after the damaged runs: %v", err)
	}
}
