// Package ipcverify checks Arrow IPC metadata before arrow-go decodes it,
// and caps the memory arrow-go's readers may hold, so that a damaged or
// hostile Arrow file cannot bring a plugin down, nor a damaged message
// on a stage's stream the host or the plugin at its other end.
//
// arrow-go (v18.8.0) decodes Arrow IPC metadata, which is flatbuffers,
// without checking it: a damaged vector length makes it allocate
// terabytes, and a cycle of child fields recurses until the stack
// overflows. Both kill the process outright, beyond recover. So the
// metadata of every message is checked here before arrow-go sees it, as
// flatbuffers' own verifiers would: every table, vector and string inside
// the buffer, nesting bounded. The layout is Arrow's format/Schema.fbs,
// Message.fbs and File.fbs.
//
// What the check leaves to arrow-go (bodies, buffer offsets) fails by
// panicking or by allocating through its allocator, both of which a
// caller survives: read under recover, through a [CappedAllocator].
// [NewFileReader] and [NewStreamReader] open verified readers;
// [VerifyFile] and [VerifyMessage] are the checks alone.
package ipcverify

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// MaxMetadataBytes bounds one message's metadata. Arrow writes a schema
// or batch header in kilobytes; more than this is a damaged length.
const MaxMetadataBytes = 64 << 20

// MaxFields bounds the fields of a schema read from outside: far above
// any dataset's columns, and what a stage's output may hold (the dataset
// stage refuses a wider file by name before it writes one).
const MaxFields = 1 << 16

// maxFieldDepth bounds the nesting of a schema's fields.
const maxFieldDepth = 64

// fbuf reads one flatbuffer, recording the first out-of-bounds read.
type fbuf struct {
	b      []byte
	err    error
	fields int // Field tables visited, against MaxFields
	// compressed is set when a batch names a body compression codec.
	compressed bool
}

func (f *fbuf) fail(format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("damaged Arrow metadata: "+format, args...)
	}
}

// in says b[pos:pos+n] lies inside the buffer.
func (f *fbuf) in(pos, n int64) bool {
	if pos < 0 || n < 0 || pos > int64(len(f.b)) || n > int64(len(f.b))-pos {
		f.fail("%d bytes at offset %d lie outside its %d bytes", n, pos, len(f.b))
		return false
	}
	return true
}

func (f *fbuf) u32(pos int64) int64 {
	if !f.in(pos, 4) {
		return 0
	}
	return int64(binary.LittleEndian.Uint32(f.b[pos:]))
}

func (f *fbuf) u16(pos int64) int64 {
	if !f.in(pos, 2) {
		return 0
	}
	return int64(binary.LittleEndian.Uint16(f.b[pos:]))
}

// table checks the table at pos and returns it, or -1.
func (f *fbuf) table(pos int64) int64 {
	if f.err != nil || !f.in(pos, 4) {
		return -1
	}
	vt := pos - int64(int32(binary.LittleEndian.Uint32(f.b[pos:])))
	size := f.u16(vt)
	if !f.in(vt, size) || size < 4 || size%2 != 0 || !f.in(pos, f.u16(vt+2)) {
		f.fail("bad table at offset %d", pos)
		return -1
	}
	return pos
}

func (f *fbuf) root() int64 { return f.table(f.u32(0)) }

// field returns where field i of table t lies, or -1 when absent.
func (f *fbuf) field(t int64, i int) int64 {
	if t < 0 || f.err != nil {
		return -1
	}
	vt := t - int64(int32(binary.LittleEndian.Uint32(f.b[t:])))
	if 4+2*int64(i) >= f.u16(vt) {
		return -1
	}
	off := f.u16(vt + 4 + 2*int64(i))
	if off == 0 {
		return -1
	}
	return t + off
}

// ref follows the offset field i of table t to what it points at, or -1.
func (f *fbuf) ref(t int64, i int) int64 {
	p := f.field(t, i)
	if p < 0 {
		return -1
	}
	return p + f.u32(p)
}

// vector checks the vector of elem-byte elements that field i of t points
// at, and returns its start and length (-1, 0 when absent).
func (f *fbuf) vector(t int64, i int, elem int64) (int64, int64) {
	v := f.ref(t, i)
	if v < 0 {
		return -1, 0
	}
	n := f.u32(v)
	if !f.in(v+4, n*elem) {
		return -1, 0
	}
	return v + 4, n
}

