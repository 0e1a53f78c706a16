// Package tablefile reads a table of models or measured results whole into
// memory, column by column, for the stages that read such tables: replay
// (measured results) and model_choice's table family (named models).
//
// A table is a CSV or TSV file (optionally gzip-compressed, told by its
// first bytes; a header line names the columns; lines starting with # are
// comments), a Parquet file, or an Arrow IPC file or stream. Every column
// of a text file is held as text and parsed when used, so a later row never
// changes what an earlier one meant; Parquet and Arrow columns keep their
// type (strings as text, every integer, float and boolean type as numbers).
//
// A file is outside input: every size read from it is bounded, Arrow
// messages are checked (internal/ipcverify) before arrow-go decodes them,
// and decoding runs under recover, so a damaged file is an error, never a
// crash.
//
// Messages point at the fault: a data row of a text file is named by its
// line in the file (At gives "zoo.csv:12"), a row of a Parquet or Arrow
// file by its 0-based position ("zoo.parquet, row 11"). A Problem is one
// kind of mistake in one column, listing the rows it was found on, so that
// a stage reports every problem of a table at once, each with its file,
// line and column, and says how to fix it.
package tablefile

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/regularfile"
)

// Table formats.
const (
	FormatCSV     = "csv"
	FormatTSV     = "tsv"
	FormatParquet = "parquet"
	FormatArrow   = "arrow"
)

// Formats lists the formats, for messages and checks.
var Formats = []string{FormatCSV, FormatTSV, FormatParquet, FormatArrow}

// Extensions lists the file name extensions FormatFromName knows, for
// messages.
const Extensions = ".csv, .tsv (either with .gz), .parquet, .pq, .arrow, .arrows, .feather or .ipc"

// FormatFromName returns the format a file name implies, or "".
func FormatFromName(name string) string {
	n := strings.ToLower(name)
	n = strings.TrimSuffix(n, ".gz")
	switch filepath.Ext(n) {
	case ".csv":
		return FormatCSV
	case ".tsv", ".tab":
		return FormatTSV
	case ".parquet", ".pq":
		return FormatParquet
	case ".arrow", ".arrows", ".feather", ".ipc":
		return FormatArrow
	}
	return ""
}

// Resolve returns path, joined to baseDir (the pipeline file's directory,
// which the host passes to the stage) when it is relative.
func Resolve(path, baseDir string) string {
	if path != "" && !filepath.IsAbs(path) && baseDir != "" {
		return filepath.Join(baseDir, path)
	}
	return path
}

// MaxBytes bounds the file read: a table of models or results is small,
// and a bigger file is most likely the wrong one.
const MaxBytes = 1 << 30

// Column is one column of a table: text (string columns, and every column
// of a text file) or numbers.
type Column struct {
	Name string
	// Type is the column's Arrow type: utf8 for every column of a text
	// file.
	Type arrow.DataType
	// Dup is set when the file has two columns of this name; the column
	// holds the first one's values.
	Dup bool
	// Bits is 32 for float32 and float16 columns (their values are
	// compared at that precision, so that 0.003 stored as a float32 still
	// equals the float64 0.003), else 64.
	Bits int

	text []string  // text columns
	nums []float64 // numeric columns, and text columns once parsed
	null []bool

	parsed   bool     // nums of a text column are set
	problems Problems // of the parse
}

// IsText reports whether the column holds text: every column of a text
// file, and Parquet and Arrow string columns.
func (c *Column) IsText() bool { return c.text != nil }

// IsNumber reports whether the column holds numbers (a Parquet or Arrow
// integer, float or boolean column).
func (c *Column) IsNumber() bool { return c.text == nil && c.nums != nil }

// Null reports whether a cell is null: an Arrow null, or an empty cell of
// a text file.
func (c *Column) Null(row int) bool {
	return c.null[row] || (c.text != nil && strings.TrimSpace(c.text[row]) == "")
}

// NullNumber reports whether a cell is a null number: null, NaN, or text
// Numbers reads as null (empty, NA, N/A, NaN, null or none).
func (c *Column) NullNumber(row int) bool {
	switch {
	case c.null[row]:
		return true
	case c.text != nil:
		return isNullText(strings.TrimSpace(c.text[row]))
	case c.nums != nil:
		return math.IsNaN(c.nums[row])
	}
	return false
}

