package sdk_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
)

var intsSchema = arrow.NewSchema([]arrow.Field{{Name: "n", Type: arrow.PrimitiveTypes.Int64}}, nil)

func ints(t *testing.T, vs ...int64) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, intsSchema)
	defer b.Release()
	b.Field(0).(*array.Int64Builder).AppendValues(vs, nil)
	rec := b.NewRecordBatch()
	t.Cleanup(rec.Release)
	return rec
}

type mapConfig struct {
	// FailAt makes the stage refuse the value, as data it cannot use.
	FailAt *int64 `hcl:"fail_at,optional"`
	// Drop makes the stage write nothing for a batch holding the value.
	Drop *int64 `hcl:"drop,optional"`
}

// squareSet squares every value: a per-batch map.
func squareSet() *sdk.Set {
	set := sdk.NewSet(sdk.WithName("square"))
	sdk.Register(set, "square", sdk.StageInfo{
		Description: "Squares n.",
		Inputs:      []sdk.Port{{Name: "input", Schema: intsSchema}},
		Outputs:     []sdk.Port{{Name: "output", Schema: intsSchema}},
	}, func(c mapConfig) (sdk.Stage, error) {
		return sdk.MapBatches("input", "output", func(ctx context.Context, b arrow.RecordBatch) (arrow.RecordBatch, error) {
			ns := b.Column(0).(*array.Int64)
			out := array.NewInt64Builder(sdk.Allocator(ctx))
			defer out.Release()
			for i, n := range ns.Int64Values() {
				if c.FailAt != nil && n == *c.FailAt {
					return nil, &sdk.InputError{Row: int64(i), Column: "n", Err: errors.New("refused")}
				}
				if c.Drop != nil && n == *c.Drop {
					return nil, nil
				}
				out.Append(n * n)
			}
			col := out.NewArray()
			defer col.Release()
			return array.NewRecordBatch(intsSchema, []arrow.Array{col}, int64(col.Len())), nil
		}), nil
	})
	return set
}

func values(bs []arrow.RecordBatch) []int64 {
	var out []int64
	for _, b := range bs {
		out = append(out, b.Column(0).(*array.Int64).Int64Values()...)
	}
	return out
}

func TestMapBatches(t *testing.T) {
	in := map[string][]arrow.RecordBatch{"input": {ints(t, 1, 2), ints(t, 3, 4, 5), ints(t, -6)}}
	t.Run("maps every batch", func(t *testing.T) {
		out, err := sdktest.Run(t, squareSet(), "square", nil, in)
		if err != nil {
			t.Fatal(err)
		}
		want := []int64{1, 4, 9, 16, 25, 36}
		if got := values(out["output"]); !slices.Equal(got, want) {
			t.Errorf("output = %v, want %v", got, want)
		}
	})
	t.Run("a nil batch writes nothing", func(t *testing.T) {
		out, err := sdktest.Run(t, squareSet(), "square", `drop = 4`, in)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := values(out["output"]), []int64{1, 4, 36}; !slices.Equal(got, want) {
			t.Errorf("output = %v, want %v", got, want)
		}
	})
	t.Run("an input error is placed in the stream", func(t *testing.T) {
		// 5 is row 2 of the second batch, row 4 of the port's stream.
		_, err := sdktest.Run(t, squareSet(), "square", `fail_at = 5`, in)
		var ie *sdk.InputError
		if !errors.As(err, &ie) || ie.Port != "input" || !strings.Contains(err.Error(), `row 4, column "n": refused`) {
			t.Errorf("error = %v, want an input error at row 4 of port input", err)
		}
	})
	t.Run("conformance", func(t *testing.T) {
		sdktest.TestStage(t, squareSet(), "square",
			sdktest.Case{Name: "square", Inputs: in},
			sdktest.Case{Name: "refused", Config: `fail_at = 3`, Inputs: in, WantRunError: true})
	})
}

// TestWriteRow writes one row of every supported type, nulls included,
// and reads it back as the host received it.
func TestWriteRow(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "i", Type: arrow.PrimitiveTypes.Int32},
		{Name: "l", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean},
	}, nil)
	type rowConfig struct {
		Bad bool `hcl:"bad,optional"`
	}
	set := sdk.NewSet(sdk.WithName("row"))
	sdk.Register(set, "row", sdk.StageInfo{Description: "One row.", Outputs: []sdk.Port{{Name: "summary", Schema: schema}}},
		func(c rowConfig) (sdk.Stage, error) {
			return stageFunc(func(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
				w, err := out.Writer("summary")
				if err != nil {
					return err
				}
				if c.Bad {
					return sdk.WriteRow(ctx, w, schema, "x", int64(1), nil, nil, true)
				}
				var noFloat *float64
				return sdk.WriteRow(ctx, w, schema, "x", int32(7), nil, noFloat, true)
			}), nil
		})
	out, err := sdktest.Run(t, set, "row", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out["summary"]) != 1 || out["summary"][0].NumRows() != 1 {
		t.Fatalf("summary = %v, want one batch of one row", out["summary"])
	}
	b := out["summary"][0]
	if s := b.Column(0).(*array.String).Value(0); s != "x" {
		t.Errorf("s = %q", s)
	}
	if i := b.Column(1).(*array.Int32).Value(0); i != 7 {
		t.Errorf("i = %d", i)
	}
	if !b.Column(2).IsNull(0) || !b.Column(3).IsNull(0) {
		t.Error("nil and a nil pointer must be nulls")
	}
	if !b.Column(4).(*array.Boolean).Value(0) {
		t.Error("b = false")
	}
	if _, err := sdktest.Run(t, set, "row", `bad = true`, nil); err == nil || !strings.Contains(err.Error(), "field i: a int64 does not fit type int32") {
		t.Errorf("error = %v, want the int64 refused for the int32 field", err)
	}
}

type stageFunc func(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error

func (f stageFunc) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	return f(ctx, in, out)
}
