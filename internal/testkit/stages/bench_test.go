package stages

import (
	"context"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
)

func TestBenchStagesConform(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	table := Batch(mem, 0, 20)
	defer table.Release()
	floats := FloatsBatch(mem, 3, 100)
	defer floats.Release()
	set := NewSet("testkit")
	sdktest.TestStage(t, set, "trivial_eval", sdktest.Case{Inputs: map[string][]arrow.RecordBatch{"input": {table}}})
	sdktest.TestStage(t, set, "floats",
		sdktest.Case{Name: "default shape", Config: `rows = 100000`},
		sdktest.Case{Name: "last batch short", Config: `
rows       = 1000
columns    = 2
batch_rows = 300
`},
		sdktest.Case{Name: "negative rows", Config: `rows = -1`, WantErrorPaths: []string{"rows"}},
		sdktest.Case{Name: "too many columns", Config: "rows = 1\ncolumns = 5000", WantErrorPaths: []string{"columns"}},
	)
	sdktest.TestStage(t, set, "discard", sdktest.Case{Inputs: map[string][]arrow.RecordBatch{"input": {floats}}})
	sdktest.TestStage(t, set, "scan", sdktest.Case{Inputs: map[string][]arrow.RecordBatch{"input": {floats}}})
}

// TestTrivialEvalResumes checks that journalled trials come back first and
// are not run again, as the evaluation stage does.
func TestTrivialEvalResumes(t *testing.T) {
	p := sdktest.Start(t, NewSet("testkit"))
	table := Batch(p.HostMem, 0, 5)
	defer table.Release()
	b := array.NewRecordBuilder(p.HostMem, TrialSchema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues([]int64{1, 3}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{0.5, 0.25}, nil)
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"ok", "ok"}, nil)
	journal := b.NewRecordBatch()
	defer journal.Release()
	in, err := array.NewRecordReader(TableSchema, []arrow.RecordBatch{table})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Release()
	resume, err := array.NewRecordReader(TrialSchema, []arrow.RecordBatch{journal})
	if err != nil {
		t.Fatal(err)
	}
	defer resume.Release()
	var trials []int64
	batches := 0
	_, err = p.Run(context.Background(), stagehost.RunRequest{
		Kind: "trivial_eval", Stage: "trivial_eval.t", Config: cty.EmptyObjectVal,
		Inputs: map[string]array.RecordReader{"input": in, "resume": resume},
		Outputs: map[string]func(arrow.RecordBatch) error{"results": func(rec arrow.RecordBatch) error {
			batches++
			ids := rec.Column(0).(*array.Int64)
			for i := 0; i < ids.Len(); i++ {
				trials = append(trials, ids.Value(i))
			}
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{1, 3, 0, 2, 4}, trials); diff != "" {
		t.Errorf("trials written (-want +got):\n%s", diff)
	}
	// The journalled rows in one batch, then one batch per trial run.
	if batches != 4 {
		t.Errorf("%d batches, want 4", batches)
	}
}
