package dataset

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// An IDX file (LeCun's MNIST format) is a 4-byte magic number, 0x00 0x00,
// a type byte and a count of dimensions, then each dimension as a
// big-endian uint32, then the values, big-endian, row-major. The first
// dimension counts rows: 0x00000803 is a stack of 2-D ubyte images,
// 0x00000801 a vector of ubyte labels.

type idxType struct {
	name string
	size int
}

var idxTypes = [256]idxType{
	0x08: {"unsigned byte", 1},
	0x09: {"signed byte", 1},
	0x0B: {"short", 2},
	0x0C: {"int", 4},
	0x0D: {"float", 4},
	0x0E: {"double", 8},
}

const idxUbyte = 0x08

// maxIDXFeatures bounds the values of one row, so that a damaged header
// cannot ask for gigabytes before the data proves it.
const maxIDXFeatures = 1 << 20

type idxHeader struct {
	typ      byte
	dims     []uint32
	rows     int
	features int
	size     int64 // header bytes
}

func readIDXHeader(name string, r io.Reader) (idxHeader, error) {
	var h idxHeader
	var magic [4]byte
	n, err := io.ReadFull(r, magic[:])
	if err != nil {
		return h, idxReadError(name, 0, int64(n), err, fmt.Sprintf("not an IDX file: it ends after %d bytes, inside the 4-byte magic number", n))
	}
	m := binary.BigEndian.Uint32(magic[:])
	if magic[0] != 0 || magic[1] != 0 || idxTypes[magic[2]].size == 0 || magic[3] == 0 {
		return h, &DataError{File: name, HasOffset: true, Err: fmt.Errorf("not an IDX file: magic number 0x%08x, want 0x0000TTDD with type TT 08 (ubyte), 09, 0B, 0C, 0D or 0E and DD dimensions, such as 0x00000803 for images or 0x00000801 for labels", m)}
	}
	h.typ = magic[2]
	dims := make([]byte, 4*int(magic[3]))
	if n, err := io.ReadFull(r, dims); err != nil {
		return h, idxReadError(name, 0, 4+int64(n), err, fmt.Sprintf("truncated header: the magic number 0x%08x announces %d dimensions of 4 bytes each", m, magic[3]))
	}
	h.dims = make([]uint32, magic[3])
	for k := range h.dims {
		h.dims[k] = binary.BigEndian.Uint32(dims[4*k:])
	}
	h.size = 4 + 4*int64(len(h.dims))
	h.rows = int(h.dims[0])
	h.features = 1
	for k, d := range h.dims[1:] {
		h.features *= int(d)
		if h.features > maxIDXFeatures {
			return h, &DataError{File: name, HasOffset: true, Offset: 4 + 4*int64(k+1), Err: fmt.Errorf("dimensions %v give rows of more than %d values", h.dims[1:], maxIDXFeatures)}
		}
	}
	if h.features == 0 {
		return h, &DataError{File: name, HasOffset: true, Offset: 4, Err: fmt.Errorf("dimensions %v give rows of no values", h.dims)}
	}
	return h, nil
}

// idxReadError reports a failed read at offset: the end of the data as
// truncation, else the reader's own error (a damaged gzip stream).
func idxReadError(name string, row int, offset int64, err error, truncated string) error {
	e := &DataError{File: name, Row: row, HasOffset: true, Offset: offset, Err: err}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		e.Err = errors.New(truncated)
	}
	return e
}

func idxNeedsLabels(name string) error {
	return sdk.AttrError("target_path", "IDX labels file needed",
		fmt.Sprintf("%s is an IDX file, which holds rows (images) but no target. Set target_path to its labels file (for train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz).", name))
}