// Text returns a text cell, trimmed of spaces ("" for null and for a
// column that is not text).
func (c *Column) Text(row int) string {
	if c.text == nil || c.null[row] {
		return ""
	}
	return strings.TrimSpace(c.text[row])
}

// Number returns a cell as a number: a numeric column's value, or a text
// cell that is a number. ok is false for null, for text that is not a
// number and for a column of another type.
func (c *Column) Number(row int) (v float64, ok bool) {
	switch {
	case c.null[row]:
		return 0, false
	case c.text != nil:
		v, err := parseNumber(c.text[row])
		return v, err == nil && !math.IsNaN(v)
	case c.nums != nil:
		return c.nums[row], !math.IsNaN(c.nums[row])
	}
	return 0, false
}

// Table is a table file, read whole.
type Table struct {
	Path   string
	Format string
	// Rows counts the data rows.
	Rows int
	// Names are the column names in the file's order (a duplicated name
	// twice).
	Names []string
	// HeaderLine is the header's line in a text file (1 unless comments
	// come first), 0 for Parquet and Arrow.
	HeaderLine int

	cols map[string]*Column
	// lines maps a data row to its line in a text file (1-based); nil for
	// other formats.
	lines []int
}

// Column returns the column of a name, or nil.
func (t *Table) Column(name string) *Column { return t.cols[name] }

// Line returns a data row's line in a text file, or 0.
func (t *Table) Line(row int) int {
	if row >= 0 && row < len(t.lines) {
		return t.lines[row]
	}
	return 0
}

// Where names a data row for messages: "line 12" in a text file, "row 11"
// (0-based) in Parquet and Arrow.
func (t *Table) Where(row int) string {
	if l := t.Line(row); l > 0 {
		return fmt.Sprintf("line %d", l)
	}
	return fmt.Sprintf("row %d", row)
}

// At names a data row with its file: "zoo.csv:12", or "zoo.parquet, row
// 11".
func (t *Table) At(row int) string {
	if l := t.Line(row); l > 0 {
		return fmt.Sprintf("%s:%d", t.Path, l)
	}
	return fmt.Sprintf("%s, row %d", t.Path, row)
}

// AtHeader names the header: "zoo.csv:1", or the path alone for Parquet
// and Arrow.
func (t *Table) AtHeader() string {
	if t.HeaderLine > 0 {
		return fmt.Sprintf("%s:%d", t.Path, t.HeaderLine)
	}
	return t.Path
}

