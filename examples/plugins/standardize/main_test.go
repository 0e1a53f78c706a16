package main

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
)

// table is a dataset as the dataset stage emits it: features a (mean 5, sd
// 3), b (mean -2, sd 0.1), a constant c, the int64 target "label", and the
// split; in several batches. The test rows are shifted far from the train
// rows, so statistics taken over all rows would be visibly wrong.
type table struct {
	a, b, c []float64
	label   []int64
	split   []string
}

func makeTable(n int) table {
	rng := rand.New(rand.NewPCG(1, 2))
	var t table
	for i := range n {
		s := "train"
		shift := 0.0
		switch i % 5 {
		case 3:
			s, shift = "validation", 50
		case 4:
			s, shift = "test", 100
		}
		t.a = append(t.a, 5+3*rng.NormFloat64()+shift)
		t.b = append(t.b, -2+0.1*rng.NormFloat64()+shift)
		t.c = append(t.c, 7)
		t.label = append(t.label, int64(i%3))
		t.split = append(t.split, s)
	}
	return t
}

var schema = func() *arrow.Schema {
	md := arrow.NewMetadata([]string{"sweetspot.target", "sweetspot.task", "sweetspot.classes"}, []string{"label", "classification", "3"})
	return arrow.NewSchema([]arrow.Field{
		{Name: "a", Type: arrow.PrimitiveTypes.Float64},
		{Name: "b", Type: arrow.PrimitiveTypes.Float64},
		{Name: "c", Type: arrow.PrimitiveTypes.Float64},
		{Name: "label", Type: arrow.PrimitiveTypes.Int64},
		{Name: "split", Type: arrow.BinaryTypes.String},
	}, &md)
}()

