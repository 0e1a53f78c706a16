package dataset

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

const sklearnDir = "../../testdata/datasets/sklearn"
const badDir = "../../testdata/datasets/bad"

func ptr[T any](v T) *T { return &v }

func classCounts(t *Table) []int {
	counts := make([]int, t.Classes)
	for _, l := range t.Labels {
		counts[l]++
	}
	return counts
}

func TestLoadSklearn(t *testing.T) {
	cases := []struct {
		name       string
		path       string
		opts       LoadOptions
		rows       int
		features   int
		task       Task
		classes    int
		counts     []int
		classNames []string
	}{
		{name: "iris", path: "iris.csv", rows: 150, features: 4, task: Classification, classes: 3,
			counts: []int{50, 50, 50}, classNames: []string{"setosa", "versicolor", "virginica"}},
		{name: "wine", path: "wine_data.csv", rows: 178, features: 13, task: Classification, classes: 3,
			counts: []int{59, 71, 48}, classNames: []string{"class_0", "class_1", "class_2"}},
		{name: "breast cancer", path: "breast_cancer.csv", rows: 569, features: 30, task: Classification, classes: 2,
			counts: []int{212, 357}, classNames: []string{"malignant", "benign"}},
		{name: "digits", path: "digits.csv.gz", rows: 1797, features: 64, task: Classification, classes: 10,
			counts: []int{178, 182, 177, 183, 181, 182, 181, 179, 174, 180}},
		{name: "diabetes", path: "diabetes_data_raw.csv.gz", opts: LoadOptions{TargetPath: filepath.Join(sklearnDir, "diabetes_target.csv.gz")},
			rows: 442, features: 10, task: Regression},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := LoadFile(filepath.Join(sklearnDir, c.path), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tab.Rows() != c.rows || len(tab.FeatureNames) != c.features || len(tab.Features) != c.features {
				t.Errorf("got %d rows x %d features, want %d x %d", tab.Rows(), len(tab.FeatureNames), c.rows, c.features)
			}
			for j, col := range tab.Features {
				if len(col) != c.rows {
					t.Fatalf("feature %d has %d values, want %d", j, len(col), c.rows)
				}
			}
			if tab.Task != c.task || tab.Classes != c.classes {
				t.Errorf("task %s with %d classes, want %s with %d", tab.Task, tab.Classes, c.task, c.classes)
			}
			if c.task == Classification {
				if diff := cmp.Diff(c.counts, classCounts(tab)); diff != "" {
					t.Errorf("class counts (-want +got):\n%s", diff)
				}
			}
			if diff := cmp.Diff(c.classNames, tab.ClassNames); diff != "" {
				t.Errorf("class names (-want +got):\n%s", diff)
			}
		})
	}
}

