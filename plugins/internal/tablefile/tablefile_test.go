package tablefile

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func write(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func read(t *testing.T, name, content, format string) *Table {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	tab, err := Read(context.Background(), write(t, name, []byte(content)), format, mem)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// A spreadsheet's export: a byte order mark, comments, a quoted cell
// spanning two lines; rows are named by their lines.
func TestLines(t *testing.T) {
	text := "\ufeff# exported\nname,size,note\n# a comment between rows\na,1,plain\nb,2,\"two\nlines\"\nc,3,\n"
	tab := read(t, "t.csv", text, "")
	if tab.Format != FormatCSV || tab.Rows != 3 || tab.HeaderLine != 2 {
		t.Fatalf("format %s, %d rows, header on line %d; want csv, 3, 2", tab.Format, tab.Rows, tab.HeaderLine)
	}
	if diff := cmp.Diff([]string{"name", "size", "note"}, tab.Names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	var got []string
	for r := range tab.Rows {
		got = append(got, tab.At(r))
	}
	p := tab.Path
	if diff := cmp.Diff([]string{p + ":4", p + ":5", p + ":7"}, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
	note := tab.Column("note")
	if note.Text(1) != "two\nlines" || !note.Null(2) || note.Null(0) {
		t.Errorf("notes %q %q (null %t)", note.Text(0), note.Text(1), note.Null(2))
	}
	sizes, ps := tab.Numbers("size")
	if ps != nil || !cmp.Equal([]float64{1, 2, 3}, sizes) {
		t.Errorf("sizes %v, problems %v", sizes, ps)
	}
}

// TSV, gzip-compressed or not, reads as CSV does; a quote in TSV is a
// character.
func TestTSV(t *testing.T) {
	text := "name\tsize\nsay \"hi\"\t1,5\n"
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(text))
	w.Close()
	for name, data := range map[string][]byte{"t.tsv": []byte(text), "t.tsv.gz": b.Bytes()} {
		mem := memory.NewGoAllocator()
		tab, err := Read(context.Background(), write(t, name, data), "", mem)
		if err != nil {
			t.Fatal(err)
		}
		if tab.Format != FormatTSV || tab.Column("name").Text(0) != `say "hi"` || tab.Column("size").Text(0) != "1,5" {
			t.Errorf("%s: %s %q %q", name, tab.Format, tab.Column("name").Text(0), tab.Column("size").Text(0))
		}
		// 1,5 is a decimal comma.
		_, ps := tab.Numbers("size")
		if len(ps) != 1 || ps[0].Summary != "Decimal comma in a number" || !strings.HasSuffix(ps[0].Error(), `:2: column "size": "1,5" is written with a decimal comma: write a decimal point, without thousands separators (1.5).`) {
			t.Errorf("%s: %v", name, ps)
		}
	}
}

// Every cell that is not a number is named, with its line, its column and
// the fix; the same mistake in a column is one problem listing its lines.
func TestNumberProblems(t *testing.T) {
	text := `v
1
"1,014.45"
"12,000"
"1 000"
"1.014,5"
95%
inf
abc
NA

"2,500"
"3,500"
"4,500"
`
	tab := read(t, "n.csv", text, FormatCSV)
	nums, ps := tab.Numbers("v")
	p := tab.Path
	want := []string{
		p + `:3: column "v": "1,014.45" is written with thousands separators, which a number in a table must not have: remove them (1014.45). Also on lines 4, 5, 12 and 2 more.`,
		p + `:6: column "v": "1.014,5" is written with a decimal comma: write a decimal point, without thousands separators (1014.5).`,
		p + `:7: column "v": "95%" has a percent sign: write the number alone.`,
		p + `:8: column "v": "inf" is not a finite number.`,
		p + `:9: column "v": "abc" is not a number.`,
	}
	var got []string
	for _, pr := range ps {
		got = append(got, pr.Error())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if ps[0].Count != 6 || ps[0].Summary != "Thousands separators in a number" {
		t.Errorf("count %d summary %q", ps[0].Count, ps[0].Summary)
	}
	// Bad cells and nulls are NaN; the rest are numbers. (The empty line
	// is no row.)
	nan := math.NaN()
	if diff := cmp.Diff([]float64{1, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan}, nums, cmpopts.EquateNaNs()); diff != "" {
		t.Errorf("numbers (-want +got):\n%s", diff)
	}
}

func TestUniqueAndPositive(t *testing.T) {
	text := "name,size\na,1\nb,0\na,-2\n,3\nb,4\n"
	tab := read(t, "u.csv", text, "")
	names, ps := tab.Unique("name")
	p := tab.Path
	var got []string
	for _, pr := range ps {
		got = append(got, pr.Summary+": "+pr.Error())
	}
	want := []string{
		`Duplicate name: ` + p + `:4: column "name": name "a" on line 4 is already on line 2; names must be unique. Also on line 6.`,
		`Missing name: ` + p + `:5: column "name": the row has no name; every row needs one.`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"a": 0, "b": 1}, names); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	_, ps = tab.Positive("size", "a size")
	if len(ps) != 1 || ps[0].Error() != p+`:3: column "size": the value is 0, and a size must be positive. Also on line 4.` {
		t.Errorf("%v", ps)
	}
	if _, ps := tab.Numbers("sise"); len(ps) != 1 || ps[0].Error() != p+`:1: column "sise": the table has no column "sise".` {
		t.Errorf("%v", ps)
	}
}

func TestRagged(t *testing.T) {
	text := "a,b,c\n1,2,3\n1,2\n4,\"5\",6\n1,014.5,2,3\n"
	_, err := Read(context.Background(), write(t, "r.csv", []byte(text)), "", memory.NewGoAllocator())
	p, ok := err.(*Problem)
	if !ok {
		t.Fatalf("got %v, want a Problem", err)
	}
	want := p.Path + `:3: the line has 2 fields, the header 3. Also on line 5.`
	if p.Error() != want || p.Summary != "Ragged line" {
		t.Errorf("got %q\nwant %q", p.Error(), want)
	}
	// The first ragged line is split at a thousands separator: the hint
	// says so.
	_, err = Read(context.Background(), write(t, "r.csv", []byte("a,b\n1,014.5,2\n")), "", memory.NewGoAllocator())
	if err == nil || !strings.Contains(err.Error(), ":2: the line has 3 fields, the header 2. A number written with thousands separators") {
		t.Errorf("got %v", err)
	}
}

// Arrow columns keep their types: rows are named by position.
func TestArrow(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "name", Type: arrow.BinaryTypes.String},
		{Name: "lr", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"x", "y"}, nil)
	b.Field(1).(*array.Float32Builder).AppendValues([]float32{0.003, float32(math.Inf(1))}, nil)
	b.Field(2).(*array.BooleanBuilder).AppendValues([]bool{true, false}, nil)
	rec := b.NewRecordBatch()
	b.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&buf, ipc.WithSchema(schema), ipc.WithAllocator(mem))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	w.Close()
	rec.Release()
	tab, err := Read(context.Background(), write(t, "t.arrow", buf.Bytes()), "", mem)
	if err != nil {
		t.Fatal(err)
	}
	lr := tab.Column("lr")
	if !lr.IsNumber() || lr.Bits != 32 || tab.Column("name").IsNumber() || !tab.Column("ok").IsNumber() {
		t.Errorf("types: lr number %t bits %d", lr.IsNumber(), lr.Bits)
	}
	_, ps := tab.Numbers("lr")
	if len(ps) != 1 || ps[0].Error() != tab.Path+`, row 1: column "lr": +Inf is not a finite number.` {
		t.Errorf("%v", ps)
	}
	if _, ps := tab.Texts("lr"); len(ps) != 1 || ps[0].Summary != "Column is not text" {
		t.Errorf("%v", ps)
	}
	if v, ok := tab.Column("ok").Number(0); !ok || v != 1 {
		t.Errorf("ok = %v %t", v, ok)
	}
}

