package dataset

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

func TestConfigErrors(t *testing.T) {
	type diag struct{ Path, Summary string }
	cases := []struct {
		name string
		cfg  Config
		want []diag
	}{
		{"no source", Config{}, []diag{{"", "Missing data source"}}},
		{"both sources", Config{Path: "iris.csv", Generator: "blobs", BaseDir: sklearnDir}, []diag{{"generator", "Conflicting data sources"}}},
		{"unknown generator", Config{Generator: "spiral"}, []diag{{"generator", "Unknown generator"}}},
		{"missing file", Config{Path: "nope.csv", BaseDir: sklearnDir}, []diag{{"path", "Dataset file not found"}}},
		{"directory", Config{Path: ".", BaseDir: sklearnDir}, []diag{{"path", "Dataset path is a directory"}}},
		{"file-only arguments on a generator", Config{Generator: "blobs", Target: "y", Format: "csv", Header: ptr(true)},
			[]diag{{"format", "Argument only for files"}, {"header", "Argument only for files"}, {"target", "Argument only for files"}}},
		{"generator arguments on a file", Config{Path: "iris.csv", BaseDir: sklearnDir, Rows: ptr(5), Noise: ptr(0.1)},
			[]diag{{"noise", "Argument only for generators"}, {"rows", "Argument only for generators"}}},
		{"bad format and task", Config{Path: "iris.csv", BaseDir: sklearnDir, Format: "tvs", Task: "regresion"},
			[]diag{{"format", "Unknown format"}, {"task", "Unknown task"}}},
		{"target and index", Config{Path: "iris.csv", BaseDir: sklearnDir, Target: "species", TargetIndex: ptr(0)},
			[]diag{{"target_index", "Conflicting target arguments"}}},
		{"target path and target", Config{Path: "diabetes_data_raw.csv.gz", TargetPath: "diabetes_target.csv.gz", Target: "y", BaseDir: sklearnDir},
			[]diag{{"target", "Conflicting target arguments"}}},
		{"missing target path", Config{Path: "diabetes_data_raw.csv.gz", TargetPath: "missing.csv", BaseDir: sklearnDir},
			[]diag{{"target_path", "Dataset file not found"}}},
		{"fractions", Config{Generator: "blobs", TestFraction: ptr(1.0), ValidationFraction: ptr(-0.1)},
			[]diag{{"test_fraction", "Invalid test fraction"}, {"validation_fraction", "Invalid validation fraction"}}},
		{"fractions leave no training rows", Config{Generator: "blobs", TestFraction: ptr(0.5), ValidationFraction: ptr(0.5)},
			[]diag{{"validation_fraction", "No rows left for training"}}},
		{"generator ranges", Config{Generator: "blobs", Rows: ptr(0), Noise: ptr(-1.0), Features: ptr(1), Classes: ptr(1)},
			[]diag{{"rows", "Invalid row count"}, {"noise", "Invalid noise"}, {"features", "Invalid feature count"}, {"classes", "Invalid class count"}}},
		{"2-D generators", Config{Generator: "spirals", Features: ptr(3)}, []diag{{"features", "Invalid feature count"}}},
		{"checkerboard classes", Config{Generator: "checkerboard", Classes: ptr(8)}, []diag{{"classes", "Invalid class count"}}},
		{"classes on regression", Config{Generator: "regression", Classes: ptr(3)}, []diag{{"classes", "Argument only for classification"}}},
		{"fewer rows than classes", Config{Generator: "blobs", Rows: ptr(4), Classes: ptr(5)}, []diag{{"rows", "Fewer rows than classes"}}},
		{"fewer rows than default classes", Config{Generator: "blobs", Rows: ptr(2)}, []diag{{"rows", "Fewer rows than classes"}}},
		{"unknown format, did you mean", Config{Path: "iris.csv", BaseDir: sklearnDir, Format: "parquett"}, []diag{{"format", "Unknown format"}}},
		{"header on parquet", Config{Path: "iris.parquet", BaseDir: arrowDir, Header: ptr(true)}, []diag{{"header", "Argument only for text files"}}},
		{"header on forced arrow", Config{Path: "iris.csv", BaseDir: sklearnDir, Format: "arrow", Header: ptr(false)}, []diag{{"header", "Argument only for text files"}}},
		{"scale_pixels on csv", Config{Path: "iris.parquet", BaseDir: arrowDir, ScalePixels: ptr(false)}, []diag{{"scale_pixels", "Argument only for IDX files"}}},
		{"idx without labels", Config{Path: "iris.csv", BaseDir: sklearnDir, Format: "idx", Target: "y"},
			[]diag{{"target", "Argument not for IDX files"}, {"path", "IDX labels file needed"}}},
		{"max_rows and sample", Config{Path: "iris.csv", BaseDir: sklearnDir, MaxRows: ptr(0), Sample: "randm"},
			[]diag{{"max_rows", "Invalid max_rows"}, {"sample", "Unknown sample"}}},
		{"sample without max_rows", Config{Path: "iris.csv", BaseDir: sklearnDir, Sample: "random"}, []diag{{"sample", "Sample without max_rows"}}},
		{"max_rows on a generator", Config{Generator: "blobs", MaxRows: ptr(5), Sample: "first", ScalePixels: ptr(true)},
			[]diag{{"max_rows", "Argument only for files"}, {"sample", "Argument only for files"}, {"scale_pixels", "Argument only for files"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := New(c.cfg)
			if err == nil {
				t.Fatalf("New succeeded with %T, want diagnostics", st)
			}
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("error %v is %T, want sdk.Diagnostics", err, err)
			}
			var got []diag
			for _, d := range ds {
				if d.Severity != sdk.SeverityError || d.Detail == "" {
					t.Errorf("diagnostic %+v: want an error with a detail", d)
				}
				got = append(got, diag{strings.Join(d.Path, "."), d.Summary})
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

func runStage(t *testing.T, cfg Config) (arrow.RecordBatch, []arrow.RecordBatch) {
	t.Helper()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out, err := stagetest.Run(t, context.Background(), Info(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	batches := out.Batches(Port)
	return stagetest.Concat(t, batches), batches
}

func splitCounts(rec arrow.RecordBatch) map[string]int {
	idx := rec.Schema().FieldIndices(SplitColumn)[0]
	col := rec.Column(idx).(*array.String)
	counts := map[string]int{}
	for i := range col.Len() {
		counts[col.Value(i)]++
	}
	return counts
}

func TestRunFile(t *testing.T) {
	abs, err := filepath.Abs(sklearnDir)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := runStage(t, Config{Path: "iris.csv", BaseDir: abs, ValidationFraction: ptr(0.1), Seed: ptr(int64(3))})
	if rec.NumRows() != 150 || rec.NumCols() != 6 {
		t.Fatalf("got %d rows x %d columns, want 150 x 6", rec.NumRows(), rec.NumCols())
	}
	if diff := cmp.Diff(map[string]int{"train": 105, "validation": 15, "test": 30}, splitCounts(rec)); diff != "" {
		t.Errorf("split counts (-want +got):\n%s", diff)
	}
	md := rec.Schema().Metadata()
	for k, want := range map[string]string{
		MetaTarget: "target", MetaTask: "classification", MetaClasses: "3",
		MetaClassNames: `["setosa","versicolor","virginica"]`, MetaSource: filepath.Join(abs, "iris.csv"),
	} {
		if got, _ := md.GetValue(k); got != want {
			t.Errorf("metadata %s = %q, want %q", k, got, want)
		}
	}
	// Per class: 35 train, 5 validation, 10 test.
	labels := rec.Column(4).(*array.Int64)
	split := rec.Column(5).(*array.String)
	perClass := map[int64]map[string]int{}
	for i := range labels.Len() {
		if perClass[labels.Value(i)] == nil {
			perClass[labels.Value(i)] = map[string]int{}
		}
		perClass[labels.Value(i)][split.Value(i)]++
	}
	for c, counts := range perClass {
		if diff := cmp.Diff(map[string]int{"train": 35, "validation": 5, "test": 10}, counts); diff != "" {
			t.Errorf("class %d split (-want +got):\n%s", c, diff)
		}
	}
}

func TestRunGeneratorBatches(t *testing.T) {
	rec, batches := runStage(t, Config{Generator: "regression", Rows: ptr(100_000), Features: ptr(2)})
	var sizes []int64
	for _, b := range batches {
		sizes = append(sizes, b.NumRows())
	}
	if diff := cmp.Diff([]int64{MaxBatchRows, 100_000 - MaxBatchRows}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
	if got, _ := rec.Schema().Metadata().GetValue(MetaTask); got != "regression" {
		t.Errorf("task %q, want regression", got)
	}
	if diff := cmp.Diff(map[string]int{"train": 80_000, "test": 20_000}, splitCounts(rec)); diff != "" {
		t.Errorf("split counts (-want +got):\n%s", diff)
	}
}

// The same config gives the same rows and split; the seed changes both.
func TestRunDeterministic(t *testing.T) {
	a, _ := runStage(t, Config{Generator: "spirals", Rows: ptr(200), Seed: ptr(int64(5))})
	b, _ := runStage(t, Config{Generator: "spirals", Rows: ptr(200), Seed: ptr(int64(5))})
	c, _ := runStage(t, Config{Generator: "spirals", Rows: ptr(200), Seed: ptr(int64(6))})
	if !array.RecordEqual(a, b) {
		t.Error("same config, different output")
	}
	if array.RecordEqual(a, c) {
		t.Error("seeds 5 and 6 gave the same output")
	}
}

func TestRunBadFileNamesLine(t *testing.T) {
	st, err := New(Config{Path: filepath.Join(badDir, "non_numeric.csv")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stagetest.Run(t, context.Background(), Info(), st, nil)
	var de *DataError
	if !errors.As(err, &de) || de.Line != 3 || de.Column != "sepal_width" {
		t.Fatalf("got %v, want a DataError at line 3, column sepal_width", err)
	}
}

func TestRunCanceled(t *testing.T) {
	st, err := New(Config{Generator: "blobs"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out, err := stagetest.Run(t, ctx, Info(), st, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if n := len(out.Batches(Port)); n != 0 {
		t.Errorf("%d batches written after cancel", n)
	}
}

func TestConfigHints(t *testing.T) {
	_, err := New(Config{Path: "iris.csv", BaseDir: sklearnDir, Format: "parquett", Sample: "randm", MaxRows: ptr(3)})
	var ds sdk.Diagnostics
	if !errors.As(err, &ds) || len(ds) != 2 {
		t.Fatalf("got %v, want two diagnostics", err)
	}
	for i, want := range []string{`Did you mean "parquet"?`, `Did you mean "random"?`} {
		if !strings.Contains(ds[i].Detail, want) {
			t.Errorf("detail %q does not say %q", ds[i].Detail, want)
		}
	}
}

func metadata(rec arrow.RecordBatch) map[string]string {
	md := map[string]string{}
	for i, k := range rec.Schema().Metadata().Keys() {
		md[k] = rec.Schema().Metadata().Values()[i]
	}
	return md
}

func TestRunParquet(t *testing.T) {
	abs, err := filepath.Abs(arrowDir)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := runStage(t, Config{Path: "iris.parquet", BaseDir: abs, MaxRows: ptr(90), Sample: "random", Seed: ptr(int64(4))})
	if rec.NumRows() != 90 || rec.NumCols() != 6 {
		t.Fatalf("got %d rows x %d columns, want 90 x 6", rec.NumRows(), rec.NumCols())
	}
	want := map[string]string{
		MetaTarget: "target", MetaTask: "classification", MetaClasses: "3", MetaFormat: "parquet",
		MetaClassNames: `["setosa","versicolor","virginica"]`, MetaSource: filepath.Join(abs, "iris.parquet"),
		MetaSample: "random 90 of 150 rows, seed 4",
	}
	if diff := cmp.Diff(want, metadata(rec)); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

func TestRunIDX(t *testing.T) {
	dir := t.TempDir()
	writeTinyMNIST(t, dir, 50, true)
	rec, _ := runStage(t, Config{Path: "train-images-idx3-ubyte.gz", TargetPath: "train-labels-idx1-ubyte.gz", BaseDir: dir, MaxRows: ptr(40)})
	if rec.NumRows() != 40 || rec.NumCols() != tinyH*tinyW+2 {
		t.Fatalf("got %d rows x %d columns, want 40 x %d", rec.NumRows(), rec.NumCols(), tinyH*tinyW+2)
	}
	want := map[string]string{
		MetaTarget: "label", MetaTask: "classification", MetaClasses: "4", MetaFormat: "idx",
		MetaSource: filepath.Join(dir, "train-images-idx3-ubyte.gz") + " + " + filepath.Join(dir, "train-labels-idx1-ubyte.gz"),
		MetaSample: "first 40 rows",
	}
	if diff := cmp.Diff(want, metadata(rec)); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"train": 32, "test": 8}, splitCounts(rec)); diff != "" {
		t.Errorf("split counts (-want +got):\n%s", diff)
	}
	if got := rec.Column(1).(*array.Float64).Value(1); got != float64(tinyPixel(1, 1))/255 {
		t.Errorf("row 1 pixel_1 = %g, want %g", got, float64(tinyPixel(1, 1))/255)
	}
}
