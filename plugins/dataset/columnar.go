package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
)

// batchSource is what Parquet, Arrow IPC file and stream readers have in
// common: batches in order, each valid until the next call to Next.
type batchSource interface {
	Schema() *arrow.Schema
	Next() bool
	RecordBatch() arrow.RecordBatch
	Err() error
}

func allocator(o LoadOptions) memory.Allocator {
	if o.Allocator != nil {
		return o.Allocator
	}
	return memory.DefaultAllocator
}

// Memory bounds for reading Parquet and Arrow. The readers size buffers by
// lengths written in the file, so a damaged length asks for terabytes,
// which Go cannot refuse gracefully (it dies of "out of memory"). Reading
// streams one batch at a time, so what is held at once is about a batch;
// these bounds are far above any sane batch.
const (
	minHeldBytes     = 256 << 20
	heldPerFileByte  = 64 // room for compressed IPC buffers and pages
	unknownHeldBytes = 1 << 30
	// unknownBodyBytes is the largest IPC message read from a stream of
	// unknown length (gzipped): arrow-go's default.
	unknownBodyBytes = 256 << 20
)

// heldLimit returns how many bytes a reader may hold at once for an input
// of size bytes (negative: unknown).
func heldLimit(size int64) int64 {
	if size < 0 {
		return unknownHeldBytes
	}
	return max(minHeldBytes, heldPerFileByte*size)
}

// inputSize returns the length of r's data, or -1 when it cannot be known
// without reading it.
func inputSize(r io.Reader) int64 {
	switch r := r.(type) {
	case interface{ Size() int64 }: // *bytes.Reader, *strings.Reader
		return r.Size()
	case *os.File:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return -1
}

// recoverMalformed turns a panic inside arrow-go's readers into an error:
// they trust lengths and offsets read from the file, and a damaged file
// must not bring the plugin down.
func recoverMalformed(name string, format Format, raw **rawTable, err *error) {
	if r := recover(); r != nil {
		*raw = nil
		if e, ok := r.(*ipcverify.LimitError); ok {
			*err = &DataError{File: name, Err: e}
			return
		}
		*err = &DataError{File: name, Err: fmt.Errorf("malformed %s file: %v", format, r)}
	}
}

// sourceBatchRows is the batch size asked of the Parquet reader: a whole
// batch is decoded even when max_rows needs a few rows of it.
func sourceBatchRows(o LoadOptions) int64 {
	if o.MaxRows > 0 && o.Sample != SampleRandom {
		// One row more than kept tells whether the file was cut.
		return int64(min(o.MaxRows+1, MaxBatchRows))
	}
	return MaxBatchRows
}

func readParquet(ctx context.Context, name string, r readerAtSeeker, o LoadOptions, mode parseMode) (raw *rawTable, err error) {
	defer recoverMalformed(name, FormatParquet, &raw, &err)
	limit := heldLimit(inputSize(r))
	// Pages are read through a pool whose buffers are freed by finalizers,
	// so they get their own Go allocator, not o.Allocator: a checked
	// allocator would see them as leaks.
	props := parquet.NewReaderProperties(ipcverify.NewCappedAllocator(memory.NewGoAllocator(), limit))
	pf, err := file.NewParquetReader(r, file.WithReadProps(props))
	if err != nil {
		return nil, &DataError{File: name, Err: fmt.Errorf("not a readable Parquet file: %w", err)}
	}
	// Not pf.Close: it would close r, which the caller owns.
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: sourceBatchRows(o)}, ipcverify.NewCappedAllocator(allocator(o), limit))
	if err != nil {
		return nil, &DataError{File: name, Err: fmt.Errorf("not a readable Parquet file: %w", err)}
	}
	schema, err := fr.Schema()
	if err != nil {
		return nil, &DataError{File: name, Err: fmt.Errorf("Parquet schema has no Arrow equivalent: %w", err)}
	}
	p, err := planColumns(name, schema, o, mode)
	if err != nil {
		return nil, err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return nil, &DataError{File: name, Err: fmt.Errorf("reading Parquet columns: %w", err)}
	}
	defer rr.Release()
	return readBatches(ctx, name, FormatParquet, rr, p, o, pf.NumRows())
}

