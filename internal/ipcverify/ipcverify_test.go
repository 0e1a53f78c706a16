package ipcverify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
)

// Schemas that must pass: each also reads in arrow-go (below), and the
// damaged messages are variants of them.
var goodSchemas = map[string]func(b fb) []uoff{
	"int": func(b fb) []uoff { return []uoff{b.intField("x")} },
	// Exactly maxFieldDepth levels: one more is refused.
	"structs 64 deep": func(b fb) []uoff { return []uoff{nested(b, maxFieldDepth)} },
	// 10 fields of 10 children that are all one table: 110 visits.
	"shared children": func(b fb) []uoff { return fan(b, 10) },
	"timestamp with a zone": func(b fb) []uoff {
		return []uoff{b.field("t", typeTimestamp, b.timestampType("Europe/Paris"), fieldOpts{})}
	},
	"union": func(b fb) []uoff {
		kids := []uoff{b.intField("a"), b.intField("b")}
		return []uoff{b.field("u", typeUnion, b.unionType(5, 7), fieldOpts{children: kids})}
	},
	"dictionary": func(b fb) []uoff {
		d, _ := b.dictEncoding(0)
		return []uoff{b.field("d", typeInt, b.intType(), fieldOpts{dict: d})}
	},
	"metadata": func(b fb) []uoff {
		return []uoff{b.field("m", typeInt, b.intType(), fieldOpts{meta: b.keyValues("unit", "cm")})}
	},
}

// nested returns a chain of depth fields: structs down to an int64.
func nested(b fb, depth int) uoff {
	f := b.intField("leaf")
	for range depth - 1 {
		f = b.field("s", typeStruct, b.emptyTable(), fieldOpts{children: []uoff{f}})
	}
	return f
}

// fan returns n struct fields whose n children are all one int64 field.
// Flatbuffers may share a table; a reader visits it each time.
func fan(b fb, n int) []uoff {
	leaf := b.intField("leaf")
	kids := make([]uoff, n)
	for i := range kids {
		kids[i] = leaf
	}
	top := make([]uoff, n)
	for i := range top {
		top[i] = b.field(fmt.Sprint("s", i), typeStruct, b.emptyTable(), fieldOpts{children: kids})
	}
	return top
}