// batches builds t in batches of size rows with mem.
func (t table) batches(mem memory.Allocator, size int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	for lo := 0; lo < len(t.a); lo += size {
		hi := min(lo+size, len(t.a))
		b := array.NewRecordBuilder(mem, schema)
		b.Field(0).(*array.Float64Builder).AppendValues(t.a[lo:hi], nil)
		b.Field(1).(*array.Float64Builder).AppendValues(t.b[lo:hi], nil)
		b.Field(2).(*array.Float64Builder).AppendValues(t.c[lo:hi], nil)
		b.Field(3).(*array.Int64Builder).AppendValues(t.label[lo:hi], nil)
		b.Field(4).(*array.StringBuilder).AppendValues(t.split[lo:hi], nil)
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return out
}

// run standardizes t through the real plugin protocol (sdktest serves the
// plugin in process, with checked allocators on both sides that must be
// back to zero when the test ends) and returns the output columns.
func run(t *testing.T, config cty.Value, in table) (map[string][]float64, []arrow.RecordBatch, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	batches := in.batches(mem, 64)
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	res, err := sdktest.Run(t, newSet(), kind, config, map[string][]arrow.RecordBatch{inputPort: batches})
	if err != nil {
		return nil, nil, err
	}
	out := map[string][]float64{}
	for _, b := range res[outputPort] {
		for i, f := range b.Schema().Fields() {
			if col, ok := b.Column(i).(*array.Float64); ok {
				out[f.Name] = append(out[f.Name], col.Float64Values()...)
			}
		}
	}
	return out, res[outputPort], nil
}

func trainMoments(xs []float64, split []string) (mean, sd float64) {
	var n float64
	for i, x := range xs {
		if split[i] == "train" {
			mean += x
			n++
		}
	}
	mean /= n
	for i, x := range xs {
		if split[i] == "train" {
			sd += (x - mean) * (x - mean)
		}
	}
	return mean, math.Sqrt(sd / n)
}

func TestStandardize(t *testing.T) {
	in := makeTable(1000)
	got, batches, err := run(t, cty.EmptyObjectVal, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"a", "b"} {
		mean, sd := trainMoments(got[col], in.split)
		if math.Abs(mean) > 1e-9 || math.Abs(sd-1) > 1e-9 {
			t.Errorf("column %s on train rows: mean %g, sd %g; want 0, 1", col, mean, sd)
		}
	}
	// Held-out rows are scaled with the training statistics: test rows of
	// a sit about 100/3 standard deviations above the training mean.
	wantMean, wantSD := trainMoments(in.a, in.split)
	for i, s := range in.split {
		want := (in.a[i] - wantMean) / wantSD
		if math.Abs(got["a"][i]-want) > 1e-9 {
			t.Fatalf("row %d (%s): a = %g, want %g", i, s, got["a"][i], want)
		}
	}
	// The constant column is centred, not divided by zero.
	for i, v := range got["c"] {
		if v != 0 {
			t.Fatalf("row %d: c = %g, want 0", i, v)
		}
	}

	// Target, split, column order and schema metadata pass through; the
	// statistics are recorded on the scaled fields.
	out := batches[0].Schema()
	if len(batches) != 16 || out.NumFields() != 5 {
		t.Fatalf("%d batches of %d columns, want 16 of 5", len(batches), out.NumFields())
	}
	for i, f := range schema.Fields() {
		if o := out.Field(i); o.Name != f.Name || !arrow.TypeEqual(o.Type, f.Type) {
			t.Errorf("field %d is %s %s, want %s %s", i, o.Name, o.Type, f.Name, f.Type)
		}
	}
	if v, _ := out.Metadata().GetValue("sweetspot.target"); v != "label" {
		t.Errorf("sweetspot.target = %q after standardize", v)
	}
	for key, want := range map[string]float64{metaMean: wantMean, metaStd: wantSD} {
		v, _ := out.Field(0).Metadata.GetValue(key)
		if f, err := strconv.ParseFloat(v, 64); err != nil || math.Abs(f-want) > 1e-9 {
			t.Errorf("a's %s = %q, want %g", key, v, want)
		}
	}
	var row int
	for _, b := range batches {
		labels := b.Column(3).(*array.Int64)
		split := b.Column(4).(*array.String)
		for i := range int(b.NumRows()) {
			if labels.Value(i) != in.label[row] || split.Value(i) != in.split[row] {
				t.Fatalf("row %d: label %d split %s, want %d %s", row, labels.Value(i), split.Value(i), in.label[row], in.split[row])
			}
			row++
		}
	}
}

func TestStandardizeChosenColumns(t *testing.T) {
	in := makeTable(200)
	got, _, err := run(t, cty.ObjectVal(map[string]cty.Value{
		"columns": cty.ListVal([]cty.Value{cty.StringVal("b")}),
	}), in)
	if err != nil {
		t.Fatal(err)
	}
	if mean, sd := trainMoments(got["b"], in.split); math.Abs(mean) > 1e-9 || math.Abs(sd-1) > 1e-9 {
		t.Errorf("b on train rows: mean %g, sd %g; want 0, 1", mean, sd)
	}
	for i := range in.a {
		if got["a"][i] != in.a[i] || got["c"][i] != in.c[i] {
			t.Fatalf("row %d: unlisted columns changed", i)
		}
	}
}

// Epsilon decides when a column counts as flat: a column of spread 0.1
// is only centred under epsilon = 1.
func TestStandardizeEpsilon(t *testing.T) {
	in := makeTable(200)
	got, _, err := run(t, cty.ObjectVal(map[string]cty.Value{"epsilon": cty.NumberFloatVal(1)}), in)
	if err != nil {
		t.Fatal(err)
	}
	mean, _ := trainMoments(in.b, in.split)
	for i := range in.b {
		if math.Abs(got["b"][i]-(in.b[i]-mean)) > 1e-12 {
			t.Fatalf("row %d: b = %g, want only centred %g", i, got["b"][i], in.b[i]-mean)
		}
	}
}

func TestStandardizeColumnErrors(t *testing.T) {
	cases := []struct {
		columns []string
		path    string
		summary string
	}{
		{[]string{"a", "nope"}, "columns.1", "Unknown column"},
		{[]string{"label"}, "columns.0", "Column may not be standardized"},
		{[]string{"split"}, "columns.0", "Column may not be standardized"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.columns, ","), func(t *testing.T) {
			var vals []cty.Value
			for _, s := range c.columns {
				vals = append(vals, cty.StringVal(s))
			}
			_, _, err := run(t, cty.ObjectVal(map[string]cty.Value{"columns": cty.ListVal(vals)}), makeTable(20))
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) || len(ds) != 1 || strings.Join(ds[0].Path, ".") != c.path || ds[0].Summary != c.summary {
				t.Errorf("got %v, want one %q diagnostic on %s", err, c.summary, c.path)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	neg := -1.0
	for _, cfg := range []Config{{Epsilon: &neg}, {Columns: []string{}}, {Columns: []string{"a", "a"}}} {
		if _, err := newStage(cfg); err == nil {
			t.Errorf("newStage(%+v) succeeded, want a config error", cfg)
		}
	}
}

// fakePorts runs the stage without the wire, so that the input batches are
// the test's own: allocated by a checked allocator, they only return to
// zero if the stage releases every batch it retained while buffering. (Over
// the wire, the plugin's input batches are decoded from message buffers the
// allocator does not see.)
type fakePorts struct {
	in  array.RecordReader
	out []arrow.RecordBatch
}

func (f *fakePorts) Reader(port string) (array.RecordReader, error) {
	if port != inputPort {
		return nil, sdk.ErrNotConnected
	}
	return f.in, nil
}

func (f *fakePorts) Writer(port string) (sdk.BatchWriter, error) { return f, nil }

func (f *fakePorts) Write(b arrow.RecordBatch) error {
	b.Retain()
	f.out = append(f.out, b)
	return nil
}

func TestStandardizeReleasesInput(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	batches := makeTable(300).batches(mem, 50)
	reader := sdktest.Table(schema, batches...)
	for _, b := range batches {
		b.Release() // the reader holds them now
	}
	st, err := newStage(Config{})
	if err != nil {
		t.Fatal(err)
	}
	ports := &fakePorts{in: reader}
	if err := st.Run(context.Background(), ports, ports); err != nil {
		t.Fatal(err)
	}
	reader.Release()
	if len(ports.out) != 6 {
		t.Errorf("%d batches out, want 6", len(ports.out))
	}
	// Outputs share the unscaled columns with the inputs, so they too must
	// be released before the allocator is back to zero.
	for _, b := range ports.out {
		b.Release()
	}
}
