package dataset

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/float16"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

var update = flag.Bool("update", false, "rewrite the committed Parquet and Arrow fixtures in testdata/datasets/arrow from iris.csv")

const arrowDir = "../../testdata/datasets/arrow"

// col is one column of a test file.
type col struct {
	name string
	arr  arrow.Array
}

func newBatch(t testing.TB, cols ...col) arrow.RecordBatch {
	t.Helper()
	fields := make([]arrow.Field, len(cols))
	arrs := make([]arrow.Array, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.arr.DataType(), Nullable: true}
		arrs[i] = c.arr
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), arrs, -1)
	for _, a := range arrs {
		a.Release()
	}
	return rec
}

func float64s(vals []float64, nulls ...int) arrow.Array {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	valid := validity(len(vals), nulls)
	b.AppendValues(vals, valid)
	return b.NewArray()
}

func strs(vals []string, nulls ...int) arrow.Array {
	b := array.NewStringBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.AppendValues(vals, validity(len(vals), nulls))
	return b.NewArray()
}

func validity(n int, nulls []int) []bool {
	if len(nulls) == 0 {
		return nil
	}
	v := make([]bool, n)
	for i := range v {
		v[i] = true
	}
	for _, i := range nulls {
		v[i] = false
	}
	return v
}

// fileKind is one way of writing a batch to disk.
type fileKind struct {
	name  string // also the extension
	write func(t testing.TB, w io.Writer, rec arrow.RecordBatch)
}

// Several row groups and batches, so that readers cross their boundaries.
const testChunkRows = 32

var fileKinds = []fileKind{
	{"parquet", writeParquet},
	{"arrow", writeArrowFile},
	{"arrows", writeArrowStream},
}