func readArrowFile(ctx context.Context, name string, r readerAtSeeker, o LoadOptions, mode parseMode) (raw *rawTable, err error) {
	defer recoverMalformed(name, FormatArrow, &raw, &err)
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, &DataError{File: name, Err: err}
	}
	fr, err := ipcverify.NewFileReader(r, ipcverify.NewCappedAllocator(allocator(o), heldLimit(size)))
	if err != nil {
		return nil, &DataError{File: name, Err: fmt.Errorf("not a readable Arrow IPC file: %w", err)}
	}
	defer fr.Close()
	p, err := planColumns(name, fr.Schema(), o, mode)
	if err != nil {
		return nil, err
	}
	return readBatches(ctx, name, FormatArrow, &ipcFileSource{r: fr}, p, o, 0)
}

// ipcFileSource reads an IPC file's batches in order.
type ipcFileSource struct {
	r    *ipc.FileReader
	next int
	cur  arrow.RecordBatch
	err  error
}

func (s *ipcFileSource) Schema() *arrow.Schema { return s.r.Schema() }
func (s *ipcFileSource) Next() bool {
	if s.err != nil || s.next >= s.r.NumRecords() {
		return false
	}
	// The reader releases the previous batch.
	s.cur, s.err = s.r.RecordBatch(s.next)
	s.next++
	return s.err == nil
}
func (s *ipcFileSource) RecordBatch() arrow.RecordBatch { return s.cur }
func (s *ipcFileSource) Err() error                     { return s.err }

// readArrowStream reads an IPC stream from r, whose data holds size bytes
// (negative: unknown).
func readArrowStream(ctx context.Context, name string, r io.Reader, size int64, o LoadOptions, mode parseMode) (raw *rawTable, err error) {
	defer recoverMalformed(name, FormatArrow, &raw, &err)
	mem := ipcverify.NewCappedAllocator(allocator(o), heldLimit(size))
	body := int64(unknownBodyBytes)
	if size >= 0 {
		body = size
	}
	sr, err := ipcverify.NewStreamReader(r, body, mem)
	if err != nil {
		return nil, &DataError{File: name, Err: fmt.Errorf("not a readable Arrow IPC file or stream: %w", err)}
	}
	defer sr.Release()
	p, err := planColumns(name, sr.Schema(), o, mode)
	if err != nil {
		return nil, err
	}
	return readBatches(ctx, name, FormatArrow, sr, p, o, 0)
}

// columnPlan says which schema columns are features and which is the
// target.
type columnPlan struct {
	names    []string
	features []int // schema positions
	target   int   // schema position, or -1
}

func planColumns(name string, schema *arrow.Schema, o LoadOptions, mode parseMode) (columnPlan, error) {
	fields := schema.Fields()
	width := len(fields)
	p := columnPlan{names: make([]string, width), target: -1}
	if width == 0 {
		return p, &DataError{File: name, Err: errors.New("has no columns")}
	}
	seen := map[string]int{}
	for j, f := range fields {
		switch {
		case f.Name == "":
			return p, &DataError{File: name, Field: j + 1, Err: errors.New("this column has no name")}
		case f.Name == SplitColumn && mode != targetOnly:
			return p, &DataError{File: name, Column: f.Name, Field: j + 1, Err: errors.New(`the name "split" is reserved for the train/validation/test column the dataset stage adds; rename this column`)}
		}
		if k, dup := seen[f.Name]; dup {
			return p, &DataError{File: name, Column: f.Name, Field: j + 1, Err: fmt.Errorf("two columns are named %q (fields %d and %d)", f.Name, k+1, j+1)}
		}
		seen[f.Name] = j
		p.names[j] = f.Name
	}
	switch mode {
	case withTarget:
		if width < 2 {
			return p, &DataError{File: name, Err: fmt.Errorf("has 1 column (%q); a dataset needs at least one feature and the target", p.names[0])}
		}
		t, err := targetColumn(name, p.names, width, o)
		if err != nil {
			return p, err
		}
		p.target = t
	case targetOnly:
		if width != 1 {
			return p, &DataError{File: name, Err: fmt.Errorf("a target file holds one column; found %d: %s", width, listNames(p.names))}
		}
		p.target = 0
	}
	var bad []int
	for j, f := range fields {
		if j == p.target {
			continue
		}
		if !isNumericType(f.Type) {
			bad = append(bad, j)
			continue
		}
		p.features = append(p.features, j)
	}
	if len(bad) > 0 {
		j := bad[0]
		msg := fmt.Sprintf("has type %s; features must be numeric (integer, floating point or bool)", fields[j].Type)
		if len(bad) > 1 {
			others := make([]string, 0, len(bad)-1)
			for _, k := range bad[1:] {
				others = append(others, strconv.Quote(p.names[k]))
			}
			msg += "; so are not " + strings.Join(others, ", ")
		}
		if isLabelType(fields[j].Type) {
			msg += ". Make it the target (target = \"" + p.names[j] + "\") or drop it from the file"
		} else {
			msg += ". Drop it from the file"
		}
		return p, &DataError{File: name, Column: p.names[j], Field: j + 1, Err: errors.New(msg)}
	}
	if p.target >= 0 && !isLabelType(fields[p.target].Type) {
		return p, &DataError{File: name, Column: p.names[p.target], Field: p.target + 1, Err: fmt.Errorf("target has type %s; a target must be an integer, floating point, bool or string column", fields[p.target].Type)}
	}
	return p, nil
}

