package stagerpc

import (
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// codec is gRPC's proto codec with a faster path for the one message that
// carries bulk data, ArrowData: it is decoded straight out of one copy of
// the received bytes, where the generic decoder copies every bytes field
// again. That second copy of each Arrow body was the largest single cost
// of receiving a batch. Every other message, and anything the fast path
// does not recognise, goes through proto.Unmarshal. The wire format is
// protobuf either way: either end may be an older build.
type codec struct{ base encoding.CodecV2 }

func newCodec() codec {
	return codec{base: encoding.GetCodecV2("proto")}
}

// Name is "proto": the content type stays application/grpc+proto.
func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

// fastDataBytes is the smallest message worth the fast path.
const fastDataBytes = 64 << 10

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if data.Len() >= fastDataBytes {
		switch m := v.(type) {
		case *stagepb.RunRequest:
			if d, ok := decodeArrowData(data, 2); ok {
				proto.Reset(m)
				m.Msg = &stagepb.RunRequest_Data{Data: d}
				return nil
			}
		case *stagepb.RunResponse:
			if d, ok := decodeArrowData(data, 1); ok {
				proto.Reset(m)
				m.Msg = &stagepb.RunResponse_Data{Data: d}
				return nil
			}
		}
	}
	return c.base.Unmarshal(data, v)
}

// decodeArrowData decodes a RunRequest or RunResponse whose only field is
// an ArrowData (field number field) holding nothing but its three known
// fields, each once. The header and body alias one fresh copy of data.
// ok is false for anything else, which the caller hands to the generic
// decoder: it knows what to make of unknown fields or damaged bytes.
func decodeArrowData(data mem.BufferSlice, field protowire.Number) (d *stagepb.ArrowData, ok bool) {
	b := data.Materialize()
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != field || typ != protowire.BytesType {
		return nil, false
	}
	b = b[n:]
	inner, n := protowire.ConsumeBytes(b)
	if n < 0 || n != len(b) {
		return nil, false
	}
	d = &stagepb.ArrowData{}
	var seen [4]bool
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 || typ != protowire.BytesType || num < 1 || num > 3 || seen[num] {
			return nil, false
		}
		seen[num] = true
		inner = inner[n:]
		v, n := protowire.ConsumeBytes(inner)
		if n < 0 {
			return nil, false
		}
		inner = inner[n:]
		if len(v) == 0 {
			// As proto.Unmarshal leaves an empty bytes field: nil.
			continue
		}
		switch num {
		case 1:
			if !utf8.Valid(v) {
				return nil, false
			}
			d.Port = string(v)
		case 2:
			d.DataHeader = v[:len(v):len(v)]
		case 3:
			d.DataBody = v[:len(v):len(v)]
		}
	}
	return d, true
}

var _ encoding.CodecV2 = codec{}