func writeParquet(t testing.TB, w io.Writer, rec arrow.RecordBatch) {
	t.Helper()
	// The stored schema brings dictionary columns back as dictionaries.
	fw, err := pqarrow.NewFileWriter(rec.Schema(), w,
		parquet.NewWriterProperties(parquet.WithMaxRowGroupLength(testChunkRows), parquet.WithCreatedBy("sweetspot dataset tests")),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeChunks(t testing.TB, rec arrow.RecordBatch, write func(arrow.RecordBatch) error) {
	t.Helper()
	for lo := int64(0); lo < rec.NumRows(); lo += testChunkRows {
		s := rec.NewSlice(lo, min(lo+testChunkRows, rec.NumRows()))
		err := write(s)
		s.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeArrowFile(t testing.TB, w io.Writer, rec arrow.RecordBatch) {
	t.Helper()
	fw, err := ipc.NewFileWriter(w, ipc.WithSchema(rec.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	writeChunks(t, rec, fw.Write)
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeArrowStream(t testing.TB, w io.Writer, rec arrow.RecordBatch) {
	t.Helper()
	sw := ipc.NewWriter(w, ipc.WithSchema(rec.Schema()))
	writeChunks(t, rec, sw.Write)
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
}

func writeKind(t testing.TB, path string, k fileKind, rec arrow.RecordBatch) {
	t.Helper()
	var buf bytes.Buffer
	k.write(t, &buf, rec)
	data := buf.Bytes()
	if strings.HasSuffix(path, ".gz") {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		data = z.Bytes()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadIris(t testing.TB) *Table {
	t.Helper()
	tab, err := LoadFile(filepath.Join(sklearnDir, "iris.csv"), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// irisBatch holds iris as read from CSV, its target encoded as kind says.
func irisBatch(t testing.TB, iris *Table, target string) arrow.RecordBatch {
	t.Helper()
	mem := memory.DefaultAllocator
	var cols []col
	for j, name := range iris.FeatureNames {
		cols = append(cols, col{name, float64s(iris.Features[j])})
	}
	n := len(iris.Labels)
	var tgt arrow.Array
	switch target {
	case "string":
		names := make([]string, n)
		for i, l := range iris.Labels {
			names[i] = iris.ClassNames[l]
		}
		tgt = strs(names)
	case "dictionary":
		b := array.NewDictionaryBuilder(mem, &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}).(*array.BinaryDictionaryBuilder)
		// Classes first seen in reverse order: the dictionary's order must
		// not decide the class indices.
		for i := n - 1; i >= 0; i-- {
			if err := b.AppendString(iris.ClassNames[iris.Labels[i]]); err != nil {
				t.Fatal(err)
			}
		}
		rev := b.NewArray()
		b.Release()
		idx := make([]int, n)
		for i := range idx {
			idx[i] = n - 1 - i
		}
		tgt = takeDict(t, rev.(*array.Dictionary), idx)
		rev.Release()
	case "int32":
		b := array.NewInt32Builder(mem)
		for _, l := range iris.Labels {
			b.Append(int32(l))
		}
		tgt = b.NewArray()
		b.Release()
	case "float64":
		v := make([]float64, n)
		for i, l := range iris.Labels {
			v[i] = float64(l)
		}
		tgt = float64s(v)
	default:
		t.Fatalf("unknown target kind %q", target)
	}
	cols = append(cols, col{iris.TargetName, tgt})
	return newBatch(t, cols...)
}

// takeDict reorders a dictionary array's indices, keeping its dictionary.
func takeDict(t testing.TB, d *array.Dictionary, idx []int) arrow.Array {
	t.Helper()
	b := array.NewInt8Builder(memory.DefaultAllocator)
	defer b.Release()
	for _, i := range idx {
		b.Append(int8(d.GetValueIndex(i)))
	}
	indices := b.NewArray()
	defer indices.Release()
	return array.NewDictionaryArray(d.DataType(), indices, d.Dictionary())
}

// sameData compares what a model sees: features, labels, classes.
func sameData(t *testing.T, want, got *Table, withNames bool) {
	t.Helper()
	type data struct {
		FeatureNames []string
		Features     [][]float64
		TargetName   string
		Task         Task
		Labels       []int64
		Classes      int
		ClassNames   []string
	}
	w := data{want.FeatureNames, want.Features, want.TargetName, want.Task, want.Labels, want.Classes, want.ClassNames}
	g := data{got.FeatureNames, got.Features, got.TargetName, got.Task, got.Labels, got.Classes, got.ClassNames}
	if !withNames {
		w.ClassNames, g.ClassNames = nil, nil
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("(-csv +got):\n%s", diff)
	}
}

// Every format loads iris with the very values and labels the CSV gives,
// whatever type the target column has.
func TestLoadColumnarIris(t *testing.T) {
	iris := loadIris(t)
	dir := t.TempDir()
	for _, target := range []string{"string", "dictionary", "int32", "float64"} {
		rec := irisBatch(t, iris, target)
		for _, k := range append(fileKinds, fileKind{"arrows.gz", writeArrowStream}) {
			t.Run(target+"/"+k.name, func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				path := filepath.Join(dir, target+"."+k.name)
				writeKind(t, path, k, rec)
				got, err := LoadFile(path, LoadOptions{Allocator: mem})
				if err != nil {
					t.Fatal(err)
				}
				// Numeric labels 0..2 name no class; strings do.
				named := target == "string" || target == "dictionary"
				sameData(t, iris, got, named)
				if got.Format != FormatArrow && got.Format != FormatParquet || got.Source != path || got.Sample != "" {
					t.Errorf("format %q, source %q, sample %q", got.Format, got.Source, got.Sample)
				}
			})
		}
		rec.Release()
	}
}

// The committed fixtures are iris.csv converted; -update rewrites them.
func TestColumnarFixtures(t *testing.T) {
	iris := loadIris(t)
	if *update {
		if err := os.MkdirAll(arrowDir, 0o755); err != nil {
			t.Fatal(err)
		}
		rec := irisBatch(t, iris, "string")
		for _, k := range fileKinds {
			writeKind(t, filepath.Join(arrowDir, "iris."+k.name), k, rec)
		}
		rec.Release()
	}
	for _, k := range fileKinds {
		t.Run(k.name, func(t *testing.T) {
			path := filepath.Join(arrowDir, "iris."+k.name)
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatalf("%v (run go test ./plugins/dataset -run TestColumnarFixtures -update)", err)
			}
			if fi.Size() > 100<<10 {
				t.Errorf("%s is %d bytes; fixtures stay under 100 KB", path, fi.Size())
			}
			got, err := LoadFile(path, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameData(t, iris, got, true)
		})
	}
}

// Formats are found from the name, else the first bytes; format overrides
// the name.
func TestDetectFormat(t *testing.T) {
	iris := loadIris(t)
	rec := irisBatch(t, iris, "int32")
	defer rec.Release()
	dir := t.TempDir()
	cases := []struct {
		file   string
		kind   fileKind
		format Format
	}{
		{"a.parquet", fileKinds[0], ""},
		{"no_extension", fileKinds[0], ""},
		{"parquet.csv", fileKinds[0], FormatParquet},
		{"a.feather", fileKinds[1], ""},
		{"a.ipc", fileKinds[1], ""},
		{"file_named_as_stream.arrows", fileKinds[1], ""},
		{"stream.data", fileKinds[2], ""},
		{"stream_compressed_without_gz_name", fileKinds[2], ""},
		{"stream.txt", fileKinds[2], FormatArrow},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			writeKind(t, path, c.kind, rec)
			if strings.Contains(c.file, "compressed") {
				b, _ := os.ReadFile(path)
				var z bytes.Buffer
				zw := gzip.NewWriter(&z)
				zw.Write(b)
				zw.Close()
				os.WriteFile(path, z.Bytes(), 0o644)
			}
			got, err := LoadFile(path, LoadOptions{Format: c.format})
			if err != nil {
				t.Fatal(err)
			}
			sameData(t, iris, got, false)
		})
	}
}

func TestLoadColumnarTypes(t *testing.T) {
	mem := memory.DefaultAllocator
	i8 := array.NewInt8Builder(mem)
	i8.AppendValues([]int8{-1, 2, 3, 4}, nil)
	u64 := array.NewUint64Builder(mem)
	u64.AppendValues([]uint64{1, 1 << 40, 3, 4}, nil)
	f32 := array.NewFloat32Builder(mem)
	f32.AppendValues([]float32{0.5, 1.25, -2, 8}, nil)
	f16 := array.NewFloat16Builder(mem)
	f16.AppendValues([]float16.Num{float16.New(0.5), float16.New(-1), float16.New(2), float16.New(3)}, nil)
	bl := array.NewBooleanBuilder(mem)
	bl.AppendValues([]bool{true, false, true, false}, nil)
	y := array.NewInt64Builder(mem)
	y.AppendValues([]int64{7, 9, 7, 9}, nil)
	rec := newBatch(t, col{"i8", i8.NewArray()}, col{"u64", u64.NewArray()}, col{"f32", f32.NewArray()},
		col{"f16", f16.NewArray()}, col{"flag", bl.NewArray()}, col{"y", y.NewArray()})
	defer rec.Release()
	for _, b := range []array.Builder{i8, u64, f32, f16, bl, y} {
		b.Release()
	}
	want := [][]float64{{-1, 2, 3, 4}, {1, 1 << 40, 3, 4}, {0.5, 1.25, -2, 8}, {0.5, -1, 2, 3}, {1, 0, 1, 0}}
	for _, k := range fileKinds {
		t.Run(k.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "types."+k.name)
			writeKind(t, path, k, rec)
			got, err := LoadFile(path, LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got.Features); diff != "" {
				t.Errorf("features (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"i8", "u64", "f32", "f16", "flag"}, got.FeatureNames); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int64{0, 1, 0, 1}, got.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"7", "9"}, got.ClassNames); diff != "" {
				t.Errorf("class names (-want +got):\n%s", diff)
			}
		})
	}
}

// target and target_index pick the column as in CSV; a float target with
// many values is a regression target.
func TestLoadColumnarTargets(t *testing.T) {
	rec := newBatch(t, col{"a", float64s([]float64{1, 2, 3, 4})}, col{"value", float64s([]float64{0.5, 1.5, 2.25, 3})},
		col{"c", float64s([]float64{5, 6, 7, 8})})
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "t.parquet")
	writeKind(t, path, fileKinds[0], rec)
	for _, o := range []LoadOptions{{Target: "value"}, {TargetIndex: ptr(1)}, {TargetIndex: ptr(-2)}} {
		got, err := LoadFile(path, o)
		if err != nil {
			t.Fatal(err)
		}
		type summary struct {
			Features []string
			Target   string
			Task     Task
			Values   []float64
		}
		want := summary{[]string{"a", "c"}, "value", Regression, []float64{0.5, 1.5, 2.25, 3}}
		if diff := cmp.Diff(want, summary{got.FeatureNames, got.TargetName, got.Task, got.Values}); diff != "" {
			t.Errorf("%+v: (-want +got):\n%s", o, diff)
		}
	}
}

// A Parquet or Arrow file of one column can be the target file of a text
// or another file.
func TestLoadColumnarTargetFile(t *testing.T) {
	dir := t.TempDir()
	features := writeTemp(t, "x.csv", "a,b\n1,2\n3,4\n5,6\n7,8\n")
	target := filepath.Join(dir, "y.arrow")
	rec := newBatch(t, col{"species", strs([]string{"cat", "dog", "cat", "dog"})})
	writeKind(t, target, fileKinds[1], rec)
	rec.Release()
	got, err := LoadFile(features, LoadOptions{TargetPath: target})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{0, 1, 0, 1}, got.Labels); diff != "" || got.TargetName != "species" {
		t.Errorf("target %q, labels (-want +got):\n%s", got.TargetName, diff)
	}
}

// Bad data in a columnar file names the file, the row and the column.
func TestLoadColumnarBadData(t *testing.T) {
	list := func() arrow.Array {
		b := array.NewListBuilder(memory.DefaultAllocator, arrow.PrimitiveTypes.Float64)
		defer b.Release()
		for range 3 {
			b.Append(true)
			b.ValueBuilder().(*array.Float64Builder).Append(1)
		}
		return b.NewArray()
	}
	x := func(v ...float64) arrow.Array { return float64s(v) }
	cases := []struct {
		name   string
		cols   func() []col
		opts   LoadOptions
		row    int
		column string
		field  int
		msg    string
	}{
		{name: "string feature", cols: func() []col {
			return []col{{"a", x(1, 2, 3)}, {"colour", strs([]string{"red", "blue", "red"})}, {"when", strs([]string{"x", "y", "z"})}, {"y", x(0, 1, 0)}}
		}, column: "colour", field: 2, msg: `has type utf8; features must be numeric (integer, floating point or bool); so are not "when". Make it the target (target = "colour")`},
		{name: "list feature", cols: func() []col { return []col{{"v", list()}, {"y", x(0, 1, 0)}} },
			column: "v", field: 1, msg: "has type list<"},
		{name: "NaN feature", cols: func() []col { return []col{{"a", x(1, 2, 3)}, {"b", x(1, math.NaN(), 3)}, {"y", x(0, 1, 0)}} },
			row: 2, column: "b", field: 2, msg: "NaN is a missing value"},
		{name: "infinite feature", cols: func() []col { return []col{{"a", x(1, 2, math.Inf(-1))}, {"y", x(0, 1, 0)}} },
			row: 3, column: "a", field: 1, msg: "-Inf is not a finite number"},
		{name: "null feature", cols: func() []col { return []col{{"a", float64s([]float64{1, 2, 3}, 0)}, {"y", x(0, 1, 0)}} },
			row: 1, column: "a", field: 1, msg: "null is a missing value"},
		{name: "null target", cols: func() []col { return []col{{"a", x(1, 2, 3)}, {"y", strs([]string{"p", "q", "p"}, 2)}} },
			row: 3, column: "y", field: 2, msg: "null target"},
		{name: "NaN target", cols: func() []col { return []col{{"a", x(1, 2, 3)}, {"y", x(0, math.NaN(), 1)}} },
			row: 2, column: "y", field: 2, msg: "NaN target"},
		{name: "empty target", cols: func() []col { return []col{{"a", x(1, 2, 3)}, {"y", strs([]string{"p", "", "q"})}} },
			row: 2, column: "y", field: 2, msg: "empty target"},
		{name: "regression string target", cols: func() []col { return []col{{"a", x(1, 2, 3)}, {"y", strs([]string{"1.5", "high", "2"})}} },
			opts: LoadOptions{Task: Regression}, row: 2, column: "y", field: 2, msg: `"high" is not a number`},
		{name: "list target", cols: func() []col { return []col{{"a", x(1, 2, 3)}, {"y", list()}} },
			column: "y", field: 2, msg: "target has type list"},
		{name: "split column", cols: func() []col { return []col{{"split", x(1, 2, 3)}, {"y", x(0, 1, 0)}} },
			column: "split", field: 1, msg: "reserved"},
		{name: "one column", cols: func() []col { return []col{{"y", x(0, 1, 0)}} }, msg: `has 1 column ("y")`},
		{name: "no rows", cols: func() []col { return []col{{"a", x()}, {"y", x()}} }, msg: "no data rows"},
		{name: "single class", cols: func() []col { return []col{{"a", x(1, 2, 3)}, {"y", strs([]string{"p", "p", "p"})}} },
			column: "y", msg: "single class"},
	}
	for _, c := range cases {
		for _, k := range fileKinds {
			t.Run(c.name+"/"+k.name, func(t *testing.T) {
				mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
				defer mem.AssertSize(t, 0)
				rec := newBatch(t, c.cols()...)
				path := filepath.Join(t.TempDir(), "bad."+k.name)
				writeKind(t, path, k, rec)
				rec.Release()
				o := c.opts
				o.Allocator = mem
				_, err := LoadFile(path, o)
				var de *DataError
				if !errors.As(err, &de) {
					t.Fatalf("got %v (%T), want a *DataError", err, err)
				}
				type loc struct {
					File, Column string
					Row, Field   int
				}
				if diff := cmp.Diff(loc{path, c.column, c.row, c.field}, loc{de.File, de.Column, de.Row, de.Field}); diff != "" {
					t.Errorf("location (-want +got):\n%s", diff)
				}
				msg := err.Error()
				if !strings.Contains(msg, c.msg) || !strings.HasPrefix(msg, path) {
					t.Errorf("error %q does not start with %q and mention %q", msg, path, c.msg)
				}
				if c.row > 0 && !strings.Contains(msg, ": row "+strconv.Itoa(c.row)+":") {
					t.Errorf("error %q does not give row %d", msg, c.row)
				}
			})
		}
	}
}

func TestLoadColumnarConfigErrors(t *testing.T) {
	rec := newBatch(t, col{"sepal_length", float64s([]float64{1, 2})}, col{"species", strs([]string{"a", "b"})})
	path := filepath.Join(t.TempDir(), "h.parquet")
	writeKind(t, path, fileKinds[0], rec)
	rec.Release()
	cases := []struct {
		opts   LoadOptions
		attr   string
		detail string
	}{
		{LoadOptions{Target: "Species"}, "target", `Did you mean "species"?`},
		{LoadOptions{TargetIndex: ptr(2)}, "target_index", "found 2"},
	}
	for _, c := range cases {
		_, err := LoadFile(path, c.opts)
		var diags sdk.Diagnostics
		if !errors.As(err, &diags) || len(diags) != 1 || diags[0].Path[0] != c.attr || !strings.Contains(diags[0].Detail, c.detail) {
			t.Errorf("%+v: got %v, want a diagnostic on %s mentioning %q", c.opts, err, c.attr, c.detail)
		}
	}
}

func TestLoadDamagedFiles(t *testing.T) {
	iris := loadIris(t)
	rec := irisBatch(t, iris, "string")
	defer rec.Release()
	var good [3][]byte
	for i, k := range fileKinds {
		var buf bytes.Buffer
		k.write(t, &buf, rec)
		good[i] = buf.Bytes()
	}
	cases := []struct {
		file    string
		content []byte
		msg     string
	}{
		{"text.parquet", []byte("a,b\n1,2\n"), "not a readable Parquet file"},
		{"truncated.parquet", good[0][:len(good[0])/2], "not a readable Parquet file"},
		{"truncated.arrow", good[1][:len(good[1])/2], "Arrow IPC"},
		{"truncated.arrows", good[2][:len(good[2])-300], "reading arrow data after row"},
		{"old.feather", []byte("FEA1\x00\x00\x00\x00rest"), "Feather version 1"},
		{"a.parquet.gz", gzipped(good[0]), "cannot be read compressed"},
		{"a.arrow.gz", gzipped(good[1]), "cannot be read compressed"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
			defer mem.AssertSize(t, 0)
			path := filepath.Join(t.TempDir(), c.file)
			if err := os.WriteFile(path, c.content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadFile(path, LoadOptions{Allocator: mem})
			var de *DataError
			if !errors.As(err, &de) || de.File != path || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("got %v, want a DataError on %s mentioning %q", err, path, c.msg)
			}
		})
	}
}

func gzipped(b []byte) []byte {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b)
	zw.Close()
	return z.Bytes()
}

// max_rows keeps the same rows from every format: the first ones, or a
// random sample that depends on the seed alone, in file order.
func TestMaxRows(t *testing.T) {
	iris := loadIris(t)
	rec := irisBatch(t, iris, "string")
	defer rec.Release()
	dir := t.TempDir()
	paths := []string{filepath.Join(sklearnDir, "iris.csv")}
	for _, k := range fileKinds {
		p := filepath.Join(dir, "iris."+k.name)
		writeKind(t, p, k, rec)
		paths = append(paths, p)
	}
	// rowsOf finds which iris rows a table holds, by their feature values
	// (iris has duplicate rows; the first unused match is taken, so the
	// result must be increasing to be in file order).
	rowsOf := func(t *testing.T, tab *Table) []int {
		var out []int
		next := 0
		for i := range tab.Labels {
			for r := next; r < len(iris.Labels); r++ {
				same := iris.Labels[r] == tab.Labels[i]
				for j := range iris.Features {
					same = same && iris.Features[j][r] == tab.Features[j][i]
				}
				if same {
					out = append(out, r)
					next = r + 1
					break
				}
			}
		}
		if len(out) != len(tab.Labels) {
			t.Fatalf("only %d of %d rows found in iris in file order", len(out), len(tab.Labels))
		}
		return out
	}
	first := func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	var random5, random7 []int
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			tab, err := LoadFile(p, LoadOptions{MaxRows: 60})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(first(60), rowsOf(t, tab)); diff != "" {
				t.Errorf("first 60 rows (-want +got):\n%s", diff)
			}
			// The CSV's count header declares 3 classes; other files
			// know only the labels they hold.
			wantClasses := 2
			if strings.HasSuffix(p, ".csv") {
				wantClasses = 3
			}
			if tab.Classes != wantClasses || tab.Sample != "first 60 rows" {
				t.Errorf("%d classes, sample %q; want %d, \"first 60 rows\"", tab.Classes, tab.Sample, wantClasses)
			}

			all, err := LoadFile(p, LoadOptions{MaxRows: 150})
			if err != nil {
				t.Fatal(err)
			}
			if all.Rows() != 150 || all.Sample != "" {
				t.Errorf("max_rows = rows: %d rows, sample %q; want 150, \"\"", all.Rows(), all.Sample)
			}

			r5, err := LoadFile(p, LoadOptions{MaxRows: 30, Sample: SampleRandom, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			got := rowsOf(t, r5)
			if random5 == nil {
				random5 = got
			} else if diff := cmp.Diff(random5, got); diff != "" {
				t.Errorf("random sample differs from the CSV's (-csv +got):\n%s", diff)
			}
			if r5.Sample != "random 30 of 150 rows, seed 5" || r5.Classes != 3 {
				t.Errorf("sample %q with %d classes", r5.Sample, r5.Classes)
			}
			r7, err := LoadFile(p, LoadOptions{MaxRows: 30, Sample: SampleRandom, Seed: 7})
			if err != nil {
				t.Fatal(err)
			}
			random7 = rowsOf(t, r7)
			if cmp.Equal(random5, random7) {
				t.Error("seeds 5 and 7 drew the same sample")
			}
		})
	}
	// A uniform sample of 30 from rows sorted by class spans the file.
	if random5[0] >= 50 || random5[len(random5)-1] < 100 {
		t.Errorf("random sample %v does not span the file", random5)
	}
}

// A random sample of a features file and of its target file pick the same
// rows, so they stay aligned.
func TestMaxRowsTargetFile(t *testing.T) {
	feat := filepath.Join(sklearnDir, "diabetes_data_raw.csv.gz")
	target := filepath.Join(sklearnDir, "diabetes_target.csv.gz")
	full, err := LoadFile(feat, LoadOptions{TargetPath: target})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Sample{SampleFirst, SampleRandom} {
		tab, err := LoadFile(feat, LoadOptions{TargetPath: target, MaxRows: 50, Sample: s, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		if tab.Rows() != 50 {
			t.Fatalf("%s: %d rows, want 50", s, tab.Rows())
		}
		// Age and glucose identify a row well enough here; the target must
		// be that row's.
		for i := range 50 {
			found := false
			for r := range full.Values {
				if full.Features[0][r] == tab.Features[0][i] && full.Features[9][r] == tab.Features[9][i] && full.Features[2][r] == tab.Features[2][i] {
					found = found || full.Values[r] == tab.Values[i]
				}
			}
			if !found {
				t.Fatalf("%s: row %d has a target from another row", s, i)
			}
		}
	}
}

// Load reads Parquet and Arrow from memory too.
func TestLoadColumnarFromReader(t *testing.T) {
	iris := loadIris(t)
	for _, k := range fileKinds {
		b, err := os.ReadFile(filepath.Join(arrowDir, "iris."+k.name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Load("iris."+k.name, bytes.NewReader(b), LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sameData(t, iris, got, true)
	}
	// A Parquet file needs random access; a plain reader has none.
	b, _ := os.ReadFile(filepath.Join(arrowDir, "iris.parquet"))
	_, err := Load("iris.parquet", io.MultiReader(bytes.NewReader(b)), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "random access") {
		t.Errorf("got %v, want an error about random access", err)
	}
}

// FuzzLoadColumnar feeds arbitrary bytes to the Parquet, Arrow IPC file
// and stream readers: they must return a table or an error, never panic,
// and release every Arrow buffer of a file they read.
func FuzzLoadColumnar(f *testing.F) {
	for i, k := range fileKinds {
		b, err := os.ReadFile(filepath.Join(arrowDir, "iris."+k.name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(i), uint8(0))
		rec := newBatch(f, col{"a", float64s([]float64{1, math.NaN(), 3}, 2)}, col{"y", strs([]string{"p", "q", "p"})})
		var buf bytes.Buffer
		k.write(f, &buf, rec)
		rec.Release()
		f.Add(buf.Bytes(), uint8(i), uint8(2))
	}
	names := []string{"fuzz.parquet", "fuzz.arrow", "fuzz.arrows"}
	f.Fuzz(func(t *testing.T, data []byte, kind, maxRows uint8) {
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		o := LoadOptions{MaxRows: int(maxRows % 16), Allocator: mem}
		tab, err := Load(names[int(kind)%len(names)], bytes.NewReader(data), o)
		if err != nil {
			return
		}
		mem.AssertSize(t, 0)
		checkConsistent(t, tab)
	})
}
