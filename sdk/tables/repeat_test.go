package tables

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The repeat, measured_from and repeats_held columns round-trip, and a
// table written before them reads with repeat 0 and nothing derived.
func TestRepeatColumns(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	c := Candidate{ID: "mlp-d1-w8", Family: FamilyMLP, Depth: 1, Width: 8, Params: 100, Repeat: 2}
	r := NewResult(c)
	r.MeasuredFrom, r.RepeatsHeld, r.Repeatable = "zoo.csv line 3", 3, true
	plain := NewResult(Candidate{ID: "mlp-d1-w16", Family: FamilyMLP, Depth: 1, Width: 16, Params: 200})
	rec := BuildResults(mem, []Result{r, plain})
	defer rec.Release()
	got, err := ReadResults(rec)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Repeat != 2 || got[0].MeasuredFrom != "zoo.csv line 3" || got[0].RepeatsHeld != 3 || !got[0].Repeatable {
		t.Errorf("row 0: repeat %d, measured_from %q, repeats_held %d; want 2, \"zoo.csv line 3\", 3", got[0].Repeat, got[0].MeasuredFrom, got[0].RepeatsHeld)
	}
	if got[1].Repeat != 0 || got[1].MeasuredFrom != "" || got[1].RepeatsHeld != 0 || got[1].Repeatable {
		t.Errorf("row 1: repeat %d, measured_from %q, repeats_held %d; want 0, \"\", 0", got[1].Repeat, got[1].MeasuredFrom, got[1].RepeatsHeld)
	}
	held := rec.Column(rec.Schema().FieldIndices(ColRepeatsHeld)[0])
	if !held.IsNull(1) {
		t.Error("repeats_held of a trained row is not null")
	}

	// A table written before the columns existed.
	var keep []arrow.Array
	var fields []arrow.Field
	for i, f := range rec.Schema().Fields() {
		if f.Name == ColRepeat || f.Name == ColMeasuredFrom || f.Name == ColRepeatsHeld || f.Name == ColRepeatable {
			continue
		}
		keep, fields = append(keep, rec.Column(i)), append(fields, f)
	}
	old := array.NewRecordBatch(arrow.NewSchema(fields, nil), keep, rec.NumRows())
	defer old.Release()
	got, err = ReadResults(old)
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Repeat != 0 || got[0].RepeatsHeld != 0 || got[0].MeasuredFrom != "" {
		t.Errorf("old table: repeat %d, repeats_held %d, measured_from %q; want 0, 0, \"\"", got[0].Repeat, got[0].RepeatsHeld, got[0].MeasuredFrom)
	}
}
