package onnx

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The few ONNX protobuf messages an MLP needs, written with protowire.
// Field numbers are those of onnx/onnx.proto (IR version 8); fields this
// encoder never sets are left out.

// Tensor element types (TensorProto.DataType).
const (
	typeFloat  int32 = 1
	typeInt8   int32 = 3
	typeInt32  int32 = 6
	typeInt64  int32 = 7
	typeDouble int32 = 11
)

// AttributeProto.AttributeType values.
const (
	attrFloat int32 = 1
	attrInt   int32 = 2
	attrInts  int32 = 7
)

type tensorProto struct {
	name  string
	dims  []int64
	dtype int32
	// raw holds the values little-endian, as TensorProto.raw_data.
	raw []byte
}

type attribute struct {
	name string
	typ  int32
	f    float32
	i    int64
	ints []int64
}

type nodeProto struct {
	name, op     string
	inputs, outs []string
	attrs        []attribute
	docString    string
}

// dim is a dimension: a fixed size, or a named symbolic one (param).
type dim struct {
	value int64
	param string
}

type valueInfo struct {
	name, doc string
	elem      int32
	shape     []dim
}

type graphProto struct {
	name    string
	doc     string
	nodes   []nodeProto
	inits   []tensorProto
	inputs  []valueInfo
	outputs []valueInfo
}

type modelProto struct {
	irVersion       int64
	opset           int64
	producer        string
	producerVersion string
	doc             string
	graph           graphProto
	metadata        [][2]string
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendMessage appends field num holding the message msg writes.
func appendMessage(b []byte, num protowire.Number, msg func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg(nil))
}

func (t *tensorProto) append(b []byte) []byte {
	if len(t.dims) > 0 {
		var packed []byte
		for _, d := range t.dims {
			packed = protowire.AppendVarint(packed, uint64(d))
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, packed)
	}
	b = appendVarint(b, 2, uint64(t.dtype))
	b = appendString(b, 8, t.name)
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	return protowire.AppendBytes(b, t.raw)
}

func (a *attribute) append(b []byte) []byte {
	b = appendString(b, 1, a.name)
	switch a.typ {
	case attrFloat:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case attrInt:
		b = appendVarint(b, 3, uint64(a.i))
	case attrInts:
		for _, v := range a.ints {
			b = appendVarint(b, 8, uint64(v))
		}
	}
	return appendVarint(b, 20, uint64(a.typ))
}

func (n *nodeProto) append(b []byte) []byte {
	for _, in := range n.inputs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range n.outs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = appendString(b, 3, n.name)
	b = appendString(b, 4, n.op)
	for i := range n.attrs {
		b = appendMessage(b, 5, n.attrs[i].append)
	}
	return appendString(b, 6, n.docString)
}

func (v *valueInfo) append(b []byte) []byte {
	b = appendString(b, 1, v.name)
	b = appendMessage(b, 2, func(b []byte) []byte { // TypeProto
		return appendMessage(b, 1, func(b []byte) []byte { // TypeProto.Tensor
			b = appendVarint(b, 1, uint64(v.elem))
			return appendMessage(b, 2, func(b []byte) []byte { // TensorShapeProto
				for _, d := range v.shape {
					b = appendMessage(b, 1, func(b []byte) []byte {
						if d.param != "" {
							return appendString(b, 2, d.param)
						}
						return appendVarint(b, 1, uint64(d.value))
					})
				}
				return b
			})
		})
	})
	return appendString(b, 3, v.doc)
}

func (g *graphProto) append(b []byte) []byte {
	for i := range g.nodes {
		b = appendMessage(b, 1, g.nodes[i].append)
	}
	b = appendString(b, 2, g.name)
	for i := range g.inits {
		b = appendMessage(b, 5, g.inits[i].append)
	}
	b = appendString(b, 10, g.doc)
	for i := range g.inputs {
		b = appendMessage(b, 11, g.inputs[i].append)
	}
	for i := range g.outputs {
		b = appendMessage(b, 12, g.outputs[i].append)
	}
	return b
}

func (m *modelProto) marshal() []byte {
	var b []byte
	b = appendVarint(b, 1, uint64(m.irVersion))
	b = appendString(b, 2, m.producer)
	b = appendString(b, 3, m.producerVersion)
	b = appendString(b, 6, m.doc)
	b = appendMessage(b, 7, m.graph.append)
	b = appendMessage(b, 8, func(b []byte) []byte { // OperatorSetIdProto, the default domain
		return appendVarint(b, 2, uint64(m.opset))
	})
	for _, kv := range m.metadata {
		b = appendMessage(b, 14, func(b []byte) []byte {
			b = appendString(b, 1, kv[0])
			return appendString(b, 2, kv[1])
		})
	}
	return b
}