func TestHandBuiltMessagesAreArrow(t *testing.T) {
	for name, fields := range goodSchemas {
		t.Run(name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			data := stream(frame(schemaMessage(fields), nil))
			r, err := NewStreamReader(bytes.NewReader(data), int64(len(data)), mem)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			if r.Schema().NumFields() == 0 || r.Next() {
				t.Errorf("got schema %v and a batch, want a schema and no batch", r.Schema())
			}
		})
	}
	t.Run("batch", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		data := stream(frame(intSchemaMessage(), nil), frame(intBatchMessage(3), intBody(1, 2, 3)))
		r, err := NewStreamReader(bytes.NewReader(data), int64(len(data)), mem)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var got []int64
		for r.Next() {
			got = append(got, r.RecordBatch().Column(0).(*array.Int64).Int64Values()...)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{1, 2, 3}, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("file", func(t *testing.T) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		data := ipcFile(intSchemaMessage(), [][2][]byte{{intBatchMessage(2), intBody(4, 5)}}, nil)
		r, err := NewFileReader(bytes.NewReader(data), mem)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, err := r.RecordBatch(0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]int64{4, 5}, b.Column(0).(*array.Int64).Int64Values()); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// damage is a hand-built message, damaged in one place.
type damage struct {
	name string
	meta []byte
	want string // in the error; "" when the message must pass
}

// patchString sets the length of the string s, which must occur once in
// buf, to n.
func patchString(t testing.TB, buf []byte, s string, n uint32) []byte {
	t.Helper()
	i := bytes.Index(buf, append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...))
	if i < 0 || bytes.Count(buf, []byte(s)) != 1 {
		t.Fatalf("%q is not once in the buffer", s)
	}
	put32(buf, i, n)
	return buf
}

func damagedMessages(t testing.TB) []damage {
	var ds []damage
	add := func(name, want string, meta []byte) { ds = append(ds, damage{name, meta, want}) }

	for name, fields := range goodSchemas {
		add("schema "+name, "", schemaMessage(fields))
	}
	add("batch", "", intBatchMessage(3))

	// The buffer itself.
	add("empty", "0 bytes", nil)
	m := intSchemaMessage()
	put32(m, 0, uint32(len(m)))
	add("root outside the buffer", "lie outside", m)
	m = intSchemaMessage()
	put32(m, int(binary.LittleEndian.Uint32(m)), 0x7fff0000)
	add("vtable outside the buffer", "lie outside", m)
	m = intSchemaMessage()
	root := int64(binary.LittleEndian.Uint32(m))
	vt := root - int64(int32(binary.LittleEndian.Uint32(m[root:])))
	binary.LittleEndian.PutUint16(m[vt:], 5)
	add("odd vtable size", "bad table", m)

	// Schemas.
	b := newFB()
	s, vec := b.schema([]uoff{b.intField("x")}, 0)
	m = b.finish(b.message(headerSchema, s, 0))
	put32(m, at(m, vec), 1<<28)
	add("fields vector past the end", "lie outside", m)

	add("field name past the end", "lie outside", patchString(t, schemaMessage(func(b fb) []uoff {
		return []uoff{b.intField("damaged_name")}
	}), "damaged_name", 1<<30))

	add("structs 65 deep", "fields nested more than 64 deep", schemaMessage(func(b fb) []uoff {
		return []uoff{nested(b, maxFieldDepth+1)}
	}))

	// arrow-go adds offsets as uint32, which wrap: an offset of nearly
	// 4 GiB points back to the field itself, and arrow-go recurses until
	// the stack overflows.
	b = newFB()
	leaf := b.intField("leaf")
	parent := b.field("s", typeStruct, b.emptyTable(), fieldOpts{children: []uoff{leaf}})
	s, _ = b.schema([]uoff{parent}, 0)
	m = b.finish(b.message(headerSchema, s, 0))
	p := at(m, parent)
	elem := int((&fbuf{b: m}).ref(int64(p), 5)) + 4 // Field.children[0]
	if got := elem + int(binary.LittleEndian.Uint32(m[elem:])); got != at(m, leaf) {
		t.Fatalf("found child at %d, want the leaf at %d", got, at(m, leaf))
	}
	put32(m, elem, uint32(p-elem))
	add("child that is its own parent", "lie outside", m)

	// 256 fields of 256 children: a small buffer, 65792 field visits.
	add("shared children", "more than 65536 fields", schemaMessage(func(b fb) []uoff { return fan(b, 256) }))

	add("time zone past the end", "lie outside", patchString(t, schemaMessage(func(b fb) []uoff {
		return []uoff{b.field("t", typeTimestamp, b.timestampType("Damaged/Zone"), fieldOpts{})}
	}), "Damaged/Zone", 1<<30))

	m = schemaMessage(goodSchemas["union"])
	ids := []byte{2, 0, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0}
	if bytes.Count(m, ids) != 1 {
		t.Fatal("union type ids not found once")
	}
	put32(m, bytes.Index(m, ids), 1<<28)
	add("union type ids past the end", "lie outside", m)

	add("metadata key past the end", "lie outside", patchString(t, schemaMessage(func(b fb) []uoff {
		return []uoff{b.field("m", typeInt, b.intType(), fieldOpts{meta: b.keyValues("damaged_key", "v")})}
	}), "damaged_key", 1<<30))

	b = newFB()
	d, idx := b.dictEncoding(0)
	s, _ = b.schema([]uoff{b.field("d", typeInt, b.intType(), fieldOpts{dict: d})}, 0)
	m = b.finish(b.message(headerSchema, s, 0))
	put32(m, at(m, idx), 0x80000000)
	add("dictionary index type damaged", "lie outside", m)

	// Messages and batches.
	batchMessage := func(length int64, nodes []node, bufs []buf, variadic []int64) []byte {
		b := newFB()
		return b.finish(b.message(headerBatch, b.recordBatch(length, nodes, bufs, variadic).table, 0))
	}
	b = newFB()
	m = b.finish(b.message(headerBatch, b.recordBatch(0, nil, nil, nil).table, -8))
	add("negative body length", "negative body length -8", m)
	add("negative row count", "negative row count", batchMessage(-1, nil, nil, nil))
	add("more nulls than values", "field node 0 has length 2 and 3 nulls", batchMessage(2, []node{{2, 3}}, nil, nil))
	add("negative node length", "field node 1 has length -1", batchMessage(2, []node{{2, 0}, {-1, 0}}, nil, nil))
	add("variadic counts", "", batchMessage(1, []node{{1, 0}}, make([]buf, 4), []int64{1, 1}))
	add("variadic count over the buffers", "variadic buffer count 3 exceeds the 2 buffers", batchMessage(1, nil, make([]buf, 2), []int64{3}))
	add("variadic counts adding up over the buffers", "variadic buffer count 2 exceeds the 3 buffers", batchMessage(1, nil, make([]buf, 3), []int64{2, 2}))
	add("negative variadic count", "variadic buffer count -1", batchMessage(1, nil, make([]buf, 2), []int64{-1}))
	for _, v := range []string{"nodes", "buffers", "variadic"} {
		b := newFB()
		rb := b.recordBatch(1, []node{{1, 0}}, make([]buf, 2), []int64{1})
		m := b.finish(b.message(headerBatch, rb.table, 0))
		off := map[string]uoff{"nodes": rb.nodes, "buffers": rb.buffers, "variadic": rb.variadic}[v]
		put32(m, at(m, off), 1<<27)
		add(v+" vector past the end", "lie outside", m)
	}

	// Dictionary batches.
	b = newFB()
	add("dictionary batch", "", b.finish(b.message(headerDict, b.dictionaryBatch(0, b.recordBatch(1, []node{{1, 0}}, make([]buf, 2), nil).table), 0)))
	b = newFB()
	add("dictionary batch without its header", "no dictionary batch", b.finish(b.message(headerDict, 0, 0)))
	b = newFB()
	add("dictionary batch without data", "no record batch", b.finish(b.message(headerDict, b.dictionaryBatch(0, 0), 0)))
	b = newFB()
	add("dictionary batch with damaged data", "has length 1 and 2 nulls", b.finish(b.message(headerDict, b.dictionaryBatch(0, b.recordBatch(1, []node{{1, 2}}, nil, nil).table), 0)))

	// Message kinds.
	b = newFB()
	add("tensor", "message type 4 is not a schema or a batch", b.finish(b.message(headerTensor, b.emptyTable(), 0)))
	b = newFB()
	add("no header type", "message type 0", b.finish(b.message(0, b.emptyTable(), 0)))
	b = newFB()
	add("schema message without a schema", "no schema", b.finish(b.message(headerSchema, 0, 0)))
	b = newFB()
	add("batch message without a batch", "no record batch", b.finish(b.message(headerBatch, 0, 0)))
	return ds
}

func TestVerifyMessage(t *testing.T) {
	for _, c := range damagedMessages(t) {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyMessage(c.meta)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "damaged Arrow metadata: ")):
				t.Errorf("got %v, want damaged Arrow metadata: ...%s...", err, c.want)
			}
		})
	}
}

