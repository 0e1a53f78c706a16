package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
)

var pointSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.BinaryTypes.String},
	{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "n", Type: arrow.PrimitiveTypes.Int32},
}, nil)

// points builds batches of pointSchema from JSON rows, one batch per
// argument, released when the test ends.
func points(t *testing.T, batches ...string) []arrow.RecordBatch {
	t.Helper()
	var out []arrow.RecordBatch
	for _, js := range batches {
		rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, pointSchema, strings.NewReader(js))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rec.Release)
		out = append(out, rec)
	}
	return out
}

var threeBatches = []string{
	`[{"id": "a", "x": -1, "n": 1}, {"id": "b", "x": 0.5, "n": 2}, {"id": "c", "x": 3, "n": 3}, {"id": "d", "x": 1, "n": 4}]`,
	`[{"id": "e", "x": null, "n": 5}, {"id": "f", "x": 2, "n": 6}]`,
	`[{"id": "g", "x": 9, "n": 7}]`,
}

// run filters the input over the real protocol (sdktest serves the plugin
// in process) and returns the ids kept and the summary row.
func run(t *testing.T, config cty.Value, in []arrow.RecordBatch) (ids []string, summary []int64, err error) {
	t.Helper()
	out, err := sdktest.Run(t, newSet(), kind, config, map[string][]arrow.RecordBatch{inputPort: in})
	if err != nil {
		return nil, nil, err
	}
	for _, b := range out[outputPort] {
		if !b.Schema().Equal(pointSchema) {
			t.Errorf("output schema %s, want the input's %s", b.Schema(), pointSchema)
		}
		for i := range int(b.NumRows()) {
			ids = append(ids, b.Column(0).(*array.String).Value(i))
		}
	}
	s := out[summaryPort]
	if len(s) != 1 || s[0].NumRows() != 1 {
		t.Fatalf("summary: %d batches, want one of one row", len(s))
	}
	return ids, []int64{s[0].Column(1).(*array.Int64).Value(0), s[0].Column(2).(*array.Int64).Value(0)}, nil
}

func num(f float64) cty.Value { return cty.NumberFloatVal(f) }

func TestFilter(t *testing.T) {
	in := points(t, threeBatches...)
	tests := []struct {
		name    string
		config  map[string]cty.Value
		ids     []string
		summary []int64
	}{
		{"min and max", map[string]cty.Value{"column": cty.StringVal("x"), "min": num(0), "max": num(2)}, []string{"b", "d", "f"}, []int64{7, 3}},
		{"min only", map[string]cty.Value{"column": cty.StringVal("x"), "min": num(1)}, []string{"c", "d", "f", "g"}, []int64{7, 4}},
		{"max only, nulls kept", map[string]cty.Value{"column": cty.StringVal("x"), "max": num(0.5), "keep_nulls": cty.True}, []string{"a", "b", "e"}, []int64{7, 3}},
		{"integer column", map[string]cty.Value{"column": cty.StringVal("n"), "min": num(2), "max": num(6)}, []string{"b", "c", "d", "e", "f"}, []int64{7, 5}},
		{"nothing kept", map[string]cty.Value{"column": cty.StringVal("x"), "min": num(100)}, nil, []int64{7, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids, summary, err := run(t, cty.ObjectVal(tc.config), in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.ids, ids); diff != "" {
				t.Errorf("ids kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.summary, summary); diff != "" {
				t.Errorf("summary rows_in, rows_out (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilterInputErrors(t *testing.T) {
	in := points(t, threeBatches...)
	tests := []struct {
		column string
		want   string
	}{
		{"y", `input port input, column "y": no such column; the input has id, x, n`},
		{"id", `input port input, column "id": column is utf8, not a number type`},
	}
	for _, tc := range tests {
		t.Run(tc.column, func(t *testing.T) {
			_, _, err := run(t, cty.ObjectVal(map[string]cty.Value{"column": cty.StringVal(tc.column), "min": num(0)}), in)
			var ie *sdk.InputError
			if !errors.As(err, &ie) || ie.Port != inputPort || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an input error saying %q", err, tc.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		config Config
		want   sdk.Diagnostics
	}{
		{"no column, no bound", Config{}, sdk.Diagnostics{
			{Severity: sdk.SeverityError, Summary: "Empty column name", Detail: "Set column to the name of a numeric column of the input.", Path: []string{"column"}},
			{Severity: sdk.SeverityError, Summary: "No bound", Detail: "Set min, max or both; without them the filter would keep every row."},
		}},
		{"empty range", Config{Column: "x", Min: ptr(2.0), Max: ptr(1.0)}, sdk.Diagnostics{
			{Severity: sdk.SeverityError, Summary: "Empty range", Detail: "max (1) is below min (2), so no row could be kept.", Path: []string{"max"}},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newFilter(tc.config)
			var got sdk.Diagnostics
			if !errors.As(err, &got) {
				t.Fatalf("got %v, want diagnostics", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestConformance runs the SDK's conformance suite: schemas, released
// batches, cancellation, config diagnostics, stdout. Keep it in your copy
// and add a case for every kind of config your stage accepts.
func TestConformance(t *testing.T) {
	in := map[string][]arrow.RecordBatch{inputPort: points(t, threeBatches...)}
	sdktest.TestStage(t, newSet(), kind,
		sdktest.Case{Name: "range", Inputs: in, Config: `
column = "x"
min    = 0
max    = 2
`},
		sdktest.Case{Name: "go config", Inputs: in, Config: Config{Column: "n", Max: ptr(3.0), KeepNulls: true}},
		sdktest.Case{Name: "empty input", Inputs: map[string][]arrow.RecordBatch{inputPort: nil}, Config: `
column = "x"
min    = 0
`},
		sdktest.Case{Name: "missing column", Inputs: in, Config: Config{Column: "zz", Min: ptr(0.0)}, WantRunError: true},
		sdktest.Case{Name: "empty range", Config: `
column = "x"
min    = 2
max    = 1
`, WantErrorPaths: []string{"max"}},
		sdktest.Case{Name: "no bound", Config: `column = ""`, WantErrorPaths: []string{"column", ""}},
	)
}
