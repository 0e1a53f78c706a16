package ipcverify

import (
	"encoding/binary"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ValidateBatch checks what arrow-go leaves unchecked when it decodes a
// batch: that each column's buffers hold its rows, and that offsets and
// dictionary indices point inside what they index. arrow-go builds
// arrays on whatever buffers a message describes, and the code that later
// reads a value past their end panics, far from the message at fault; a
// batch that passes reads safely. The cost is one pass over offsets and
// dictionary indices, none over values.
func ValidateBatch(rec arrow.RecordBatch) (err error) {
	defer func() {
		// The checks read only what they have checked is there; this is
		// for arrow-go's accessors, which may know better.
		if p := recover(); p != nil {
			err = fmt.Errorf("damaged batch: %v", p)
		}
	}()
	for i, col := range rec.Columns() {
		if int64(col.Len()) < rec.NumRows() {
			return fmt.Errorf("column %q: %d values for %d rows", rec.ColumnName(i), col.Len(), rec.NumRows())
		}
		if err := validateData(col.Data(), 0); err != nil {
			return fmt.Errorf("column %q: %w", rec.ColumnName(i), err)
		}
	}
	return nil
}

type layouter interface{ Layout() arrow.DataTypeLayout }

// ownLayout are the types whose buffers do not line up with their
// Layout's (unions have no validity bitmap, views variadic buffers):
// arrow-go's ValidateFull checks them, where it has one.
var ownLayout = map[arrow.Type]bool{
	arrow.DICTIONARY: true, arrow.EXTENSION: true, arrow.SPARSE_UNION: true, arrow.DENSE_UNION: true,
	arrow.RUN_END_ENCODED: true, arrow.BINARY_VIEW: true, arrow.STRING_VIEW: true,
	arrow.LIST_VIEW: true, arrow.LARGE_LIST_VIEW: true,
}

func bufLen(bufs []*memory.Buffer, i int) int64 {
	if i >= len(bufs) || bufs[i] == nil {
		return 0
	}
	return int64(bufs[i].Len())
}

func validateData(d arrow.ArrayData, depth int) error {
	if depth > maxFieldDepth {
		return fmt.Errorf("nested more than %d deep", maxFieldDepth)
	}
	off, n := int64(d.Offset()), int64(d.Len())
	if off < 0 || n < 0 {
		return fmt.Errorf("offset %d and length %d", off, n)
	}
	if nulls := int64(d.NullN()); nulls > n {
		return fmt.Errorf("%d nulls in %d values", nulls, n)
	}
	end := off + n
	bufs := d.Buffers()
	dt := d.DataType()
	if l, ok := dt.(layouter); ok && !ownLayout[dt.ID()] {
		specs := l.Layout().Buffers
		if len(bufs) < len(specs) {
			return fmt.Errorf("%d buffers, its type %s needs %d", len(bufs), dt, len(specs))
		}
		for i, sp := range specs {
			var need int64
			switch sp.Kind {
			case arrow.KindBitmap:
				if i == 0 && (bufs[0] == nil || d.NullN() == 0) {
					continue // no validity bitmap: no nulls
				}
				need = (end + 7) / 8
			case arrow.KindFixedWidth:
				need = end * int64(sp.ByteWidth)
			default:
				continue
			}
			if n == 0 {
				continue
			}
			if got := bufLen(bufs, i); got < need {
				return fmt.Errorf("buffer %d holds %d bytes, %d rows of %s need %d", i, got, end, dt, need)
			}
		}
	}
	children := d.Children()
	switch dt.ID() {
	case arrow.STRING, arrow.BINARY:
		return checkOffsets(bufs, off, n, 4, bufLen(bufs, 2), "data bytes")
	case arrow.LARGE_STRING, arrow.LARGE_BINARY:
		return checkOffsets(bufs, off, n, 8, bufLen(bufs, 2), "data bytes")
	case arrow.LIST, arrow.MAP:
		if len(children) != 1 {
			return fmt.Errorf("%d child arrays, want 1", len(children))
		}
		if err := checkOffsets(bufs, off, n, 4, int64(children[0].Len()), "child values"); err != nil {
			return err
		}
	case arrow.LARGE_LIST:
		if len(children) != 1 {
			return fmt.Errorf("%d child arrays, want 1", len(children))
		}
		if err := checkOffsets(bufs, off, n, 8, int64(children[0].Len()), "child values"); err != nil {
			return err
		}
	case arrow.FIXED_SIZE_LIST:
		size := int64(dt.(*arrow.FixedSizeListType).Len())
		if len(children) != 1 || int64(children[0].Len()) < end*size {
			return fmt.Errorf("child values do not cover %d lists of %d", end, size)
		}
	case arrow.STRUCT:
		if len(children) != dt.(*arrow.StructType).NumFields() {
			return fmt.Errorf("%d child arrays for %d fields", len(children), dt.(*arrow.StructType).NumFields())
		}
		for _, c := range children {
			if int64(c.Len()) < end {
				return fmt.Errorf("a field holds %d values for %d rows", c.Len(), end)
			}
		}
	case arrow.DICTIONARY:
		return checkDictionary(d)
	case arrow.NULL, arrow.BOOL, arrow.UINT8, arrow.INT8, arrow.UINT16, arrow.INT16, arrow.UINT32, arrow.INT32,
		arrow.UINT64, arrow.INT64, arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DATE32, arrow.DATE64,
		arrow.TIMESTAMP, arrow.TIME32, arrow.TIME64, arrow.DURATION, arrow.DECIMAL32, arrow.DECIMAL64,
		arrow.DECIMAL128, arrow.DECIMAL256, arrow.FIXED_SIZE_BINARY, arrow.INTERVAL_MONTHS,
		arrow.INTERVAL_DAY_TIME, arrow.INTERVAL_MONTH_DAY_NANO:
		return nil
	default:
		// Views, unions, run-end encoded and the like: arrow-go's own
		// full validation where it has one.
		arr := array.MakeFromData(d)
		defer arr.Release()
		if v, ok := arr.(interface{ ValidateFull() error }); ok {
			if err := v.ValidateFull(); err != nil {
				return err
			}
		}
	}
	for _, c := range children {
		if err := validateData(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// checkOffsets checks the offsets (width 4 or 8 bytes) of values
// [off, off+n): within the buffer, never decreasing, and inside limit.
func checkOffsets(bufs []*memory.Buffer, off, n int64, width int, limit int64, what string) error {
	if n == 0 {
		return nil
	}
	if len(bufs) < 2 || bufs[1] == nil || int64(bufs[1].Len()) < (off+n+1)*int64(width) {
		return fmt.Errorf("offsets buffer too short for %d values", off+n)
	}
	b := bufs[1].Bytes()
	at := func(i int64) int64 {
		if width == 4 {
			return int64(int32(binary.LittleEndian.Uint32(b[i*4:])))
		}
		return int64(binary.LittleEndian.Uint64(b[i*8:]))
	}
	prev := at(off)
	if prev < 0 {
		return fmt.Errorf("negative offset %d", prev)
	}
	for i := off + 1; i <= off+n; i++ {
		o := at(i)
		if o < prev {
			return fmt.Errorf("offset %d of value %d is below the one before it, %d", o, i-1, prev)
		}
		prev = o
	}
	if prev > limit {
		return fmt.Errorf("offsets reach %d, past the %d %s", prev, limit, what)
	}
	return nil
}

func checkDictionary(d arrow.ArrayData) error {
	dict := d.Dictionary()
	if dict == nil {
		return fmt.Errorf("dictionary-encoded without a dictionary")
	}
	if err := validateData(dict, 1); err != nil {
		return fmt.Errorf("dictionary: %w", err)
	}
	dt := d.DataType().(*arrow.DictionaryType)
	data := array.NewData(dt.IndexType, d.Len(), d.Buffers(), nil, d.NullN(), d.Offset())
	defer data.Release()
	if err := validateData(data, 1); err != nil {
		return fmt.Errorf("indices: %w", err)
	}
	idx := array.MakeFromData(data)
	defer idx.Release()
	size := int64(dict.Len())
	for i := 0; i < idx.Len(); i++ {
		if idx.IsNull(i) {
			continue
		}
		var v int64
		switch a := idx.(type) {
		case *array.Int8:
			v = int64(a.Value(i))
		case *array.Uint8:
			v = int64(a.Value(i))
		case *array.Int16:
			v = int64(a.Value(i))
		case *array.Uint16:
			v = int64(a.Value(i))
		case *array.Int32:
			v = int64(a.Value(i))
		case *array.Uint32:
			v = int64(a.Value(i))
		case *array.Int64:
			v = a.Value(i)
		case *array.Uint64:
			if a.Value(i) > uint64(size) {
				v = size
			} else {
				v = int64(a.Value(i))
			}
		default:
			return fmt.Errorf("dictionary indices of type %s", dt.IndexType)
		}
		if v < 0 || v >= size {
			return fmt.Errorf("index %d of value %d is outside the dictionary's %d values", v, i, size)
		}
	}
	return nil
}
