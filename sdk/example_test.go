package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
)

// scaleConfig is the body of a `stage "scale" "NAME" { ... }` block. Its
// tags are the HCL schema the plugin describes to the host.
type scaleConfig struct {
	Column string   `hcl:"column" doc:"The float64 column to scale."`
	Factor *float64 `hcl:"factor,optional" doc:"The multiplier (default 2)."`
}

// newScale checks a config and builds the stage: a per-batch map that
// multiplies one float64 column by a factor and passes every other column
// through.
func newScale(c scaleConfig) (sdk.Stage, error) {
	factor := 2.0
	if c.Factor != nil {
		factor = *c.Factor
	}
	if factor == 0 || math.IsInf(factor, 0) {
		return nil, sdk.AttrError("factor", "Invalid factor", fmt.Sprintf("factor must be finite and not 0; found %g.", factor))
	}
	return sdk.MapBatches("input", "output", func(ctx context.Context, b arrow.RecordBatch) (arrow.RecordBatch, error) {
		idx := b.Schema().FieldIndices(c.Column)
		if len(idx) == 0 || b.Column(idx[0]).DataType().ID() != arrow.FLOAT64 {
			return nil, &sdk.InputError{Row: -1, Column: c.Column, Err: errors.New("no float64 column of that name")}
		}
		ctx = compute.WithAllocator(ctx, sdk.Allocator(ctx))
		scaled, err := compute.Multiply(ctx, compute.ArithmeticOptions{}, compute.NewDatum(b.Column(idx[0])), compute.NewDatum(factor))
		if err != nil {
			return nil, err
		}
		defer scaled.Release()
		cols := slices.Clone(b.Columns())
		cols[idx[0]] = scaled.(*compute.ArrayDatum).MakeArray()
		defer cols[idx[0]].Release()
		return array.NewRecordBatch(b.Schema(), cols, b.NumRows()), nil
	}), nil
}

// newScaleSet is what a plugin's main builds before calling
// set.Run(os.Args[1:]).
func newScaleSet() *sdk.Set {
	set := sdk.NewSet(sdk.WithName("scale"), sdk.WithVersion("0.1.0"))
	sdk.Register(set, "scale", sdk.StageInfo{
		Description: "Multiplies a float64 column by a factor.",
		Inputs:      []sdk.Port{{Name: "input", Description: "Any table with the column."}},
		Outputs:     []sdk.Port{{Name: "output", Description: "The same table, the column scaled."}},
	}, newScale)
	return set
}

// A plugin registers its stage kinds in a Set; its main hands the set to
// Run, which serves the host that started it. Here the set is served in
// process with sdktest, and a host-side client drives it over the real
// protocol: config checking, then a run that streams Arrow batches.
func Example_stagePlugin() {
	set := newScaleSet()
	// In a plugin's main:
	//
	//	if err := set.Run(os.Args[1:]); err != nil {
	//		fmt.Fprintln(os.Stderr, err)
	//		os.Exit(1)
	//	}

	p, err := sdktest.Connect(set)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() {
		// Close also reports Arrow memory left unreleased on either side.
		if err := p.Close(); err != nil {
			fmt.Println(err)
		}
	}()
	ctx := context.Background()

	desc, err := p.Describe(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range desc.Stage("scale").Config.Attributes {
		fmt.Printf("attribute %s %s required=%t\n", a.Name, a.Type, a.Required)
	}

	// The host checks each stage's config before it runs anything.
	diags, err := p.Configure(ctx, "scale", cty.ObjectVal(map[string]cty.Value{
		"column": cty.StringVal("x"), "factor": cty.Zero,
	}))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range diags {
		fmt.Printf("diagnostic at %v: %s: %s\n", d.Path, d.Summary, d.Detail)
	}

	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"a", "b", "c"}, nil)
	b.Field(1).(*array.Float64Builder).AppendValues([]float64{1, -0.5, 3.5}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	input := sdktest.Table(schema, rec)
	defer input.Release()

	res, err := p.Run(ctx, stagehost.RunRequest{
		Kind:   "scale",
		Stage:  "scale.double",
		Config: cty.ObjectVal(map[string]cty.Value{"column": cty.StringVal("x")}),
		Inputs: map[string]array.RecordReader{"input": input},
		Outputs: map[string]func(arrow.RecordBatch) error{
			"output": func(b arrow.RecordBatch) error {
				fmt.Println("output:", b.Column(0), b.Column(1))
				return nil
			},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("rows out:", res.RowsOut["output"])

	// Output:
	// attribute column "string" required=true
	// attribute factor "number" required=false
	// diagnostic at [factor]: Invalid factor: factor must be finite and not 0; found 0.
	// output: ["a" "b" "c"] [2 -1 7]
	// rows out: 3
}

// The example's stage passes the conformance suite that every stage should
// run in its tests.
func TestScaleConformance(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true}}, nil)
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	b.AppendValues([]float64{1, 2, 0, 4}, []bool{true, true, false, true})
	col := b.NewArray()
	b.Release()
	rec := array.NewRecordBatch(schema, []arrow.Array{col}, 4)
	col.Release()
	defer rec.Release()
	in := map[string][]arrow.RecordBatch{"input": {rec, rec}}
	sdktest.TestStage(t, newScaleSet(), "scale",
		sdktest.Case{Name: "default factor", Config: `column = "x"`, Inputs: in},
		sdktest.Case{Name: "factor", Config: scaleConfig{Column: "x", Factor: ptrTo(-0.5)}, Inputs: in},
		sdktest.Case{Name: "no such column", Config: `column = "y"`, Inputs: in, WantRunError: true},
		sdktest.Case{Name: "zero factor", Config: "column = \"x\"\nfactor = 0\n", WantErrorPaths: []string{"factor"}},
		sdktest.Case{Name: "no column", Config: nil, WantErrorPaths: []string{"column"}},
	)
}

func ptrTo[T any](v T) *T { return &v }
