package stagerpc

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// ForEachChunk calls fn with rec cut into row ranges whose estimated IPC body
// stays under maxBytes. A single row larger than maxBytes goes alone. The
// chunks are zero-copy slices, released after fn returns: fn Retains a chunk
// it keeps.
func ForEachChunk(rec arrow.RecordBatch, maxBytes int64, fn func(arrow.RecordBatch) error) error {
	n := rec.NumRows()
	size := recordBytes(rec)
	if n <= 1 || size <= maxBytes {
		return fn(rec)
	}
	// First cut by the average row size, then halve any chunk whose rows
	// are bigger than average (long strings, long lists).
	rows := int64(float64(n) * float64(maxBytes) / float64(size))
	rows = max(1, rows)
	for off := int64(0); off < n; off += rows {
		if err := splitRange(rec, off, min(off+rows, n), maxBytes, fn); err != nil {
			return err
		}
	}
	return nil
}

func splitRange(rec arrow.RecordBatch, from, to, maxBytes int64, fn func(arrow.RecordBatch) error) error {
	s := rec.NewSlice(from, to)
	if to-from > 1 && recordBytes(s) > maxBytes {
		s.Release()
		mid := from + (to-from)/2
		if err := splitRange(rec, from, mid, maxBytes, fn); err != nil {
			return err
		}
		return splitRange(rec, mid, to, maxBytes, fn)
	}
	defer s.Release()
	return fn(s)
}

// recordBytes estimates the body size of rec's IPC message.
func recordBytes(rec arrow.RecordBatch) int64 {
	var total int64
	for _, c := range rec.Columns() {
		total += arrayBytes(c)
	}
	return total
}

// arrayBytes estimates the bytes the IPC writer emits for arr, which only
// writes the sliced part of its buffers.
func arrayBytes(arr arrow.Array) int64 {
	n := int64(arr.Len())
	if n == 0 {
		return 0
	}
	var total int64
	if arr.NullN() > 0 {
		total += (n + 7) / 8
	}
	switch a := arr.(type) {
	case array.BinaryLike:
		return total + (n+1)*offsetWidth(arr) + a.ValueOffset64(int(n)-1) + int64(a.ValueLen(int(n)-1)) - a.ValueOffset64(0)
	case array.ListLike:
		start, _ := a.ValueOffsets(0)
		_, end := a.ValueOffsets(int(n) - 1)
		total += (n + 1) * offsetWidth(arr)
		if end > start {
			child := array.NewSlice(a.ListValues(), start, end)
			total += arrayBytes(child)
			child.Release()
		}
		return total
	case *array.Struct:
		for i := 0; i < a.NumField(); i++ {
			total += arrayBytes(a.Field(i))
		}
		return total
	case *array.Dictionary:
		// The dictionary goes in its own message; only the indices count.
		return total + arrayBytes(a.Indices())
	}
	if fw, ok := arr.DataType().(arrow.FixedWidthDataType); ok {
		return total + (n*int64(fw.BitWidth())+7)/8
	}
	// Anything else: the share of its buffers that its rows cover.
	d := arr.Data()
	var bufs int64
	for _, b := range d.Buffers() {
		if b != nil {
			bufs += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		bufs += int64(c.Len()) * 8
	}
	covered := int64(d.Offset()) + n
	return total + bufs*n/max(covered, 1)
}

func offsetWidth(arr arrow.Array) int64 {
	switch arr.DataType().ID() {
	case arrow.LARGE_STRING, arrow.LARGE_BINARY, arrow.LARGE_LIST:
		return 8
	}
	return 4
}