func isNumericType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
		arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.BOOL:
		return true
	}
	return false
}

func isLabelType(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return true
	case arrow.DICTIONARY:
		// pandas' categorical columns arrive dictionary-encoded.
		v := t.(*arrow.DictionaryType).ValueType
		return v.ID() != arrow.DICTIONARY && isLabelType(v)
	}
	return isNumericType(t)
}

// floatGetter reads a numeric array's values as float64; nil for other
// types.
func floatGetter(a arrow.Array) func(int) float64 {
	switch a := a.(type) {
	case *array.Float64:
		return a.Value
	case *array.Float32:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Float16:
		return func(i int) float64 { return float64(a.Value(i).Float32()) }
	case *array.Int8:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Int16:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Int32:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Int64:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Uint8:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Uint16:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Uint32:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Uint64:
		return func(i int) float64 { return float64(a.Value(i)) }
	case *array.Boolean:
		return func(i int) float64 {
			if a.Value(i) {
				return 1
			}
			return 0
		}
	}
	return nil
}

// labelGetter spells a target array's values as a text file would, so
// that they become class indices or values exactly as a CSV target does;
// ok is false for a NaN. Nil for other types.
func labelGetter(a arrow.Array) func(int) (s string, ok bool) {
	switch a := a.(type) {
	case *array.String:
		return func(i int) (string, bool) { return a.Value(i), true }
	case *array.LargeString:
		return func(i int) (string, bool) { return a.Value(i), true }
	case *array.StringView:
		return func(i int) (string, bool) { return a.Value(i), true }
	case *array.Boolean:
		return func(i int) (string, bool) { return strconv.FormatBool(a.Value(i)), true }
	case *array.Float64:
		return func(i int) (string, bool) { return formatFloat(a.Value(i), 64) }
	case *array.Float32:
		return func(i int) (string, bool) { return formatFloat(float64(a.Value(i)), 32) }
	case *array.Float16:
		return func(i int) (string, bool) { return formatFloat(float64(a.Value(i).Float32()), 32) }
	case *array.Int8:
		return func(i int) (string, bool) { return strconv.FormatInt(int64(a.Value(i)), 10), true }
	case *array.Int16:
		return func(i int) (string, bool) { return strconv.FormatInt(int64(a.Value(i)), 10), true }
	case *array.Int32:
		return func(i int) (string, bool) { return strconv.FormatInt(int64(a.Value(i)), 10), true }
	case *array.Int64:
		return func(i int) (string, bool) { return strconv.FormatInt(a.Value(i), 10), true }
	case *array.Uint8:
		return func(i int) (string, bool) { return strconv.FormatUint(uint64(a.Value(i)), 10), true }
	case *array.Uint16:
		return func(i int) (string, bool) { return strconv.FormatUint(uint64(a.Value(i)), 10), true }
	case *array.Uint32:
		return func(i int) (string, bool) { return strconv.FormatUint(uint64(a.Value(i)), 10), true }
	case *array.Uint64:
		return func(i int) (string, bool) { return strconv.FormatUint(a.Value(i), 10), true }
	case *array.Dictionary:
		get := labelGetter(a.Dictionary())
		if get == nil {
			return nil
		}
		n := a.Dictionary().Len()
		return func(i int) (string, bool) {
			k := a.GetValueIndex(i)
			if k < 0 || k >= n {
				// A damaged file; the empty label is reported as such.
				return "", true
			}
			return get(k)
		}
	}
	return nil
}