// The body length a message declares is what a stream reader skips.
func TestVerifyMessageBodyLength(t *testing.T) {
	got, err := VerifyMessage(intBatchMessage(5))
	if err != nil || got != 40 {
		t.Errorf("got %d, %v; want 40, nil", got, err)
	}
}

// arrowBatches returns batches of many types, from rows (JSON arrays of
// objects), or fileRows when none are given.
func arrowBatches(t testing.TB, mem memory.Allocator, rows ...string) []arrow.RecordBatch {
	t.Helper()
	md := arrow.NewMetadata([]string{"source"}, []string{"ipcverify test"})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "i", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true, Metadata: arrow.NewMetadata([]string{"unit"}, []string{"cm"})},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "v", Type: arrow.BinaryTypes.StringView, Nullable: true},
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Europe/Paris"}},
		{Name: "l", Type: arrow.ListOf(arrow.StructOf(
			arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32},
			arrow.Field{Name: "b", Type: arrow.BinaryTypes.String, Nullable: true},
		))},
		{Name: "m", Type: arrow.MapOf(arrow.BinaryTypes.String, arrow.PrimitiveTypes.Int64)},
		{Name: "d", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int16, ValueType: arrow.BinaryTypes.String}},
		{Name: "u", Type: arrow.DenseUnionOf([]arrow.Field{
			{Name: "n", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
			{Name: "w", Type: arrow.BinaryTypes.String, Nullable: true},
		}, []arrow.UnionTypeCode{3, 9})},
	}, &md)
	if len(rows) == 0 {
		rows = fileRows
	}
	var out []arrow.RecordBatch
	for _, js := range rows {
		rec, _, err := array.RecordFromJSON(mem, schema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// fileRows make batches that hold the same dictionary, as an IPC file
// requires.
var fileRows = []string{
	`[{"i": 1, "f": 0.5, "s": "a", "v": "a string longer than twelve bytes", "t": 1700000000000, "l": [{"a": 1, "b": "x"}], "m": [{"key": "k", "value": 1}], "d": "red", "u": [3, 7]},
		  {"i": 2, "f": null, "s": null, "v": "short", "t": 1700000000001, "l": [], "m": [], "d": "blue", "u": [9, "w"]}]`,
	`[{"i": 3, "f": 2.5, "s": "c", "v": null, "t": 1700000000002, "l": [{"a": 2, "b": null}, {"a": 3, "b": "y"}], "m": [{"key": "j", "value": 2}], "d": "red", "u": [3, null]},
		  {"i": 4, "f": -1, "s": "", "v": "another string past twelve bytes", "t": 0, "l": null, "m": null, "d": "blue", "u": [9, null]}]`,
}

// deltaRow makes a batch whose dictionary extends fileRows', which a
// stream sends as a delta or a replacement.
const deltaRow = `[{"i": 5, "f": 1, "s": "e", "v": "e", "t": 5, "l": [], "m": [], "d": "red", "u": [3, 5]},
	{"i": 6, "f": 1, "s": "e", "v": "e", "t": 5, "l": [], "m": [], "d": "blue", "u": [3, 6]},
	{"i": 7, "f": 1, "s": "e", "v": "e", "t": 5, "l": [], "m": [], "d": "green", "u": [3, 7]}]`