// tables calls visit on each table of the vector field i of t.
func (f *fbuf) tables(t int64, i int, visit func(int64)) {
	start, n := f.vector(t, i, 4)
	for k := int64(0); k < n && f.err == nil; k++ {
		e := start + 4*k
		visit(f.table(e + f.u32(e)))
	}
}

func (f *fbuf) sub(t int64, i int) int64 {
	p := f.ref(t, i)
	if p < 0 {
		return -1
	}
	return f.table(p)
}

func (f *fbuf) keyValues(t int64, i int) {
	f.tables(t, i, func(kv int64) {
		f.vector(kv, 0, 1)
		f.vector(kv, 1, 1)
	})
}

// Schema.fbs: Schema{endianness, fields, custom_metadata, features}.
func (f *fbuf) schema(s int64) {
	if s < 0 {
		f.fail("no schema")
		return
	}
	f.tables(s, 1, func(fl int64) { f.arrowField(fl, 1) })
	f.keyValues(s, 2)
	f.vector(s, 3, 8)
}

// Field{name, nullable, type_type, type, dictionary, children,
// custom_metadata}.
func (f *fbuf) arrowField(fl int64, depth int) {
	if fl < 0 {
		return
	}
	f.fields++
	switch {
	case depth > maxFieldDepth:
		f.fail("fields nested more than %d deep", maxFieldDepth)
		return
	case f.fields > MaxFields:
		f.fail("more than %d fields", MaxFields)
		return
	}
	f.vector(fl, 0, 1)
	var typeType int64
	if p := f.field(fl, 2); p >= 0 && f.in(p, 1) {
		typeType = int64(f.b[p])
	}
	if typ := f.sub(fl, 3); typ >= 0 {
		switch typeType {
		case 10: // Timestamp{unit, timezone}
			f.vector(typ, 1, 1)
		case 14: // Union{mode, typeIds}
			f.vector(typ, 1, 4)
		}
	}
	if d := f.sub(fl, 4); d >= 0 {
		f.sub(d, 1) // DictionaryEncoding{id, indexType, ...}
	}
	f.tables(fl, 5, func(c int64) { f.arrowField(c, depth+1) })
	f.keyValues(fl, 6)
}

// Message.fbs: RecordBatch{length, nodes, buffers, compression,
// variadicBufferCounts}; FieldNode and Buffer are 16-byte structs.
func (f *fbuf) recordBatch(rb int64) {
	if rb < 0 {
		f.fail("no record batch")
		return
	}
	if p := f.field(rb, 0); p >= 0 && f.in(p, 8) && int64(binary.LittleEndian.Uint64(f.b[p:])) < 0 {
		f.fail("negative row count")
	}
	nodes, nn := f.vector(rb, 1, 16)
	for k := int64(0); k < nn && f.err == nil; k++ {
		length := int64(binary.LittleEndian.Uint64(f.b[nodes+16*k:]))
		nulls := int64(binary.LittleEndian.Uint64(f.b[nodes+16*k+8:]))
		if length < 0 || nulls < 0 || nulls > length {
			f.fail("field node %d has length %d and %d nulls", k, length, nulls)
		}
	}
	_, nbuf := f.vector(rb, 2, 16)
	if f.sub(rb, 3) >= 0 {
		f.compressed = true
	}
	// arrow-go sizes a slice by each count before reading the buffers.
	counts, nc := f.vector(rb, 4, 8)
	total := int64(0)
	for k := int64(0); k < nc && f.err == nil; k++ {
		c := int64(binary.LittleEndian.Uint64(f.b[counts+8*k:]))
		if c < 0 || c > nbuf-total {
			f.fail("variadic buffer count %d exceeds the %d buffers", c, nbuf)
		}
		total += c
	}
}

// VerifyMessage checks the flatbuffer metadata of one IPC message (a
// Message table, without the stream's length prefix) and returns the
// length of the body that follows it. A schema, dictionary batch or record
// batch passes; any other message is refused, as sweetspot reads none.
//
// Message{version, header_type, header, bodyLength, custom_metadata}.
func VerifyMessage(meta []byte) (bodyLen int64, err error) {
	bodyLen, _, err = verifyMessage(meta)
	return bodyLen, err
}