// formatFloat spells v in the fewest digits that read back as the same
// value at its width, as a CSV writer would.
func formatFloat(v float64, bits int) (string, bool) {
	if math.IsNaN(v) {
		return "", false
	}
	return strconv.FormatFloat(v, 'g', -1, bits), true
}

// checkBatch checks that the columns read hold as many values as the batch
// claims rows, before anything is sized by that claim.
func checkBatch(rec arrow.RecordBatch, p columnPlan) error {
	n := rec.NumRows()
	if n < 0 || int(rec.NumCols()) != len(p.names) {
		return fmt.Errorf("%d rows of %d columns", n, rec.NumCols())
	}
	check := func(j int) error {
		a := rec.Column(j)
		if int64(a.Len()) != n {
			return fmt.Errorf("column %q has %d values for %d rows", p.names[j], a.Len(), n)
		}
		return checkBuffers(a.Data())
	}
	for _, j := range p.features {
		if err := check(j); err != nil {
			return err
		}
	}
	if p.target >= 0 {
		return check(p.target)
	}
	return nil
}

// checkBuffers checks that an array's buffers are long enough for its
// length, for the types a dataset reads.
func checkBuffers(d arrow.ArrayData) error {
	end := int64(d.Offset()) + int64(d.Len())
	bufs := d.Buffers()
	need := func(i int, bytes int64) error {
		if i >= len(bufs) || bufs[i] == nil || int64(bufs[i].Len()) < bytes {
			return fmt.Errorf("a %s array of %d values has a short buffer %d", d.DataType(), d.Len(), i)
		}
		return nil
	}
	if d.Offset() < 0 || d.Len() < 0 {
		return fmt.Errorf("a %s array has offset %d and length %d", d.DataType(), d.Offset(), d.Len())
	}
	if d.NullN() > 0 {
		if err := need(0, (end+7)/8); err != nil {
			return err
		}
	}
	dt := d.DataType()
	if dict, ok := dt.(*arrow.DictionaryType); ok {
		dt = dict.IndexType
		if dd := d.Dictionary(); dd == nil {
			return errors.New("a dictionary array has no dictionary")
		} else if err := checkBuffers(dd); err != nil {
			return err
		}
	}
	switch t := dt.(type) {
	case arrow.FixedWidthDataType:
		return need(1, (end*int64(t.BitWidth())+7)/8)
	case *arrow.StringType:
		return need(1, (end+1)*4)
	case *arrow.LargeStringType:
		return need(1, (end+1)*8)
	case *arrow.StringViewType:
		return need(1, end*16)
	}
	return fmt.Errorf("unexpected type %s", dt)
}

// store puts v in slot, appending when slot is the next free one. A
// positive hint is how many values the column will likely hold, read from
// the file's header: capacity doubles up to it, so that an honest hint
// costs no more than twice the final column in allocations (append's
// gentler growth for large slices costs about five times) and a false one
// at most twice the values actually read.
func store[T any](col []T, slot int, v T, hint int) []T {
	if slot < len(col) {
		col[slot] = v
		return col
	}
	if hint > 0 && len(col) == cap(col) {
		c := max(2*cap(col), 1024)
		if hint > len(col) {
			c = min(c, hint)
		}
		grown := make([]T, len(col), max(c, len(col)+1))
		copy(grown, col)
		col = grown
	}
	return append(col, v)
}