func TestFormatFromName(t *testing.T) {
	for name, want := range map[string]string{"a.csv": "csv", "A.CSV.GZ": "csv", "a.tsv.gz": "tsv", "a.pq": "parquet", "a.feather": "arrow", "a.txt": ""} {
		if got := FormatFromName(name); got != want {
			t.Errorf("FormatFromName(%q) = %q, want %q", name, got, want)
		}
	}
	if got := Resolve("t.csv", "/p"); got != "/p/t.csv" {
		t.Errorf("Resolve: %s", got)
	}
	if got := Resolve("/abs/t.csv", "/p"); got != "/abs/t.csv" {
		t.Errorf("Resolve: %s", got)
	}
}

// Whatever its bytes, a text table reads or fails, never panics; when it
// reads, every column has a cell per row and rows have increasing lines.
func FuzzRead(f *testing.F) {
	f.Add([]byte("name,size\na,1\nb,\"1,000\"\n"), false)
	f.Add([]byte("\ufeff# c\nx\ty\n1\t2\n"), true)
	f.Add([]byte("a,b\n1,2,3\n\"x\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, tsv bool) {
		format := FormatCSV
		if tsv {
			format = FormatTSV
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		tab, err := Read(context.Background(), write(t, "f", data), format, mem)
		mem.AssertSize(t, 0)
		if err != nil {
			return
		}
		for r := 1; r < tab.Rows; r++ {
			if tab.Line(r) <= tab.Line(r-1) || tab.Line(r-1) <= tab.HeaderLine {
				t.Fatalf("row %d on line %d after line %d", r, tab.Line(r), tab.Line(r-1))
			}
		}
		for _, n := range tab.Names {
			c := tab.Column(n)
			for r := range tab.Rows {
				c.Null(r)
				c.Text(r)
				c.Number(r)
			}
			nums, ps := tab.Numbers(n)
			if len(nums) != tab.Rows {
				t.Fatalf("column %s: %d numbers for %d rows", n, len(nums), tab.Rows)
			}
			for _, p := range ps {
				if p.Summary == "" || !strings.HasPrefix(p.Error(), fmt.Sprintf("%s:", tab.Path)) {
					t.Errorf("problem %q: %q", p.Summary, p.Error())
				}
			}
		}
	})
}
