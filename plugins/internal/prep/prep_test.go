package prep

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want Spec
		name string
	}{
		{"", nil, "none"},
		{"none", nil, "none"},
		{"standardize", Spec{{Kind: Standardize}}, "standardize"},
		{" minmax ", Spec{{Kind: MinMax}}, "minmax"},
		{"pca", Spec{{Kind: PCA, Variance: 0.95}}, "pca:0.95"},
		{"pca:0.9", Spec{{Kind: PCA, Variance: 0.9}}, "pca:0.9"},
		{"pca:1", Spec{{Kind: PCA, Variance: 1}}, "pca:1"},
		{"standardize+pca:0.95", Spec{{Kind: Standardize}, {Kind: PCA, Variance: 0.95}}, "standardize+pca:0.95"},
		{"minmax + standardize", Spec{{Kind: MinMax}, {Kind: Standardize}}, "minmax+standardize"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := Parse(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.String() != c.name {
				t.Errorf("String() = %q, want %q", got.String(), c.name)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{"standardise", `unknown step "standardise"`},
		{"standardise", `Did you mean "standardize"?`},
		{"pca:0", "above 0 and at most 1"},
		{"pca:1.5", "above 0 and at most 1"},
		{"pca:x", "above 0 and at most 1"},
		{"pca:NaN", "above 0 and at most 1"},
		{"minmax:2", "takes no argument"},
		{"none+pca", "none cannot be combined"},
		{"standardize++pca", "empty step"},
		{"+", "empty step"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			_, err := Parse(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "none", "standardize+pca:0.95", "minmax", "pca:1e-3", "pca:", "+", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := Parse(s)
		if err != nil {
			return
		}
		// A name that parses has a canonical form that parses back alike.
		again, err := Parse(spec.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", spec.String(), s, err)
		}
		if !cmp.Equal(spec, again, cmpopts.EquateEmpty()) {
			t.Errorf("%q parses to %v, its canonical form %q to %v", s, spec, spec.String(), again)
		}
	})
}

func fitApply(t *testing.T, name string, train []float64, rows, cols int, test []float64) (*Transform, []float64, []float64) {
	t.Helper()
	spec, err := Parse(name)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := Fit(spec, train, rows, cols)
	if err != nil {
		t.Fatal(err)
	}
	return tr, tr.Apply(train, rows), tr.Apply(test, len(test)/cols)
}

var approx = cmpopts.EquateApprox(0, 1e-9)

// Three training rows; the second feature is constant. The test row is
// transformed with the training rows' statistics.
func TestScalers(t *testing.T) {
	train := []float64{1, 10, 3, 10, 5, 10}
	test := []float64{7, 12}
	sd := math.Sqrt(8.0 / 3) // population deviation of 1, 3, 5
	cases := []struct {
		name            string
		wantTrain, want []float64
	}{
		{"standardize", []float64{-2 / sd, 0, 0, 0, 2 / sd, 0}, []float64{4 / sd, 2}},
		{"minmax", []float64{0, 0, 0.5, 0, 1, 0}, []float64{1.5, 2}},
		{"none", train, test},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, gotTrain, got := fitApply(t, c.name, train, 3, 2, test)
			if tr.In() != 2 || tr.Out() != 2 {
				t.Errorf("In %d Out %d, want 2 and 2", tr.In(), tr.Out())
			}
			if diff := cmp.Diff(c.wantTrain, gotTrain, approx); diff != "" {
				t.Errorf("train (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(c.want, got, approx); diff != "" {
				t.Errorf("test (-want +got):\n%s", diff)
			}
		})
	}
	// The input is left alone.
	if diff := cmp.Diff([]float64{1, 10, 3, 10, 5, 10}, train); diff != "" {
		t.Errorf("Fit or Apply changed their input:\n%s", diff)
	}
}

// Points a_i·u + b_i·v on the orthonormal axes u = (1,2)/√5 and
// v = (-2,1)/√5, with a and b centred and orthogonal: the principal axes are
// u and v, the variances Σa² = 10 and Σb² = 0.025, the explained ratios
// 10/10.025 and 0.025/10.025, and the projections a and b (up to sign).
func TestPCA(t *testing.T) {
	a := []float64{-2, -1, 0, 1, 2}
	b := []float64{0.05, -0.1, 0, 0.1, -0.05}
	s5 := math.Sqrt(5)
	var x []float64
	for i := range a {
		x = append(x, (a[i]-2*b[i])/s5+3, (2*a[i]+b[i])/s5-1)
	}
	first := 10 / 10.025
	t.Run("one component", func(t *testing.T) {
		// 0.9975 > 0.95: one component is enough.
		tr, got, test := fitApply(t, "pca:0.95", x, 5, 2, []float64{3 + 1/s5, -1 + 2/s5})
		if tr.Out() != 1 {
			t.Fatalf("%d components, want 1", tr.Out())
		}
		// The axis's larger loading, 2/√5, is positive: projections are +a.
		if diff := cmp.Diff(a, got, approx); diff != "" {
			t.Errorf("projections (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]float64{1}, test, approx); diff != "" {
			t.Errorf("test projection (-want +got):\n%s", diff)
		}
		if r := tr.steps[0].(*pca).ratio; math.Abs(r[0]-first) > 1e-12 {
			t.Errorf("explained ratio %g, want %g", r[0], first)
		}
	})
	t.Run("everything", func(t *testing.T) {
		// Rounding may keep the ratios' sum just under 1: pca:1 keeps all.
		tr, _, _ := fitApply(t, "pca:1", x, 5, 2, nil)
		if tr.Out() != 2 {
			t.Errorf("%d components, want 2", tr.Out())
		}
	})
	t.Run("two components", func(t *testing.T) {
		tr, got, _ := fitApply(t, "pca:0.999", x, 5, 2, nil)
		if tr.Out() != 2 {
			t.Fatalf("%d components, want 2", tr.Out())
		}
		// v's larger loading is -2/√5: the axis is flipped, giving -b.
		var want []float64
		for i := range a {
			want = append(want, a[i], -b[i])
		}
		if diff := cmp.Diff(want, got, approx); diff != "" {
			t.Errorf("projections (-want +got):\n%s", diff)
		}
	})
	t.Run("after standardize", func(t *testing.T) {
		// Two perfectly correlated features: one component holds it all.
		tr, got, _ := fitApply(t, "standardize+pca:0.99", []float64{1, 10, 2, 20, 3, 30}, 3, 2, nil)
		if tr.Out() != 1 {
			t.Fatalf("%d components, want 1", tr.Out())
		}
		// Standardized rows are ±√1.5·(1,1) and 0: projections ±√3.
		if diff := cmp.Diff([]float64{-math.Sqrt(3), 0, math.Sqrt(3)}, got, approx); diff != "" {
			t.Errorf("projections (-want +got):\n%s", diff)
		}
	})
	t.Run("no variance", func(t *testing.T) {
		spec, _ := Parse("pca")
		if _, err := Fit(spec, []float64{1, 1, 1, 1}, 2, 2); err == nil {
			t.Error("PCA of constant rows fitted")
		}
		if _, err := Fit(spec, []float64{1, 2}, 1, 2); err == nil {
			t.Error("PCA of one row fitted")
		}
	})
}

// dataBatch builds a dataset port batch with the dataset stage's own code.
func dataBatch(t *testing.T, mem memory.Allocator, tab *dataset.Table, parts []dataset.Part) arrow.RecordBatch {
	t.Helper()
	var out arrow.RecordBatch
	err := tab.WriteBatches(mem, parts, 0, func(b arrow.RecordBatch) error {
		b.Retain()
		out = b
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func table() *dataset.Table {
	return &dataset.Table{
		Source: "test", FeatureNames: []string{"a", "b"},
		Features:   [][]float64{{1, 3, 5, 7, 9}, {10, 10, 10, 12, 0}},
		TargetName: "y", Task: dataset.Classification, Labels: []int64{0, 1, 0, 1, 1}, Classes: 2,
	}
}

func TestReadAndPrepare(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := dataBatch(t, mem, table(), []dataset.Part{dataset.Train, dataset.Train, dataset.Train, dataset.Test, dataset.Validation})
	defer b.Release()
	r, err := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	d, err := ReadDataset("dataset", r)
	if err != nil {
		t.Fatal(err)
	}
	if d.Task != nn.Classification || d.Classes != 2 || d.Outputs() != 2 || d.Target != "y" || !cmp.Equal(d.Features, []string{"a", "b"}) {
		t.Errorf("dataset %+v", d)
	}
	if d.Train.N != 3 || d.Validation.N != 1 || d.Test.N != 1 {
		t.Errorf("splits %d/%d/%d, want 3/1/1", d.Train.N, d.Validation.N, d.Test.N)
	}
	p, err := d.Prepare(Spec{{Kind: MinMax}})
	if err != nil {
		t.Fatal(err)
	}
	want := &nn.Data{Rows: 1, Cols: 2, X: []float32{1.5, 2}, Labels: []int32{1}}
	if diff := cmp.Diff(want, p.Test); diff != "" {
		t.Errorf("test rows (-want +got):\n%s", diff)
	}
	want = &nn.Data{Rows: 1, Cols: 2, X: []float32{2, -10}, Labels: []int32{1}}
	if diff := cmp.Diff(want, p.Validation); diff != "" {
		t.Errorf("validation rows (-want +got):\n%s", diff)
	}
	if p.Train.Rows != 3 || p.Inputs != 2 {
		t.Errorf("%d training rows, %d inputs", p.Train.Rows, p.Inputs)
	}
}

func TestReadDatasetErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	good := dataBatch(t, mem, table(), make([]dataset.Part, 5))
	defer good.Release()

	withMeta := func(keys, vals []string) *arrow.Schema {
		md := arrow.NewMetadata(keys, vals)
		return arrow.NewSchema(good.Schema().Fields(), &md)
	}
	replace := func(col int, arr arrow.Array, schema *arrow.Schema) arrow.RecordBatch {
		cols := append([]arrow.Array(nil), good.Columns()...)
		if arr != nil {
			cols[col] = arr
			fields := append([]arrow.Field(nil), schema.Fields()...)
			fields[col].Type = arr.DataType()
			md := schema.Metadata()
			schema = arrow.NewSchema(fields, &md)
		}
		return array.NewRecordBatch(schema, cols, good.NumRows())
	}
	f64 := func(vs ...float64) arrow.Array {
		bld := array.NewFloat64Builder(mem)
		defer bld.Release()
		bld.AppendValues(vs, nil)
		return bld.NewArray()
	}
	str := func(vs ...string) arrow.Array {
		bld := array.NewStringBuilder(mem)
		defer bld.Release()
		bld.AppendValues(vs, nil)
		return bld.NewArray()
	}
	i64 := func(vs ...int64) arrow.Array {
		bld := array.NewInt64Builder(mem)
		defer bld.Release()
		bld.AppendValues(vs, nil)
		return bld.NewArray()
	}
	cases := []struct {
		name   string
		batch  func() arrow.RecordBatch
		row    int64
		column string
		msg    string
	}{
		{"no task", func() arrow.RecordBatch {
			return replace(0, nil, withMeta([]string{MetaTarget}, []string{"y"}))
		}, -1, "", "sweetspot.task"},
		{"unknown target", func() arrow.RecordBatch {
			return replace(0, nil, withMeta([]string{MetaTask, MetaTarget, MetaClasses}, []string{"classification", "z", "2"}))
		}, -1, "z", "names no column"},
		{"NaN feature", func() arrow.RecordBatch {
			a := f64(1, 2, math.NaN(), 4, 5)
			defer a.Release()
			return replace(1, a, good.Schema())
		}, 2, "b", "not a finite number"},
		{"string feature", func() arrow.RecordBatch {
			a := str("1", "2", "3", "4", "5")
			defer a.Release()
			return replace(0, a, good.Schema())
		}, -1, "a", "want float64"},
		{"bad split", func() arrow.RecordBatch {
			a := str("train", "train", "tset", "train", "train")
			defer a.Release()
			return replace(3, a, good.Schema())
		}, 2, "split", `"tset"`},
		{"label out of range", func() arrow.RecordBatch {
			a := i64(0, 1, 0, 2, 1)
			defer a.Release()
			return replace(2, a, good.Schema())
		}, 3, "y", "outside 0..1"},
		{"no training rows", func() arrow.RecordBatch {
			a := str("test", "test", "test", "test", "validation")
			defer a.Release()
			return replace(3, a, good.Schema())
		}, -1, "split", "no training rows"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.batch()
			defer b.Release()
			r, err := array.NewRecordReader(b.Schema(), []arrow.RecordBatch{b})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Release()
			_, err = ReadDataset("dataset", r)
			var ie *sdk.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v (%T), want an *sdk.InputError", err, err)
			}
			if ie.Port != "dataset" || ie.Row != c.row || ie.Column != c.column || !strings.Contains(ie.Error(), c.msg) {
				t.Errorf("got port %q row %d column %q: %v; want row %d column %q mentioning %q", ie.Port, ie.Row, ie.Column, ie, c.row, c.column, c.msg)
			}
		})
	}
}
