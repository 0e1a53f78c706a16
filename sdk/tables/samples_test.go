package tables

import (
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The samples column round-trips, is null for every training row, reads
// as 0 from a table written before it, and a stored 0 or negative count
// is refused with its row.
func TestSamplesColumn(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rec := BuildCandidates(mem, []Candidate{{ID: "a", Samples: 250}, {ID: "b"}})
	defer rec.Release()
	col := rec.Column(rec.Schema().FieldIndices(ColSamples)[0])
	if col.IsNull(0) || !col.IsNull(1) {
		t.Errorf("samples nulls %v, %v; want a value, then null", col.IsNull(0), col.IsNull(1))
	}
	got, err := ReadCandidates(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Samples != 250 || got[1].Samples != 0 {
		t.Errorf("samples %d, %d; want 250, 0", got[0].Samples, got[1].Samples)
	}

	var keep []arrow.Array
	var fields []arrow.Field
	for i, f := range rec.Schema().Fields() {
		if f.Name != ColSamples {
			keep, fields = append(keep, rec.Column(i)), append(fields, f)
		}
	}
	old := array.NewRecordBatch(arrow.NewSchema(fields, nil), keep, rec.NumRows())
	defer old.Release()
	if got, err := ReadCandidates(old); err != nil || got[0].Samples != 0 {
		t.Errorf("a table without samples: %v, %v", got, err)
	}

	b := array.NewInt64Builder(mem)
	b.AppendValues([]int64{0, -3}, nil)
	bad := b.NewArray()
	b.Release()
	defer bad.Release()
	cols := rec.Columns()
	cols = append(cols[:len(cols)-1:len(cols)-1], bad)
	badRec := array.NewRecordBatch(rec.Schema(), cols, 2)
	defer badRec.Release()
	_, err = ReadCandidates(badRec)
	if err == nil || !strings.Contains(err.Error(), "row 0, column samples: samples 0 is not positive") || !strings.Contains(err.Error(), "row 1, column samples: samples -3") {
		t.Errorf("samples 0 and -3: error %v", err)
	}
}