// Read reads a table file whole. format is one of Formats ("" is taken
// from the file name). The columns are copied out of Arrow's memory: the
// table holds none of mem's after Read returns.
func Read(ctx context.Context, path, format string, mem memory.Allocator) (t *Table, err error) {
	if format == "" {
		format = FormatFromName(path)
		if format == "" {
			return nil, fmt.Errorf("%s: the name does not say the format (%s): name it", path, Extensions)
		}
	}
	defer func() {
		// arrow-go's readers trust lengths and offsets read from the file: a
		// damaged file must not bring the plugin down.
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("%s: malformed %s file: %v", path, format, r)
		}
	}()
	f, err := regularfile.Open(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxBytes {
		return nil, fmt.Errorf("%s has %d bytes; a table is read whole into memory, and more than %d is refused", path, fi.Size(), MaxBytes)
	}
	// Arrow and Parquet trust sizes written in the file: allocations beyond
	// a few times the file's size mean a damaged one.
	bounded := ipcverify.NewCappedAllocator(mem, 16*fi.Size()+64<<20)
	t = &Table{Path: path, Format: format, cols: map[string]*Column{}}
	switch format {
	case FormatCSV:
		err = t.readText(ctx, f, ',')
	case FormatTSV:
		err = t.readText(ctx, f, '\t')
	case FormatParquet:
		err = t.readParquet(ctx, f, bounded)
	case FormatArrow:
		err = t.readArrow(ctx, f, bounded)
	default:
		err = fmt.Errorf("unknown format %q; a table is one of %s", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		var p *Problem
		var l located
		if errors.As(err, &p) || errors.As(err, &l) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

func (t *Table) setColumns(names []string, types []arrow.DataType) {
	t.Names = names
	for i, n := range names {
		if c, ok := t.cols[n]; ok {
			c.Dup = true
			continue
		}
		c := &Column{Name: n, Type: types[i], Bits: 64, null: []bool{}}
		switch {
		case isTextType(types[i]):
			c.text = []string{}
		case numberGetter(types[i]) != nil:
			c.nums = []float64{}
			if types[i].ID() == arrow.FLOAT32 || types[i].ID() == arrow.FLOAT16 {
				c.Bits = 32
			}
		}
		t.cols[n] = c
	}
}

// appendBatch adds a batch's rows to the columns.
func (t *Table) appendBatch(b arrow.RecordBatch) error {
	if len(t.Names) != int(b.NumCols()) {
		return fmt.Errorf("a batch has %d columns, the schema %d", b.NumCols(), len(t.Names))
	}
	n := int(b.NumRows())
	seen := map[string]bool{}
	for i, name := range t.Names {
		if seen[name] {
			continue
		}
		seen[name] = true
		c := t.cols[name]
		a := b.Column(i)
		if a.Len() != n {
			return fmt.Errorf("column %q has %d values in a batch of %d rows", name, a.Len(), n)
		}
		for r := range n {
			c.null = append(c.null, a.IsNull(r))
		}
		switch {
		case c.text != nil:
			get := textGetter(a)
			for r := range n {
				s := ""
				if !a.IsNull(r) {
					s = strings.Clone(get(r))
				}
				c.text = append(c.text, s)
			}
		case c.nums != nil:
			get := numberGetter(a.DataType())
			for r := range n {
				v := math.NaN()
				if !a.IsNull(r) {
					v = get(a, r)
				}
				c.nums = append(c.nums, v)
			}
		}
	}
	t.Rows += n
	return nil
}

// readText reads a CSV or TSV file, every column as text.
func (t *Table) readText(ctx context.Context, f *os.File, comma rune) error {
	var r io.Reader = io.LimitReader(f, MaxBytes)
	head := make([]byte, 2)
	if n, _ := io.ReadFull(f, head); n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		gz, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("not a readable gzip file: %w", err)
		}
		defer gz.Close()
		r = io.LimitReader(gz, MaxBytes+1)
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(data) > MaxBytes {
		return fmt.Errorf("the file holds more than %d bytes of text; a table is read whole into memory", MaxBytes)
	}
	// A spreadsheet's byte order mark would become part of the first
	// column's name.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = comma
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = false
	if comma == '\t' {
		// TSV does not quote: a quote is a character like any other.
		cr.LazyQuotes = true
	}
	parseErr := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return located{fmt.Errorf("%s:%d:%d: %w", t.Path, pe.Line, pe.Column, pe.Err)}
		}
		return err
	}
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("the file is empty: a table needs a header line naming its columns")
	}
	if err != nil {
		return parseErr(err)
	}
	t.HeaderLine, _ = cr.FieldPos(0)
	types := make([]arrow.DataType, len(header))
	for i, h := range header {
		header[i] = strings.TrimSpace(h)
		types[i] = arrow.BinaryTypes.String
	}
	t.setColumns(header, types)
	// A duplicated name's cells are the first column's.
	cols := make([]*Column, len(header))
	taken := make(map[string]bool, len(header))
	for i, h := range header {
		if !taken[h] {
			cols[i], taken[h] = t.cols[h], true
		}
	}
	ragged := &report{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return parseErr(err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != len(header) {
			detail := fmt.Sprintf("the line has %d fields, the header %d.", len(rec), len(header))
			if comma == ',' && len(rec) > len(header) && splitNumber(rec) {
				detail += ` A number written with thousands separators, such as 1,014.45, is split at its commas: write it without them (1014.45), or quote it ("1,014.45").`
			}
			ragged.add(t.Path, -1, line, "", "Ragged line", detail)
			continue
		}
		t.lines = append(t.lines, line)
		for i, v := range rec {
			if c := cols[i]; c != nil {
				c.text = append(c.text, v)
				c.null = append(c.null, false)
			}
		}
		t.Rows++
	}
	if ps := ragged.list; len(ps) > 0 {
		return ps[0]
	}
	return nil
}

// located is an error whose text already names the file and the line.
type located struct{ error }

func (l located) Unwrap() error { return l.error }

