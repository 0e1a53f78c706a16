package replay

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
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	arrowcsv "github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
)

// Table formats.
const (
	FormatCSV     = "csv"
	FormatParquet = "parquet"
	FormatArrow   = "arrow"
)

var formats = []string{FormatCSV, FormatParquet, FormatArrow}

// FormatFromName returns the format a file name implies, or "".
func FormatFromName(name string) string {
	n := strings.ToLower(name)
	n = strings.TrimSuffix(n, ".gz")
	switch filepath.Ext(n) {
	case ".csv":
		return FormatCSV
	case ".parquet", ".pq":
		return FormatParquet
	case ".arrow", ".arrows", ".feather", ".ipc":
		return FormatArrow
	}
	return ""
}

// maxTableBytes bounds the file read: a table of measured results is
// small, and a bigger file is most likely the wrong one.
const maxTableBytes = 1 << 30

// column is one table column, held as text (string columns, and every CSV
// column) or as numbers (NaN for null).
type column struct {
	name string
	typ  arrow.DataType
	text []string
	nums []float64
	null []bool
	// bits is 32 for float32 and float16 columns: their values are compared
	// at that precision, so that 0.003 stored as a float32 still matches.
	bits int
	// dup is set when the file has two columns of this name.
	dup bool
}

func (c *column) isText() bool { return c.text != nil }

// table is a table of measured results, in memory.
type table struct {
	path   string
	format string
	rows   int
	names  []string
	cols   map[string]*column
	// csvLine maps a data row to its line in a CSV file (1-based), for
	// messages; nil for other formats.
	csvLine []int
}

// where names a data row for messages: a CSV line, or a 0-based row.
func (t *table) where(row int) string {
	if t.csvLine != nil && row < len(t.csvLine) {
		return fmt.Sprintf("line %d", t.csvLine[row])
	}
	return fmt.Sprintf("row %d", row)
}

// numbers returns a column's values as numbers (NaN for null). Text cells
// are parsed; an empty cell, NA, NaN and null are null.
func (t *table) numbers(c *column) ([]float64, error) {
	if c.nums != nil {
		return c.nums, nil
	}
	if !c.isText() {
		return nil, fmt.Errorf("column %q is %s, not a number", c.name, c.typ)
	}
	out := make([]float64, len(c.text))
	for i, s := range c.text {
		s = strings.TrimSpace(s)
		if c.null[i] || isNullText(s) {
			out[i] = math.NaN()
			continue
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("column %q, %s: %q is not a number", c.name, t.where(i), s)
		}
		out[i] = v
	}
	// Parsed once: a later use finds the numbers.
	c.nums = out
	return out, nil
}

func isNullText(s string) bool {
	switch strings.ToLower(s) {
	case "", "na", "nan", "null", "none":
		return true
	}
	return false
}

// texts returns a column's values as text (a null is "").
func (t *table) texts(c *column) ([]string, error) {
	if !c.isText() {
		return nil, fmt.Errorf("column %q is %s, not text", c.name, c.typ)
	}
	return c.text, nil
}

