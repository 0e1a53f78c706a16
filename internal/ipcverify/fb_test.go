package ipcverify

import (
	"bytes"
	"encoding/binary"
	"slices"

	flatbuffers "github.com/google/flatbuffers/go"
)

// The tests write Arrow metadata by hand, with the flatbuffers builder
// arrow-go itself uses, so that each case can damage exactly one thing.
// Every kind of message built here is also read by arrow-go undamaged
// (TestHandBuiltMessagesAreArrow), so a refusal is the damage's doing.

// Arrow's enum values (format/Schema.fbs, Message.fbs).
const (
	typeInt       = 2
	typeTimestamp = 10
	typeStruct    = 13
	typeUnion     = 14

	headerSchema = 1
	headerDict   = 2
	headerBatch  = 3
	headerTensor = 4

	metadataV5 = 4
)

type uoff = flatbuffers.UOffsetT

// fb is a flatbuffer under construction. Offsets are from the buffer's
// end until Finish; at returns where one lies in the finished bytes.
type fb struct{ *flatbuffers.Builder }

func newFB() fb { return fb{flatbuffers.NewBuilder(256)} }

func (b fb) finish(root uoff) []byte {
	b.Finish(root)
	return slices.Clone(b.FinishedBytes())
}

// at returns the position in buf, finished by b, of the object at off.
func at(buf []byte, off uoff) int { return len(buf) - int(off) }

func put32(buf []byte, pos int, v uint32) { binary.LittleEndian.PutUint32(buf[pos:], v) }

func (b fb) intType() uoff {
	b.StartObject(2) // Int{bitWidth, is_signed}
	b.PrependInt32Slot(0, 64, 0)
	b.PrependBoolSlot(1, true, false)
	return b.EndObject()
}

func (b fb) emptyTable() uoff { // Struct_, Null, ...
	b.StartObject(0)
	return b.EndObject()
}

func (b fb) timestampType(tz string) uoff {
	s := b.CreateString(tz)
	b.StartObject(2) // Timestamp{unit, timezone}
	b.PrependInt16Slot(0, 2, 0)
	b.PrependUOffsetTSlot(1, s, 0)
	return b.EndObject()
}

func (b fb) unionType(ids ...int32) uoff {
	b.StartVector(4, len(ids), 4)
	for _, id := range slices.Backward(ids) {
		b.PrependInt32(id)
	}
	v := b.EndVector(len(ids))
	b.StartObject(2) // Union{mode, typeIds}
	b.PrependInt16Slot(0, 0, -1)
	b.PrependUOffsetTSlot(1, v, 0)
	return b.EndObject()
}

func (b fb) keyValues(kv ...string) uoff {
	var tables []uoff
	for i := 0; i+1 < len(kv); i += 2 {
		k, v := b.CreateString(kv[i]), b.CreateString(kv[i+1])
		b.StartObject(2) // KeyValue{key, value}
		b.PrependUOffsetTSlot(0, k, 0)
		b.PrependUOffsetTSlot(1, v, 0)
		tables = append(tables, b.EndObject())
	}
	return b.CreateVectorOfTables(tables)
}

// fieldOpts holds what a Field table may carry besides its name and type.
type fieldOpts struct {
	children []uoff
	dict     uoff // DictionaryEncoding table, 0 for none
	meta     uoff // KeyValue vector, 0 for none
}

func (b fb) field(name string, typeType byte, typ uoff, o fieldOpts) uoff {
	n := b.CreateString(name)
	kids := b.CreateVectorOfTables(o.children)
	b.StartObject(7) // Field{name, nullable, type_type, type, dictionary, children, custom_metadata}
	b.PrependUOffsetTSlot(0, n, 0)
	b.PrependBoolSlot(1, true, false)
	b.PrependByteSlot(2, typeType, 0)
	b.PrependUOffsetTSlot(3, typ, 0)
	if o.dict != 0 {
		b.PrependUOffsetTSlot(4, o.dict, 0)
	}
	b.PrependUOffsetTSlot(5, kids, 0)
	if o.meta != 0 {
		b.PrependUOffsetTSlot(6, o.meta, 0)
	}
	return b.EndObject()
}

func (b fb) intField(name string) uoff { return b.field(name, typeInt, b.intType(), fieldOpts{}) }

// dictEncoding returns a DictionaryEncoding table and its index type's.
func (b fb) dictEncoding(id int64) (table, indexType uoff) {
	indexType = b.intType()
	b.StartObject(4) // DictionaryEncoding{id, indexType, isOrdered, dictionaryKind}
	b.PrependInt64Slot(0, id, 0)
	b.PrependUOffsetTSlot(1, indexType, 0)
	return b.EndObject(), indexType
}

// schema returns a Schema table and its fields vector.
func (b fb) schema(fields []uoff, meta uoff) (table, fieldVec uoff) {
	fieldVec = b.CreateVectorOfTables(fields)
	b.StartObject(4) // Schema{endianness, fields, custom_metadata, features}
	b.PrependUOffsetTSlot(1, fieldVec, 0)
	if meta != 0 {
		b.PrependUOffsetTSlot(2, meta, 0)
	}
	return b.EndObject(), fieldVec
}

// schemaMessage is a schema message of the given fields.
func schemaMessage(fields func(b fb) []uoff) []byte {
	b := newFB()
	s, _ := b.schema(fields(b), 0)
	return b.finish(b.message(headerSchema, s, 0))
}

// node is a FieldNode struct: {length, null_count}.
type node struct{ length, nulls int64 }

