package modelchoice

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// zooCSV is a model zoo of two families, out of size order, as
// examples/zoo/zoo.csv is laid out (a name, a family, a parameter count,
// then measurements).
const zooCSV = `# a small zoo
name,family,param_count,flops,accuracy,act
b-big,b,5000,9000,0.93,relu
a-mid,a,400,700,0.85,relu
a-small,a,100,150,0.80,gelu
b-small,b,250,400,0.82,relu
a-big,a,1600,3000,0.90,relu
`

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zooParquet is zooCSV as a Parquet file: typed columns.
func zooParquet(t *testing.T) []byte {
	mem := memory.NewGoAllocator()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "name", Type: arrow.BinaryTypes.String},
		{Name: "family", Type: arrow.BinaryTypes.String},
		{Name: "param_count", Type: arrow.PrimitiveTypes.Int64},
		{Name: "flops", Type: arrow.PrimitiveTypes.Int64},
		{Name: "accuracy", Type: arrow.PrimitiveTypes.Float64},
		{Name: "act", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for _, line := range strings.Split(strings.TrimSpace(zooCSV), "\n")[2:] {
		f := strings.Split(line, ",")
		var p, fl int64
		var acc float64
		fmt.Sscan(f[2], &p)
		fmt.Sscan(f[3], &fl)
		fmt.Sscan(f[4], &acc)
		b.Field(0).(*array.StringBuilder).Append(f[0])
		b.Field(1).(*array.StringBuilder).Append(f[1])
		b.Field(2).(*array.Int64Builder).Append(p)
		b.Field(3).(*array.Int64Builder).Append(fl)
		b.Field(4).(*array.Float64Builder).Append(acc)
		b.Field(5).(*array.StringBuilder).Append(f[5])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	tbl := array.NewTableFromRecords(schema, []arrow.RecordBatch{rec})
	defer tbl.Release()
	var buf bytes.Buffer
	if err := pqarrow.WriteTable(tbl, &buf, 16, nil, pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The rows become named models, one family per group value, each ordered
// by size; knobs are the other columns; every format gives the same.
func TestTableFamily(t *testing.T) {
	tsv := strings.ReplaceAll(zooCSV, ",", "\t")
	files := map[string]string{
		"csv":     writeTemp(t, "zoo.csv", []byte(zooCSV)),
		"tsv.gz":  writeTemp(t, "zoo.tsv.gz", gz(t, tsv)),
		"parquet": writeTemp(t, "zoo.parquet", zooParquet(t)),
	}
	model := func(name, family string, params, flops int64, acc float64, act string) tables.Candidate {
		return tables.Candidate{ID: name, Name: name, Family: family, Kind: tables.KindTable, Size: float64(params),
			Params: params, FLOPs: flops, LearningRate: 0.01, BatchSize: 16, Epochs: 5, Preprocess: "none", Quantize: "none",
			Knobs: tables.Knobs{"param_count": float64(params), "flops": float64(flops), "accuracy": acc, "act": act}}
	}
	// From zooCSV, by family in order of first appearance (b, then a),
	// each by param_count.
	want := [][]tables.Candidate{
		{model("b-small", "b", 250, 400, 0.82, "relu"), model("b-big", "b", 5000, 9000, 0.93, "relu")},
		{model("a-small", "a", 100, 150, 0.80, "gelu"), model("a-mid", "a", 400, 700, 0.85, "relu"), model("a-big", "a", 1600, 3000, 0.90, "relu")},
	}
	for name, p := range files {
		t.Run(name, func(t *testing.T) {
			got, err := tableSpace(FamilyBlock{Kind: "table", Path: filepath.Base(p), Size: "param_count", Group: "family", FLOPsCol: "flops"},
				"family.0", filepath.Dir(p), hyper{0.01, 16, 5})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}

	// Without a group, the file is one family named after it.
	p := files["csv"]
	got, err := tableSpace(FamilyBlock{Kind: "table", Path: p, Size: "param_count"}, "family.0", "", hyper{0.01, 16, 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0][0].Family != "zoo" || !slices.Equal(names(got[0]), []string{"a-small", "b-small", "a-mid", "a-big", "b-big"}) {
		t.Errorf("one family: %v", got)
	}
}

// The zoo example's own table reads as five families.
func TestZooTable(t *testing.T) {
	st, err := New(Config{BaseDir: "../../examples/zoo", Families: []FamilyBlock{{Kind: "table", Path: "zoo.csv", Size: "param_count", Group: "family", NameColumn: "name"}}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, c := range st.(*Stage).catalogs {
		count[c.name] = len(c.models)
	}
	// examples/zoo/README.md: 56, 50, 52, 52 and 50 models.
	if diff := cmp.Diff(map[string]int{"mlp1": 56, "mlp1-int8": 50, "mlp2": 52, "mlp2-pruned": 52, "mlp3": 50}, count); diff != "" {
		t.Errorf("models per family (-want +got):\n%s", diff)
	}
}

func diagList(err error) []string {
	var ds sdk.Diagnostics
	if !errors.As(err, &ds) {
		return []string{"not diagnostics: " + fmt.Sprint(err)}
	}
	var out []string
	for _, d := range ds {
		out = append(out, strings.Join(d.Path, ".")+": "+d.Summary+": "+d.Detail)
	}
	return out
}

// lineOf is the 1-based line of text that holds s.
func lineOf(t *testing.T, text, s string) int {
	t.Helper()
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%q is in no line", s)
	return 0
}

// A bad table fails when the stage is configured (validate), with every
// problem at once, each on the attribute to fix and naming the file, the
// line and the column.
func TestTableFamilyProblems(t *testing.T) {
	bad := `name,family,param_count,accuracy
tiny,a,"1,200",0.8
small,a,0,0.81
tiny,b,300,0.82
,b,400,0.83
huge,,inf,0.9
`
	p := writeTemp(t, "bad.csv", []byte(bad))
	_, err := New(Config{Families: []FamilyBlock{{Kind: "table", Path: p, Size: "param_count", Group: "family", FLOPsCol: "flop"}}})
	l := func(s string) int { return lineOf(t, bad, s) }
	want := []string{
		fmt.Sprintf(`family.0.path: Duplicate name: %s:%d: column "name": name "tiny" on line %d is already on line %d; names must be unique.`, p, l("tiny,b"), l("tiny,b"), l("tiny,a")),
		fmt.Sprintf(`family.0.path: Missing name: %s:%d: column "name": the row has no name; every row needs one.`, p, l(",b,400")),
		fmt.Sprintf(`family.0.size: Thousands separators in a number: %s:%d: column "param_count": "1,200" is written with thousands separators, which a number in a table must not have: remove them (1200).`, p, l("tiny,a")),
		fmt.Sprintf(`family.0.size: Not a finite number: %s:%d: column "param_count": "inf" is not a finite number.`, p, l("huge")),
		fmt.Sprintf(`family.0.size: Value not positive: %s:%d: column "param_count": the value is 0, and a size must be positive.`, p, l("small")),
		fmt.Sprintf(`family.0.flops_column: No such table column: %s:1: the header has no column "flop". Its columns are: name, family, param_count, accuracy.`, p),
		fmt.Sprintf(`family.0.group: Missing group: %s:%d: column "family": the row has no group; every model belongs to a family.`, p, l("huge")),
	}
	if diff := cmp.Diff(want, diagList(err)); diff != "" {
		t.Errorf("diagnostics (-want +got):\n%s", diff)
	}

	p = writeTemp(t, "good.csv", []byte("name,family,param_count,accuracy\ntiny,a,100,0.8\n"))
	for _, c := range []struct {
		name  string
		block FamilyBlock
		want  string
	}{
		{"missing name column", FamilyBlock{Kind: "table", Path: p, Size: "param_count", NameColumn: "model"},
			fmt.Sprintf(`family.0.name_column: No such table column: %s:1: the header has no column "model". Its columns are: name, family, param_count, accuracy.`, p)},
		{"unknown format", FamilyBlock{Kind: "table", Path: p, Size: "param_count", Format: "xlsx"},
			`family.0.format: Unknown format: format must be one of csv, tsv, parquet, arrow; found "xlsx".`},
		{"no such file", FamilyBlock{Kind: "table", Path: p + ".missing.csv", Size: "param_count"},
			fmt.Sprintf(`family.0.path: Invalid model table: open %s.missing.csv: no such file or directory.`, p)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(Config{Families: []FamilyBlock{c.block}})
			if diff := cmp.Diff([]string{c.want}, diagList(err)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// A model table is outside input: whatever its bytes, the table family
// gives models or diagnostics, never a panic; and the models it gives are
// well formed.
func FuzzTableSpace(f *testing.F) {
	f.Add([]byte(zooCSV), false)
	f.Add([]byte(strings.ReplaceAll(zooCSV, ",", "\t")), false)
	f.Add([]byte("name,family,param_count\nx,a,\"1,0\"\ny,,0\nx,a,NaN\n"), false)
	f.Add([]byte("name,param_count\na,1e300\nb,0.3\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, gzipped bool) {
		name := "zoo.csv"
		if gzipped {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Write(data)
			w.Close()
			data, name = b.Bytes(), "zoo.csv.gz"
		}
		p := writeTemp(t, name, data)
		groups, err := tableSpace(FamilyBlock{Kind: "table", Path: p, Size: "param_count", Group: "family"}, "family.0", "", hyper{0.01, 16, 5})
		if err != nil {
			var ds sdk.Diagnostics
			if !errors.As(err, &ds) || !ds.HasErrors() {
				t.Fatalf("an error that is not diagnostics: %v", err)
			}
			for _, d := range ds {
				if d.Summary == "" || d.Detail == "" || len(d.Path) < 3 {
					t.Errorf("diagnostic without a summary, detail or attribute: %+v", d)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, g := range groups {
			for i, c := range g {
				if seen[c.Name] || c.Name == "" || c.Family == "" {
					t.Errorf("model %q of family %q: names are unique and non-empty, families named", c.Name, c.Family)
				}
				seen[c.Name] = true
				if !(c.Size > 0) || math.IsInf(c.Size, 0) || c.Params < 1 {
					t.Errorf("model %s: size %g, params %d", c.Name, c.Size, c.Params)
				}
				if i > 0 && sizeOf(g[i-1]) > sizeOf(c) {
					t.Errorf("family %s is out of size order at %s", c.Family, c.Name)
				}
			}
		}
	})
}
