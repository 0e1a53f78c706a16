package stagerpc

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// frames cuts b into pieces, as gRPC hands over a message read in
// HTTP/2 frames.
func frames(b []byte, size int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		n := min(size, len(b))
		s = append(s, mem.SliceBuffer(bytes.Clone(b[:n])))
		b = b[n:]
	}
	return s
}

func marshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newRequest and newResponse are messages that already hold something,
// which decoding must replace, not merge into (gRPC reuses messages).
func newRequest() proto.Message {
	return &stagepb.RunRequest{Msg: &stagepb.RunRequest_Credit{Credit: &stagepb.Credit{Port: "old", Messages: 3}}}
}

func newResponse() proto.Message {
	return &stagepb.RunResponse{Msg: &stagepb.RunResponse_Credit{Credit: &stagepb.Credit{Port: "old", Messages: 3}}}
}

// TestCodecDecodesLikeProto checks that whatever the codec's fast path
// takes or leaves, every message decodes as proto.Unmarshal decodes it.
func TestCodecDecodesLikeProto(t *testing.T) {
	body := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 20000)
	data := &stagepb.ArrowData{Port: "input", DataHeader: []byte("header"), DataBody: body}
	req := marshal(t, &stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: data}})
	resp := marshal(t, &stagepb.RunResponse{Msg: &stagepb.RunResponse_Data{Data: data}})
	// An ArrowData with an unknown field 9 after its body.
	unknown := protowire.AppendTag(nil, 2, protowire.BytesType)
	inner := marshal(t, data)
	inner = protowire.AppendTag(inner, 9, protowire.BytesType)
	inner = protowire.AppendBytes(inner, []byte("later"))
	unknown = protowire.AppendBytes(unknown, inner)
	// The port field twice: proto keeps the last.
	twice := protowire.AppendTag(nil, 2, protowire.BytesType)
	in2 := marshal(t, data)
	in2 = protowire.AppendTag(in2, 1, protowire.BytesType)
	in2 = protowire.AppendString(in2, "other")
	twice = protowire.AppendBytes(twice, in2)
	badUTF8 := marshal(t, &stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: &stagepb.ArrowData{Port: "x", DataBody: body}}})
	badUTF8[bytes.Index(badUTF8, []byte("x"))] = 0xff

	tests := []struct {
		name string
		b    []byte
		msg  func() proto.Message
	}{
		{"request data", req, newRequest},
		{"response data", resp, newResponse},
		{"empty header and port", marshal(t, &stagepb.RunResponse{Msg: &stagepb.RunResponse_Data{Data: &stagepb.ArrowData{DataBody: body}}}), newResponse},
		{"small", marshal(t, &stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: &stagepb.ArrowData{Port: "p", DataBody: []byte{1}}}}), newRequest},
		{"unknown field", unknown, newRequest},
		{"repeated field", twice, newRequest},
		{"bad utf-8 port", badUTF8, newRequest},
		{"truncated", req[:len(req)-10], newRequest},
		{"data sent as the other message", req, newResponse},
	}
	c := newCodec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.msg()
			wantErr := proto.Unmarshal(tt.b, want)
			got := tt.msg()
			err := c.Unmarshal(frames(tt.b, 16<<10), got)
			if (err != nil) != (wantErr != nil) {
				t.Fatalf("error %v, proto.Unmarshal's %v", err, wantErr)
			}
			if err == nil && !proto.Equal(got, want) {
				t.Errorf("decoded differently from proto.Unmarshal")
			}
		})
	}
}

// TestCodecFastPathTakesArrowData checks that the fast path, not the
// generic decoder, decodes a large ArrowData: its body aliases the one
// copy of the message.
func TestCodecFastPathTakesArrowData(t *testing.T) {
	body := bytes.Repeat([]byte{9}, 1<<20)
	b := marshal(t, &stagepb.RunRequest{Msg: &stagepb.RunRequest_Data{Data: &stagepb.ArrowData{Port: "in", DataHeader: []byte("h"), DataBody: body}}})
	d, ok := decodeArrowData(frames(b, 16<<10), 2)
	if !ok {
		t.Fatal("the fast path refused a plain ArrowData")
	}
	if !bytes.Equal(d.GetDataBody(), body) || string(d.GetDataHeader()) != "h" || d.GetPort() != "in" {
		t.Fatalf("decoded port %q header %q and %d body bytes", d.GetPort(), d.GetDataHeader(), len(d.GetDataBody()))
	}
	if cap(d.DataHeader) != len(d.DataHeader) {
		t.Error("the header's capacity reaches into the body: an append to it would overwrite the body")
	}
}
