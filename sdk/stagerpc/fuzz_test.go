package stagerpc

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// frameMessages packs a port's messages into one fuzz input: each
// message's metadata and body, each preceded by its length as a uvarint.
func frameMessages(ms []*stagepb.ArrowData) []byte {
	var out []byte
	for _, m := range ms {
		out = binary.AppendUvarint(out, uint64(len(m.DataHeader)))
		out = append(out, m.DataHeader...)
		out = binary.AppendUvarint(out, uint64(len(m.DataBody)))
		out = append(out, m.DataBody...)
	}
	return out
}

// unframeMessages is frameMessages' inverse; what does not parse ends the
// list.
func unframeMessages(b []byte) []*stagepb.ArrowData {
	var ms []*stagepb.ArrowData
	next := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		part := b[k : k+int(n)]
		b = b[k+int(n):]
		return part, true
	}
	for len(b) > 0 {
		h, ok := next()
		if !ok {
			break
		}
		body, _ := next()
		ms = append(ms, &stagepb.ArrowData{Port: "p", DataHeader: h, DataBody: body})
	}
	return ms
}

// portMessages is what a PortWriter sends for recs.
func portMessages(t testing.TB, schema *arrow.Schema, recs ...arrow.RecordBatch) []*stagepb.ArrowData {
	t.Helper()
	var out []*stagepb.ArrowData
	w := NewPortWriter("p", NewGate(1<<20), func(d *stagepb.ArrowData) error {
		out = append(out, &stagepb.ArrowData{DataHeader: append([]byte(nil), d.DataHeader...), DataBody: append([]byte(nil), d.DataBody...)})
		return nil
	}, WriterOptions{ChunkBytes: 256})
	for _, r := range recs {
		if err := w.Write(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(context.Background(), schema); err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzInbox decodes a port's messages as they arrive from the other end of
// a stage's stream, through the Inbox and Reader both the host and the sdk
// read with. Whatever arrives, reading ends in batches whose every value
// reads safely, or an error: never a panic, a crash or a hang, and every
// byte read is given back.
// testdata/fuzz/FuzzInbox holds damaged messages that killed the reader
// before the Inbox checked them.
func FuzzInbox(f *testing.F) {
	mem := memory.NewGoAllocator()
	big := makeBatch(mem, 0, 40, 7)
	defer big.Release()
	f.Add(frameMessages(portMessages(f, testSchema, big)))
	f.Add(frameMessages(portMessages(f, testSchema)))
	dictType := &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}
	db := array.NewDictionaryBuilder(mem, dictType)
	_ = db.(*array.BinaryDictionaryBuilder).AppendString("a")
	_ = db.(*array.BinaryDictionaryBuilder).AppendString("b")
	dcol := db.NewArray()
	db.Release()
	dschema := arrow.NewSchema([]arrow.Field{{Name: "d", Type: dictType}}, nil)
	drec := array.NewRecordBatch(dschema, []arrow.Array{dcol}, 2)
	dcol.Release()
	defer drec.Release()
	f.Add(frameMessages(portMessages(f, dschema, drec)))

	f.Fuzz(func(t *testing.T, data []byte) {
		ms := unframeMessages(data)
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		b := NewInbox("p", len(ms)+1, func(string, int) {})
		for _, m := range ms {
			if err := b.Deliver(m); err != nil {
				t.Fatal(err)
			}
		}
		b.End()
		rd, err := b.Reader(ipc.WithAllocator(mem))
		if err != nil {
			mem.AssertSize(t, 0)
			return
		}
		for rd.Next() {
			// A batch the reader gives reads safely: every value.
			for _, col := range rd.RecordBatch().Columns() {
				for i := range col.Len() {
					_ = col.ValueStr(i)
				}
			}
		}
		_ = rd.Err()
		rd.Release()
		mem.AssertSize(t, 0)
	})
}