// capacityHint returns the rows a load will likely keep, given the rows a
// file's header announces (0: unknown).
func capacityHint(announced int64, o LoadOptions) int {
	switch {
	case o.MaxRows > 0 && o.Sample == SampleRandom:
		return o.MaxRows
	case o.MaxRows > 0 && announced > 0:
		return int(min(announced, int64(o.MaxRows)))
	case announced > 0 && announced <= math.MaxInt32:
		return int(announced)
	}
	return 0
}

// readBatches converts every batch of src into the table's columns,
// checking every value read, kept or not.
func readBatches(ctx context.Context, name string, format Format, src batchSource, p columnPlan, o LoadOptions, announced int64) (*rawTable, error) {
	hint := capacityHint(announced, o)
	raw := &rawTable{file: name, targetFile: name, format: format, byRow: true, targetByRow: true, targetField: p.target + 1}
	for _, j := range p.features {
		raw.featureNames = append(raw.featureNames, p.names[j])
	}
	if p.target >= 0 {
		raw.targetName = p.names[p.target]
	}
	raw.features = make([][]float64, len(p.features))
	smp := newSampler(o)
	var slots []int
	read := 0 // rows read before the current batch
	for src.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := src.RecordBatch()
		if err := checkBatch(rec, p); err != nil {
			return nil, &DataError{File: name, Row: read + 1, Err: fmt.Errorf("damaged batch: %w", err)}
		}
		slots = slots[:0]
		stop := false
		for range rec.NumRows() {
			slot, st := smp.offer()
			if st {
				stop = true
				break
			}
			slots = append(slots, slot)
		}
		for k, j := range p.features {
			col := rec.Column(j)
			get := floatGetter(col)
			if get == nil {
				// planColumns checked the schema; a batch disagreeing with
				// it is a damaged file.
				return nil, &DataError{File: name, Row: read + 1, Column: p.names[j], Field: j + 1, Err: fmt.Errorf("batch has type %s, not the schema's", col.DataType())}
			}
			out := raw.features[k]
			for i, slot := range slots {
				bad := func(err error) error {
					return &DataError{File: name, Row: read + i + 1, Column: p.names[j], Field: j + 1, Err: err}
				}
				if col.IsNull(i) {
					return nil, bad(errors.New("null is a missing value: fill or drop missing values before loading"))
				}
				v := get(i)
				switch {
				case math.IsNaN(v):
					return nil, bad(errors.New("NaN is a missing value: fill or drop missing values before loading"))
				case math.IsInf(v, 0):
					return nil, bad(fmt.Errorf("%g is not a finite number", v))
				}
				if slot >= 0 {
					out = store(out, slot, v, hint)
				}
			}
			raw.features[k] = out
		}
		if p.target >= 0 {
			j := p.target
			col := rec.Column(j)
			get := labelGetter(col)
			if get == nil {
				return nil, &DataError{File: name, Row: read + 1, Column: p.names[j], Field: j + 1, Err: fmt.Errorf("batch has type %s, not the schema's", col.DataType())}
			}
			for i, slot := range slots {
				bad := func(what string) error {
					return &DataError{File: name, Row: read + i + 1, Column: p.names[j], Field: j + 1, Err: fmt.Errorf("%s target: drop or label this row", what)}
				}
				if col.IsNull(i) {
					return nil, bad("null")
				}
				s, ok := get(i)
				switch {
				case !ok:
					return nil, bad("NaN")
				case s == "":
					return nil, bad("empty")
				}
				if slot >= 0 {
					raw.target = store(raw.target, slot, s, hint)
					raw.targetLines = store(raw.targetLines, slot, read+i+1, hint)
				}
			}
		}
		read += len(slots)
		if stop {
			break
		}
	}
	if err := src.Err(); err != nil {
		return nil, &DataError{File: name, Err: fmt.Errorf("reading %s data after row %d: %w", format, read, err)}
	}
	raw.rows = smp.kept()
	if raw.rows == 0 {
		return nil, &DataError{File: name, Err: errors.New("has no data rows")}
	}
	raw.done(smp, o.Seed)
	return raw, nil
}