func (t *Table) readParquet(ctx context.Context, f *os.File, mem memory.Allocator) error {
	// Pages are read through a pool whose buffers are freed by finalizers,
	// so they get their own Go allocator: a checked allocator would see
	// them as leaks.
	props := parquet.NewReaderProperties(memory.NewGoAllocator())
	pf, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		return fmt.Errorf("not a readable Parquet file: %w", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, mem)
	if err != nil {
		return fmt.Errorf("not a readable Parquet file: %w", err)
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("reading Parquet columns: %w", err)
	}
	defer rr.Release()
	return t.readBatches(ctx, rr)
}

func (t *Table) readArrow(ctx context.Context, f *os.File, mem memory.Allocator) error {
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	magic := make([]byte, len(ipc.Magic))
	n, _ := f.ReadAt(magic, 0)
	if n == len(magic) && bytes.Equal(magic, ipc.Magic) {
		// arrow-go trusts the file's metadata to size Go slices: a damaged
		// length would exhaust memory beyond recover. Check it first.
		fr, err := ipcverify.NewFileReader(f, mem)
		if err != nil {
			return fmt.Errorf("not a readable Arrow IPC file: %w", err)
		}
		defer fr.Close()
		t.setSchema(fr.Schema())
		for i := range fr.NumRecords() {
			if err := ctx.Err(); err != nil {
				return err
			}
			// The reader releases the previous batch.
			b, err := fr.RecordBatch(i)
			if err != nil {
				return fmt.Errorf("Arrow IPC file, batch %d: %w", i, err)
			}
			if err := t.appendBatch(b); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// A stream's messages are checked one by one as they pass, and none
	// may claim more bytes than the file has.
	sr, err := ipcverify.NewStreamReader(f, size, mem)
	if err != nil {
		return fmt.Errorf("not a readable Arrow IPC file or stream: %w", err)
	}
	defer sr.Release()
	return t.readBatches(ctx, sr)
}

func (t *Table) setSchema(s *arrow.Schema) {
	names := make([]string, s.NumFields())
	types := make([]arrow.DataType, s.NumFields())
	for i, f := range s.Fields() {
		names[i], types[i] = f.Name, f.Type
	}
	t.setColumns(names, types)
}

func (t *Table) readBatches(ctx context.Context, r array.RecordReader) error {
	t.setSchema(r.Schema())
	for r.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := t.appendBatch(r.RecordBatch()); err != nil {
			return err
		}
	}
	return r.Err()
}

func isTextType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return true
	case arrow.DICTIONARY:
		return isTextType(t.(*arrow.DictionaryType).ValueType)
	}
	return false
}

// textGetter reads a text array's values.
func textGetter(a arrow.Array) func(int) string {
	switch a := a.(type) {
	case *array.String:
		return a.Value
	case *array.LargeString:
		return a.Value
	case *array.StringView:
		return a.Value
	case *array.Dictionary:
		get := textGetter(a.Dictionary())
		n := a.Dictionary().Len()
		return func(i int) string {
			k := a.GetValueIndex(i)
			if k < 0 || k >= n || a.Dictionary().IsNull(k) {
				return ""
			}
			return get(k)
		}
	}
	return func(int) string { return "" }
}

// numberGetter reads a numeric array's values as float64; nil for other
// types.
func numberGetter(t arrow.DataType) func(arrow.Array, int) float64 {
	switch t.ID() {
	case arrow.FLOAT64:
		return func(a arrow.Array, i int) float64 { return a.(*array.Float64).Value(i) }
	case arrow.FLOAT32:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Float32).Value(i)) }
	case arrow.FLOAT16:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Float16).Value(i).Float32()) }
	case arrow.INT8:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Int8).Value(i)) }
	case arrow.INT16:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Int16).Value(i)) }
	case arrow.INT32:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Int32).Value(i)) }
	case arrow.INT64:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Int64).Value(i)) }
	case arrow.UINT8:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Uint8).Value(i)) }
	case arrow.UINT16:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Uint16).Value(i)) }
	case arrow.UINT32:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Uint32).Value(i)) }
	case arrow.UINT64:
		return func(a arrow.Array, i int) float64 { return float64(a.(*array.Uint64).Value(i)) }
	case arrow.BOOL:
		return func(a arrow.Array, i int) float64 {
			if a.(*array.Boolean).Value(i) {
				return 1
			}
			return 0
		}
	}
	return nil
}