// buf is a Buffer struct: {offset, length} into the message body.
type buf struct{ offset, length int64 }

// batch is a RecordBatch table; its vectors' offsets are kept for
// patching.
type batch struct {
	table, nodes, buffers, variadic uoff
}

func (b fb) recordBatch(length int64, nodes []node, bufs []buf, variadic []int64) batch {
	var r batch
	b.StartVector(16, len(nodes), 8)
	for _, n := range slices.Backward(nodes) {
		b.Prep(8, 16)
		b.PrependInt64(n.nulls)
		b.PrependInt64(n.length)
	}
	r.nodes = b.EndVector(len(nodes))
	b.StartVector(16, len(bufs), 8)
	for _, x := range slices.Backward(bufs) {
		b.Prep(8, 16)
		b.PrependInt64(x.length)
		b.PrependInt64(x.offset)
	}
	r.buffers = b.EndVector(len(bufs))
	if variadic != nil {
		b.StartVector(8, len(variadic), 8)
		for _, c := range slices.Backward(variadic) {
			b.PrependInt64(c)
		}
		r.variadic = b.EndVector(len(variadic))
	}
	b.StartObject(5) // RecordBatch{length, nodes, buffers, compression, variadicBufferCounts}
	b.PrependInt64Slot(0, length, 0)
	b.PrependUOffsetTSlot(1, r.nodes, 0)
	b.PrependUOffsetTSlot(2, r.buffers, 0)
	if variadic != nil {
		b.PrependUOffsetTSlot(4, r.variadic, 0)
	}
	r.table = b.EndObject()
	return r
}

func (b fb) dictionaryBatch(id int64, data uoff) uoff {
	b.StartObject(3) // DictionaryBatch{id, data, isDelta}
	b.PrependInt64Slot(0, id, 0)
	if data != 0 {
		b.PrependUOffsetTSlot(1, data, 0)
	}
	return b.EndObject()
}

func (b fb) message(headerType byte, header uoff, bodyLen int64) uoff {
	b.StartObject(5) // Message{version, header_type, header, bodyLength, custom_metadata}
	b.PrependInt16Slot(0, metadataV5, 0)
	b.PrependByteSlot(1, headerType, 0)
	if header != 0 {
		b.PrependUOffsetTSlot(2, header, 0)
	}
	b.PrependInt64Slot(3, bodyLen, 0)
	return b.EndObject()
}

// Hand-built messages over one int64 column "x".

func intSchemaMessage() []byte {
	return schemaMessage(func(b fb) []uoff { return []uoff{b.intField("x")} })
}

// intBatchMessage is a batch of xs' length; its body is intBody(xs).
func intBatchMessage(n int) []byte {
	b := newFB()
	rb := b.recordBatch(int64(n), []node{{int64(n), 0}}, []buf{{0, 0}, {0, 8 * int64(n)}}, nil)
	return b.finish(b.message(headerBatch, rb.table, 8*int64(n)))
}

func intBody(xs ...int64) []byte {
	body := make([]byte, 8*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint64(body[8*i:], uint64(x))
	}
	return body
}

// frame writes a message as a stream does: continuation marker, length,
// metadata padded to 8 bytes, body.
func frame(meta, body []byte) []byte {
	padded := append(slices.Clone(meta), make([]byte, (8-len(meta)%8)%8)...)
	out := binary.LittleEndian.AppendUint32(nil, 0xFFFFFFFF)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(padded)))
	out = append(out, padded...)
	return append(out, body...)
}

var endOfStream = []byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0}

// stream joins framed messages and the end-of-stream marker.
func stream(framed ...[]byte) []byte {
	return append(bytes.Join(framed, nil), endOfStream...)
}

// block is a File.fbs Block struct.
type block struct {
	offset  int64
	metaLen int32
	bodyLen int64
}

// ipcFile lays out an IPC file: magic, the schema message, the batch
// messages (framed, with bodies), then a footer whose blocks are
// adjust(the true blocks).
func ipcFile(schemaMeta []byte, batches [][2][]byte, adjust func([]block)) []byte {
	out := []byte("ARROW1\x00\x00")
	out = append(out, frame(schemaMeta, nil)...)
	var blocks []block
	for _, m := range batches {
		f := frame(m[0], m[1])
		blocks = append(blocks, block{int64(len(out)), int32(len(f) - len(m[1])), int64(len(m[1]))})
		out = append(out, f...)
	}
	out = append(out, endOfStream...)
	if adjust != nil {
		adjust(blocks)
	}
	b := newFB()
	schema, _ := b.schema([]uoff{b.intField("x")}, 0)
	b.StartVector(24, 0, 8)
	dicts := b.EndVector(0)
	b.StartVector(24, len(blocks), 8)
	for _, bl := range slices.Backward(blocks) {
		b.Prep(8, 24)
		b.PrependInt64(bl.bodyLen)
		b.Pad(4)
		b.PrependInt32(bl.metaLen)
		b.PrependInt64(bl.offset)
	}
	rbs := b.EndVector(len(blocks))
	b.StartObject(5) // Footer{version, schema, dictionaries, recordBatches, custom_metadata}
	b.PrependInt16Slot(0, metadataV5, 0)
	b.PrependUOffsetTSlot(1, schema, 0)
	b.PrependUOffsetTSlot(2, dicts, 0)
	b.PrependUOffsetTSlot(3, rbs, 0)
	footer := b.finish(b.EndObject())
	out = append(out, footer...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(footer)))
	return append(out, "ARROW1"...)
}