// loadTable reads a table file whole.
func loadTable(ctx context.Context, path, format string, mem memory.Allocator) (t *table, err error) {
	defer func() {
		// arrow-go's readers trust lengths and offsets read from the file: a
		// damaged file must not bring the plugin down.
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("malformed %s file: %v", format, r)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxTableBytes {
		return nil, fmt.Errorf("the file has %d bytes; a replay table is read whole into memory, and more than %d is refused", fi.Size(), maxTableBytes)
	}
	// Arrow and Parquet trust sizes written in the file: allocations beyond
	// a few times the file's size mean a damaged one.
	bounded := ipcverify.NewCappedAllocator(mem, 16*fi.Size()+64<<20)
	t = &table{path: path, format: format, cols: map[string]*column{}}
	switch format {
	case FormatCSV:
		err = t.readCSV(ctx, f, bounded)
	case FormatParquet:
		err = t.readParquet(ctx, f, bounded)
	case FormatArrow:
		err = t.readArrow(ctx, f, bounded)
	default:
		err = fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

func (t *table) setColumns(names []string, types []arrow.DataType) {
	t.names = names
	for i, n := range names {
		if c, ok := t.cols[n]; ok {
			c.dup = true
			continue
		}
		c := &column{name: n, typ: types[i], null: []bool{}}
		switch {
		case isTextType(types[i]):
			c.text = []string{}
		case numberGetter(types[i]) != nil:
			c.nums = []float64{}
			if types[i].ID() == arrow.FLOAT32 || types[i].ID() == arrow.FLOAT16 {
				c.bits = 32
			}
		}
		t.cols[n] = c
	}
}

// appendBatch adds a batch's rows to the columns.
func (t *table) appendBatch(b arrow.RecordBatch) error {
	if len(t.names) != int(b.NumCols()) {
		return fmt.Errorf("a batch has %d columns, the schema %d", b.NumCols(), len(t.names))
	}
	n := int(b.NumRows())
	seen := map[string]bool{}
	for i, name := range t.names {
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
					s = get(r)
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
	t.rows += n
	return nil
}

func (t *table) readCSV(ctx context.Context, f *os.File, mem memory.Allocator) error {
	var r io.Reader = io.LimitReader(f, maxTableBytes)
	head := make([]byte, 2)
	if n, _ := io.ReadFull(f, head); n == 2 && head[0] == 0x1f && head[1] == 0x8b {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		gz, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		defer gz.Close()
		r = io.LimitReader(gz, maxTableBytes+1)
	} else if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(data) > maxTableBytes {
		return fmt.Errorf("the file holds more than %d bytes of text; a replay table is read whole into memory", maxTableBytes)
	}
	// The header names the columns; every column is read as text and
	// parsed when used, since arrow's csv reader would infer a type from
	// the first row alone ("1" makes an integer column of 0.5s).
	hr := csv.NewReader(bytes.NewReader(data))
	hr.Comment = '#'
	hr.FieldsPerRecord = -1
	header, err := hr.Read()
	if errors.Is(err, io.EOF) {
		return errors.New("the file is empty: a table needs a header line naming its columns")
	}
	if err != nil {
		return err
	}
	// Lines of the data rows, for messages.
	for {
		rec, err := hr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		line, _ := hr.FieldPos(0)
		if len(rec) != len(header) {
			return fmt.Errorf("line %d has %d fields, the header %d", line, len(rec), len(header))
		}
		t.csvLine = append(t.csvLine, line)
	}
	fields := make([]arrow.Field, len(header))
	types := make([]arrow.DataType, len(header))
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		fields[i] = arrow.Field{Name: h, Type: arrow.BinaryTypes.String, Nullable: true}
		types[i] = arrow.BinaryTypes.String
	}
	t.setColumns(header, types)
	cr := arrowcsv.NewReader(bytes.NewReader(data), arrow.NewSchema(fields, nil),
		arrowcsv.WithHeader(true), arrowcsv.WithComment('#'), arrowcsv.WithChunk(4096), arrowcsv.WithAllocator(mem))
	defer cr.Release()
	for cr.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := t.appendBatch(cr.RecordBatch()); err != nil {
			return err
		}
	}
	if err := cr.Err(); err != nil {
		return err
	}
	return nil
}

func (t *table) readParquet(ctx context.Context, f *os.File, mem memory.Allocator) error {
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

func (t *table) readArrow(ctx context.Context, f *os.File, mem memory.Allocator) error {
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

func (t *table) setSchema(s *arrow.Schema) {
	names := make([]string, s.NumFields())
	types := make([]arrow.DataType, s.NumFields())
	for i, f := range s.Fields() {
		names[i], types[i] = f.Name, f.Type
	}
	t.setColumns(names, types)
}

func (t *table) readBatches(ctx context.Context, r array.RecordReader) error {
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