// readIDX reads an IDX file as features (each row flattened, named pixel_0
// onwards for images, x0 onwards for a 2-D matrix) or as a target file (a
// vector, or rows of one value). Unsigned bytes become [0,1] features
// unless o.RawPixels; target values keep their spelling, so labels 0..9
// are class indices 0..9.
func readIDX(ctx context.Context, name string, br *bufio.Reader, o LoadOptions, mode parseMode) (*rawTable, error) {
	h, err := readIDXHeader(name, br)
	if err != nil {
		return nil, err
	}
	typ := idxTypes[h.typ]
	raw := &rawTable{file: name, targetFile: name, format: FormatIDX, byRow: true, targetByRow: true}
	if mode == targetOnly {
		if h.features != 1 {
			return nil, &DataError{File: name, Err: fmt.Errorf("a target file holds one value per row, but this IDX file's rows have %d values (dimensions %v); did you swap path and target_path?", h.features, h.dims)}
		}
		raw.targetName, raw.targetField = "label", 1
	} else {
		raw.featureNames = make([]string, h.features)
		prefix := "pixel_"
		if len(h.dims) <= 2 {
			prefix = "x"
		}
		for j := range raw.featureNames {
			raw.featureNames[j] = prefix + strconv.Itoa(j)
		}
		raw.features = make([][]float64, h.features)
	}
	scale := 1.0
	if h.typ == idxUbyte && !o.RawPixels && mode != targetOnly {
		scale = 255
	}
	if h.rows == 0 {
		return nil, &DataError{File: name, HasOffset: true, Offset: h.size, Err: errors.New("has no data rows: the header's first dimension is 0")}
	}
	decode := idxDecoder(h.typ)
	rowBytes := h.features * typ.size
	buf := make([]byte, rowBytes)
	row := make([]float64, h.features)
	smp := newSampler(o)
	hint := capacityHint(int64(h.rows), o)
	for i := range h.rows {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		slot, stop := smp.offer()
		if stop {
			break
		}
		off := h.size + int64(i)*int64(rowBytes)
		if n, err := io.ReadFull(br, buf); err != nil {
			return nil, idxReadError(name, i+1, off+int64(n), err, fmt.Sprintf("truncated: the header announces %d rows of %d %s values (%d bytes each) but the data ends inside row %d", h.rows, h.features, typ.name, rowBytes, i+1))
		}
		if h.typ == idxUbyte {
			// The common case, and no value can be NaN.
			for j, b := range buf {
				row[j] = float64(b) / scale
			}
		} else if err := decodeIDXRow(name, raw, row, buf, decode, typ.size, i, off); err != nil {
			return nil, err
		}
		if slot < 0 {
			continue
		}
		if mode == targetOnly {
			raw.target = store(raw.target, slot, strconv.FormatFloat(row[0], 'g', -1, 64), hint)
			raw.targetLines = store(raw.targetLines, slot, i+1, hint)
			continue
		}
		for j, v := range row {
			raw.features[j] = store(raw.features[j], slot, v, hint)
		}
	}
	if !smp.stopped {
		end := h.size + int64(h.rows)*int64(rowBytes)
		switch _, err := br.ReadByte(); {
		case err == nil:
			return nil, &DataError{File: name, HasOffset: true, Offset: end, Err: fmt.Errorf("has data after the %d rows the header announces (wrong dimensions, or two files joined?)", h.rows)}
		case err != io.EOF:
			// A gzip checksum is checked at the end of the stream.
			return nil, &DataError{File: name, HasOffset: true, Offset: end, Err: err}
		}
	}
	raw.rows = smp.kept()
	raw.done(smp, o.Seed)
	return raw, nil
}

func decodeIDXRow(name string, raw *rawTable, row []float64, buf []byte, decode func([]byte) float64, size, i int, off int64) error {
	for j := range row {
		v := decode(buf[j*size:])
		if math.IsNaN(v) || math.IsInf(v, 0) {
			e := &DataError{File: name, Row: i + 1, HasOffset: true, Offset: off + int64(j*size), Field: j + 1, Err: fmt.Errorf("%g is not a finite number: fill or drop missing values before loading", v)}
			if raw.featureNames != nil {
				e.Column = raw.featureNames[j]
			} else {
				e.Column = raw.targetName
			}
			return e
		}
		row[j] = v
	}
	return nil
}

// idxDecoder reads one big-endian value of an IDX type.
func idxDecoder(typ byte) func([]byte) float64 {
	switch typ {
	case 0x09:
		return func(b []byte) float64 { return float64(int8(b[0])) }
	case 0x0B:
		return func(b []byte) float64 { return float64(int16(binary.BigEndian.Uint16(b))) }
	case 0x0C:
		return func(b []byte) float64 { return float64(int32(binary.BigEndian.Uint32(b))) }
	case 0x0D:
		return func(b []byte) float64 { return float64(math.Float32frombits(binary.BigEndian.Uint32(b))) }
	case 0x0E:
		return func(b []byte) float64 { return math.Float64frombits(binary.BigEndian.Uint64(b)) }
	}
	return func(b []byte) float64 { return float64(b[0]) }
}