// The first row of iris and the diabetes target prove values land in the
// right columns, not just in the right number of them.
func TestLoadValues(t *testing.T) {
	iris, err := LoadFile(filepath.Join(sklearnDir, "iris.csv"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var row0 []float64
	for _, col := range iris.Features {
		row0 = append(row0, col[0])
	}
	if diff := cmp.Diff([]float64{5.1, 3.5, 1.4, 0.2}, row0); diff != "" {
		t.Errorf("iris row 0 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"x0", "x1", "x2", "x3"}, iris.FeatureNames); diff != "" {
		t.Errorf("iris feature names (-want +got):\n%s", diff)
	}
	if iris.TargetName != "target" || iris.Labels[149] != 2 {
		t.Errorf("iris target %q, last label %d; want \"target\", 2", iris.TargetName, iris.Labels[149])
	}

	diab, err := LoadFile(filepath.Join(sklearnDir, "diabetes_data_raw.csv.gz"), LoadOptions{TargetPath: filepath.Join(sklearnDir, "diabetes_target.csv.gz")})
	if err != nil {
		t.Fatal(err)
	}
	if diab.Values[0] != 151 || diab.Values[441] != 57 {
		t.Errorf("diabetes target first/last = %g/%g, want 151/57", diab.Values[0], diab.Values[441])
	}
	if diab.Features[0][0] != 59 || diab.Features[9][0] != 87 {
		t.Errorf("diabetes row 0 age/glu = %g/%g, want 59/87", diab.Features[0][0], diab.Features[9][0])
	}
}

// LightGBM's example data has its label in the FIRST column and is tab
// separated without a header. It lives outside the repository.
func TestLoadLightGBM(t *testing.T) {
	dir := "../../../shared/datasets/lightgbm"
	if _, err := os.Stat(dir); err != nil {
		testenv.Missing(t, "the LightGBM example data is not at %s (the shared datasets sit beside the checkout on developer machines and in CI): %v", dir, err)
	}
	cases := []struct {
		path    string
		rows    int
		classes int
	}{
		{"binary_classification/binary.train", 7000, 2},
		{"multiclass_classification/multiclass.test", 500, 5},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			tab, err := LoadFile(filepath.Join(dir, c.path), LoadOptions{TargetIndex: ptr(0)})
			if err != nil {
				t.Fatal(err)
			}
			if tab.Rows() != c.rows || len(tab.FeatureNames) != 28 || tab.Classes != c.classes {
				t.Errorf("got %d rows x %d features, %d classes; want %d x 28, %d", tab.Rows(), len(tab.FeatureNames), tab.Classes, c.rows, c.classes)
			}
		})
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadHeadersAndTargets(t *testing.T) {
	named := "sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,versicolor\n6.2,3.4,virginica\n5.0,3.1,setosa\n"
	cases := []struct {
		name       string
		file       string
		content    string
		opts       LoadOptions
		features   []string
		target     string
		task       Task
		labels     []int64
		values     []float64
		classNames []string
	}{
		{name: "named header, string labels", file: "a.csv", content: named,
			features: []string{"sepal_length", "sepal_width"}, target: "species", task: Classification,
			labels: []int64{0, 1, 2, 0}, classNames: []string{"setosa", "versicolor", "virginica"}},
		{name: "target by name", file: "a.csv", content: "a,b,c\n1,3.5,7\n2,3.0,8\n3,3.4,9\n", opts: LoadOptions{Target: "b", Task: Regression},
			features: []string{"a", "c"}, target: "b", task: Regression, values: []float64{3.5, 3.0, 3.4}},
		{name: "no header, labels mapped in numeric order", file: "b.csv", content: "1,2,10\n3,4,2\n5,6,10\n7,8,2\n",
			features: []string{"x0", "x1"}, target: "target", task: Classification,
			labels: []int64{1, 0, 1, 0}, classNames: []string{"2", "10"}},
		{name: "negative target index", file: "c.tsv", content: "7\t1\t2\n9\t3\t4\n7\t5\t6\n9\t7\t8\n", opts: LoadOptions{TargetIndex: ptr(-3)},
			features: []string{"x0", "x1"}, target: "target", task: Classification,
			labels: []int64{0, 1, 0, 1}, classNames: []string{"7", "9"}},
		{name: "forced header on numeric names", file: "d.csv", content: "1,2,3\n0.5,0.25,0\n1.5,1.25,1\n", opts: LoadOptions{Header: ptr(true)},
			features: []string{"1", "2"}, target: "3", task: Classification, labels: []int64{0, 1}},
		{name: "many distinct integers are a regression target", file: "e.csv", content: "1,10\n2,20\n3,30\n4,40\n",
			features: []string{"x0"}, target: "target", task: Regression, values: []float64{10, 20, 30, 40}},
		{name: "1 and 1.0 are one class", file: "f.csv", content: "1,1\n2,1.0\n3,0\n4,0\n",
			features: []string{"x0"}, target: "target", task: Classification, labels: []int64{1, 1, 0, 0}},
		{name: "byte order mark and CRLF", file: "g.csv", content: "\ufeffa,b\r\n1,0\r\n2,1\r\n3,0\r\n4,1\r\n",
			features: []string{"a"}, target: "b", task: Classification, labels: []int64{0, 1, 0, 1}},
		{name: "whitespace format, blank lines", file: "h.txt", content: "1  2   0\n\n3 4 1\n5\t6 0\n7 8 1\n",
			features: []string{"x0", "x1"}, target: "target", task: Classification, labels: []int64{0, 1, 0, 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab, err := LoadFile(writeTemp(t, c.file, c.content), c.opts)
			if err != nil {
				t.Fatal(err)
			}
			type summary struct {
				Features   []string
				Target     string
				Task       Task
				Labels     []int64
				Values     []float64
				ClassNames []string
			}
			want := summary{c.features, c.target, c.task, c.labels, c.values, c.classNames}
			got := summary{tab.FeatureNames, tab.TargetName, tab.Task, tab.Labels, tab.Values, tab.ClassNames}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// Every broken file gives an error that names the file, the line and the
// column, so the user can go and fix it.
func TestLoadBadData(t *testing.T) {
	cases := []struct {
		file   string
		opts   LoadOptions
		line   int
		column string
		field  int
		msg    string
	}{
		{file: "ragged.csv", line: 4, column: "sepal_width", field: 2, msg: "has 1 field, want 3"},
		{file: "extra_field.csv", line: 3, field: 4, msg: "has 4 fields, want 3"},
		{file: "ragged.tsv", line: 3, column: "label", field: 3, msg: "has 2 fields, want 3"},
		{file: "non_numeric.csv", line: 3, column: "sepal_width", field: 2, msg: `"abc" is not a number`},
		{file: "non_numeric.txt", line: 3, column: "x1", field: 2, msg: `"eight" is not a number`},
		{file: "empty_cell.csv", line: 5, column: "sepal_length", field: 1, msg: "empty cell"},
		{file: "nan_cell.csv", line: 3, column: "sepal_width", field: 2, msg: "missing value"},
		{file: "inf_cell.csv", line: 3, column: "sepal_width", field: 2, msg: "not a finite number"},
		{file: "empty_target.csv", line: 3, column: "species", field: 3, msg: "empty target cell"},
		{file: "bad_quote.csv", line: 3, msg: "quote"},
		{file: "count_mismatch.csv", line: 1, msg: "announces 4 rows but the file has 2"},
		{file: "fewer_rows_than_classes.csv", msg: "2 data rows but 3 classes"},
		{file: "label_out_of_range.csv", line: 4, column: "target", field: 3, msg: `label "2" is not a class index 0..1`},
		{file: "duplicate_header.csv", line: 1, column: "x", field: 2, msg: "two columns"},
		{file: "split_column.csv", line: 1, column: "split", field: 2, msg: "reserved"},
		{file: "single_class.csv", column: "label", msg: "single class"},
		{file: "regression_string_target.csv", opts: LoadOptions{Task: Regression}, line: 3, column: "value", field: 3, msg: `"high" is not a number`},
		{file: "empty.csv", msg: "file is empty"},
		{file: "header_only.csv", msg: "no data rows"},
		{file: "not_gzip.csv.gz", msg: "not a gzip file"},
		{file: "features.txt", opts: LoadOptions{TargetPath: filepath.Join(badDir, "target_short.txt")}, msg: "has 2 data rows but"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(badDir, c.file)
			_, err := LoadFile(path, c.opts)
			var de *DataError
			if !errors.As(err, &de) {
				t.Fatalf("got error %v (%T), want a *DataError", err, err)
			}
			wantFile := path
			if c.opts.TargetPath != "" {
				wantFile = c.opts.TargetPath
			}
			type loc struct {
				File   string
				Line   int
				Column string
				Field  int
			}
			if diff := cmp.Diff(loc{wantFile, c.line, c.column, c.field}, loc{de.File, de.Line, de.Column, de.Field}); diff != "" {
				t.Errorf("location (-want +got):\n%s", diff)
			}
			msg := err.Error()
			for _, part := range []string{wantFile, c.msg} {
				if !strings.Contains(msg, part) {
					t.Errorf("error %q does not mention %q", msg, part)
				}
			}
			if c.line > 0 && !strings.Contains(msg, ":"+strconv.Itoa(c.line)+":") {
				t.Errorf("error %q does not give line %d", msg, c.line)
			}
			if c.column != "" && !strings.Contains(msg, strconv.Quote(c.column)) {
				t.Errorf("error %q does not name column %q", msg, c.column)
			}
		})
	}
}

// Problems the config must fix come back as diagnostics on the attribute.
func TestLoadTargetConfigErrors(t *testing.T) {
	named := filepath.Join(badDir, "..", "sklearn", "iris.csv")
	header := writeTemp(t, "h.csv", "sepal_length,sepal_width,species\n5.1,3.5,setosa\n4.9,3.0,virginica\n")
	cases := []struct {
		name   string
		path   string
		opts   LoadOptions
		attr   string
		detail []string
	}{
		{"unknown target, did you mean", header, LoadOptions{Target: "specis"}, "target",
			[]string{header, `no column "specis"`, `Did you mean "species"?`, `"sepal_length", "sepal_width", "species"`}},
		{"target name without header", named, LoadOptions{Target: "species"}, "target",
			[]string{named, "no header line", "target_index"}},
		{"target index out of range", header, LoadOptions{TargetIndex: ptr(3)}, "target_index",
			[]string{"0..2", "-3..-1", "found 3"}},
		{"negative target index out of range", header, LoadOptions{TargetIndex: ptr(-4)}, "target_index",
			[]string{"found -4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadFile(c.path, c.opts)
			var diags sdk.Diagnostics
			if !errors.As(err, &diags) || len(diags) != 1 {
				t.Fatalf("got %v (%T), want one sdk.Diagnostic", err, err)
			}
			if diff := cmp.Diff([]string{c.attr}, diags[0].Path); diff != "" {
				t.Errorf("path (-want +got):\n%s", diff)
			}
			for _, part := range c.detail {
				if !strings.Contains(diags[0].Detail, part) {
					t.Errorf("detail %q does not mention %q", diags[0].Detail, part)
				}
			}
		})
	}
}

// FuzzLoad feeds arbitrary text to the parser: it must return a table or an
// error, never panic, and a table it returns must be consistent.
func FuzzLoad(f *testing.F) {
	for _, p := range []string{"iris.csv", "wine_data.csv"} {
		b, err := os.ReadFile(filepath.Join(sklearnDir, p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 400)], int8(-1), "")
	}
	entries, err := os.ReadDir(badDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(badDir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, int8(0), "")
	}
	f.Add([]byte("a,b\n1,x\n2,y\n"), int8(1), "b")
	f.Fuzz(func(t *testing.T, data []byte, targetIndex int8, target string) {
		o := LoadOptions{}
		switch {
		case target != "":
			o.Target = target
		case targetIndex != 0:
			o.TargetIndex = ptr(int(targetIndex))
		}
		tab, err := Load("fuzz.csv", bytes.NewReader(data), o)
		if err != nil {
			return
		}
		checkConsistent(t, tab)
	})
}

// checkConsistent fails unless every column of tab has one value per row
// and every label is a class.
func checkConsistent(t *testing.T, tab *Table) {
	t.Helper()
	n := tab.Rows()
	if n == 0 || len(tab.Features) != len(tab.FeatureNames) {
		t.Fatalf("inconsistent table: %d rows, %d feature columns, %d names", n, len(tab.Features), len(tab.FeatureNames))
	}
	for _, col := range tab.Features {
		if len(col) != n {
			t.Fatalf("feature column of %d values for %d rows", len(col), n)
		}
	}
	for _, l := range tab.Labels {
		if l < 0 || int(l) >= tab.Classes {
			t.Fatalf("label %d outside 0..%d", l, tab.Classes-1)
		}
	}
	for _, col := range tab.Features {
		for _, v := range col {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("feature value %g", v)
			}
		}
	}
}

// A separate target file may name its column; the features file's header
// setting does not apply to it.
func TestLoadTargetFileWithHeader(t *testing.T) {
	features := writeTemp(t, "x.txt", "a b\n1 2\n3 4\n5 6\n")
	target := writeTemp(t, "y.csv", "progression\n0.5\n1.5\n2.25\n")
	tab, err := LoadFile(features, LoadOptions{TargetPath: target, Header: ptr(true), Task: Regression})
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Features []string
		Target   string
		Values   []float64
		Source   string
	}
	want := summary{[]string{"a", "b"}, "progression", []float64{0.5, 1.5, 2.25}, features + " + " + target}
	if diff := cmp.Diff(want, summary{tab.FeatureNames, tab.TargetName, tab.Values, tab.Source}); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
