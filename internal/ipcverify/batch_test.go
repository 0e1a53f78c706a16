package ipcverify

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// What arrow-go writes passes, sliced or not, and read back from a stream.
func TestValidateBatchPasses(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	recs := arrowBatches(t, mem, append(fileRows, deltaRow)...)
	defer release(recs)
	for i, rec := range recs {
		if err := ValidateBatch(rec); err != nil {
			t.Errorf("batch %d: %v", i, err)
		}
		s := rec.NewSlice(1, rec.NumRows())
		if err := ValidateBatch(s); err != nil {
			t.Errorf("batch %d sliced: %v", i, err)
		}
		s.Release()
	}
	r, err := NewStreamReader(strings.NewReader(string(writeStream(t, recs[:2]))), 1<<20, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for r.Next() {
		if err := ValidateBatch(r.RecordBatch()); err != nil {
			t.Errorf("read back: %v", err)
		}
	}
}

func int32s(xs ...int32) *memory.Buffer {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(x))
	}
	return memory.NewBufferBytes(b)
}

// Arrays as a damaged message may describe them: arrow-go builds each
// without complaint (it checks only the last offset of a string), and
// reading their values would panic.
func TestValidateBatchRefuses(t *testing.T) {
	ints := array.NewData(arrow.PrimitiveTypes.Int32, 3, []*memory.Buffer{nil, int32s(0, 1, 1)}, nil, 0, 0)
	defer ints.Release()
	for _, c := range []struct {
		name string
		data arrow.ArrayData
		want string
	}{{
		name: "string offsets going back",
		data: array.NewData(arrow.BinaryTypes.String, 2, []*memory.Buffer{nil, int32s(0, 3, 1), memory.NewBufferBytes([]byte("abcd"))}, nil, 0, 0),
		want: `column "c": offset 1 of value 1 is below the one before it, 3`,
	}, {
		name: "negative first offset",
		data: array.NewData(arrow.BinaryTypes.Binary, 1, []*memory.Buffer{nil, int32s(-4, 1), memory.NewBufferBytes([]byte("abcd"))}, nil, 0, 0),
		want: `column "c": negative offset -4`,
	}, {
		name: "list offsets past the child",
		data: array.NewData(arrow.ListOf(arrow.PrimitiveTypes.Int32), 2, []*memory.Buffer{nil, int32s(0, 1, 5)}, []arrow.ArrayData{ints}, 0, 0),
		want: `column "c": offsets reach 5, past the 3 child values`,
	}, {
		name: "dictionary index outside the dictionary",
		data: func() arrow.ArrayData {
			dict := array.NewData(arrow.BinaryTypes.String, 1, []*memory.Buffer{nil, int32s(0, 1), memory.NewBufferBytes([]byte("a"))}, nil, 0, 0)
			defer dict.Release()
			d := array.NewData(&arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}, 2,
				[]*memory.Buffer{nil, int32s(0, 7)}, nil, 0, 0)
			d.SetDictionary(dict)
			return d
		}(),
		want: `column "c": index 7 of value 1 is outside the dictionary's 1 values`,
	}, {
		name: "booleans without their bits",
		data: array.NewData(arrow.FixedWidthTypes.Boolean, 20, []*memory.Buffer{nil, memory.NewBufferBytes([]byte{0xff})}, nil, 0, 0),
		want: `column "c": buffer 1 holds 1 bytes, 20 rows of bool need 3`,
	}, {
		name: "struct field shorter than the struct",
		data: array.NewData(arrow.StructOf(arrow.Field{Name: "a", Type: arrow.PrimitiveTypes.Int32}), 5, []*memory.Buffer{nil}, []arrow.ArrayData{ints}, 0, 0),
		want: `column "c": a field holds 3 values for 5 rows`,
	}} {
		t.Run(c.name, func(t *testing.T) {
			defer c.data.Release()
			col := array.MakeFromData(c.data)
			defer col.Release()
			rec := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "c", Type: c.data.DataType()}}, nil), []arrow.Array{col}, int64(c.data.Len()))
			defer rec.Release()
			err := ValidateBatch(rec)
			if err == nil || err.Error() != c.want {
				t.Errorf("got %v, want %s", err, c.want)
			}
		})
	}
}