// VerifyWireMessage checks one message of a stage's stream (Flight
// framing: metadata and body apart) before arrow-go decodes it: its
// metadata as VerifyMessage does, and that it fits the body that came with
// it. The stage protocol never compresses bodies, so a compressed batch is
// refused too: arrow-go would size the buffer it inflates into by a length
// written in the body, unchecked.
func VerifyWireMessage(meta []byte, body int) error {
	bodyLen, compressed, err := verifyMessage(meta)
	switch {
	case err != nil:
		return err
	case bodyLen > int64(body):
		return fmt.Errorf("damaged Arrow message: its metadata announce a body of %d bytes, and %d came", bodyLen, body)
	case compressed:
		return errors.New("compressed Arrow message: the stage protocol does not compress batches")
	}
	return nil
}

func verifyMessage(meta []byte) (bodyLen int64, compressed bool, err error) {
	f := &fbuf{b: meta}
	m := f.root()
	if p := f.field(m, 3); p >= 0 && f.in(p, 8) {
		bodyLen = int64(binary.LittleEndian.Uint64(f.b[p:]))
		if bodyLen < 0 {
			f.fail("negative body length %d", bodyLen)
		}
	}
	var headerType int64
	if p := f.field(m, 1); p >= 0 && f.in(p, 1) {
		headerType = int64(f.b[p])
	}
	h := f.sub(m, 2)
	switch headerType {
	case 1:
		f.schema(h)
	case 2: // DictionaryBatch{id, data, isDelta}
		if h < 0 {
			f.fail("no dictionary batch")
		}
		f.recordBatch(f.sub(h, 1))
	case 3:
		f.recordBatch(h)
	default:
		f.fail("message type %d is not a schema or a batch", headerType)
	}
	f.keyValues(m, 4)
	return bodyLen, f.compressed, f.err
}

// VerifyFile checks an IPC file's footer, and the metadata of every
// message it lists, before arrow-go reads them. r holds size bytes.
func VerifyFile(r io.ReaderAt, size int64) error {
	const tail = 10 // footer length (int32) and "ARROW1"
	if size < int64(len(ipc.Magic))+tail {
		return errors.New("too short for an Arrow IPC file")
	}
	var t [tail]byte
	if _, err := r.ReadAt(t[:], size-tail); err != nil {
		return err
	}
	n := int64(int32(binary.LittleEndian.Uint32(t[:4])))
	if string(t[4:]) != string(ipc.Magic) || n <= 0 || n > size-tail-int64(len(ipc.Magic)) {
		return errors.New("damaged Arrow IPC file: no footer at its end")
	}
	footer := make([]byte, n)
	if _, err := r.ReadAt(footer, size-tail-n); err != nil {
		return err
	}
	// File.fbs: Footer{version, schema, dictionaries, recordBatches,
	// custom_metadata}; Block{offset, metaDataLength, bodyLength} is a
	// 24-byte struct.
	f := &fbuf{b: footer}
	root := f.root()
	f.schema(f.sub(root, 1))
	f.keyValues(root, 4)
	for _, i := range []int{2, 3} {
		start, nb := f.vector(root, i, 24)
		for k := int64(0); k < nb && f.err == nil; k++ {
			b := footer[start+24*k:]
			off := int64(binary.LittleEndian.Uint64(b))
			metaLen := int64(int32(binary.LittleEndian.Uint32(b[8:])))
			if off < 0 || metaLen < 8 || metaLen > size-off || metaLen > MaxMetadataBytes {
				return fmt.Errorf("damaged Arrow IPC file: block %d lies outside the file", k)
			}
			meta := make([]byte, metaLen)
			if _, err := r.ReadAt(meta, off); err != nil {
				return err
			}
			// The block's metadata is framed as in a stream.
			skip := 4
			if int32(binary.LittleEndian.Uint32(meta)) == -1 {
				skip = 8
			}
			if _, err := VerifyMessage(meta[skip:]); err != nil {
				return err
			}
		}
	}
	return f.err
}
