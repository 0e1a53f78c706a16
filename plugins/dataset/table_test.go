package dataset

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
)

func TestWriteBatches(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	tab := &Table{
		Source:       "test",
		FeatureNames: []string{"a", "b"},
		Features:     [][]float64{{1, 2, 3, 4, 5}, {10, 20, 30, 40, 50}},
		TargetName:   "species",
		Task:         Classification,
		Labels:       []int64{0, 1, 2, 0, 1},
		Classes:      3,
		ClassNames:   []string{"setosa", "versicolor", "virginica"},
	}
	parts := []Part{Train, Test, Validation, Train, Train}
	var batches []arrow.RecordBatch
	err := tab.WriteBatches(mem, parts, 2, func(b arrow.RecordBatch) error {
		b.Retain()
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	var rows []int64
	var a, split []any
	var labels []int64
	for _, b := range batches {
		rows = append(rows, b.NumRows())
		for i := range int(b.NumRows()) {
			a = append(a, b.Column(0).(*array.Float64).Value(i))
			labels = append(labels, b.Column(2).(*array.Int64).Value(i))
			split = append(split, b.Column(3).(*array.String).Value(i))
		}
	}
	if diff := cmp.Diff([]int64{2, 2, 1}, rows); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{1.0, 2.0, 3.0, 4.0, 5.0}, a); diff != "" {
		t.Errorf("column a (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(tab.Labels, labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{"train", "test", "validation", "train", "train"}, split); diff != "" {
		t.Errorf("split (-want +got):\n%s", diff)
	}

	s := batches[0].Schema()
	var names, types []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
		types = append(types, f.Type.String())
	}
	if diff := cmp.Diff([]string{"a", "b", "species", "split"}, names); diff != "" {
		t.Errorf("column names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"float64", "float64", "int64", "utf8"}, types); diff != "" {
		t.Errorf("column types (-want +got):\n%s", diff)
	}
	md := map[string]string{}
	for i, k := range s.Metadata().Keys() {
		md[k] = s.Metadata().Values()[i]
	}
	wantMD := map[string]string{
		MetaTarget: "species", MetaTask: "classification", MetaClasses: "3", MetaSource: "test",
		MetaClassNames: `["setosa","versicolor","virginica"]`,
	}
	if diff := cmp.Diff(wantMD, md); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

func TestWriteBatchesRegressionSchema(t *testing.T) {
	tab := &Table{FeatureNames: []string{"x0"}, Features: [][]float64{{1}}, TargetName: "target", Task: Regression, Values: []float64{2.5}}
	s := tab.Schema()
	if got := s.Field(1).Type; !arrow.TypeEqual(got, arrow.PrimitiveTypes.Float64) {
		t.Errorf("regression target type %s, want float64", got)
	}
	if v, _ := s.Metadata().GetValue(MetaClasses); v != "0" {
		t.Errorf("%s = %q for regression, want \"0\"", MetaClasses, v)
	}
	if s.Metadata().FindKey(MetaClassNames) >= 0 {
		t.Errorf("regression schema has %s", MetaClassNames)
	}
}
