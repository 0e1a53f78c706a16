package nn

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Compact is an inference-only model: each layer's weights are stored one
// row per output unit, as float32 or int8, densely or sparse (the weights
// pruning kept, in compressed rows in memory), whichever takes fewer bytes.
// Its predictors run each layer on the kernel that is fastest for it (see
// compact_predict.go), so measured latency reflects the storage.
//
// # Serialized form (little-endian)
//
//	header   "SSNN", version u8 (1 or 2), task u8, layers u16,
//	         target mean f32, target deviation f32, layer sizes (layers+1)×u32
//	layer    kind u8 (bit 0: int8, bit 1: sparse, bit 2: sparse as a mask)
//	         int8:   one scale f32 per output unit
//	         sparse: nnz u32, row starts (out+1)×u32, nnz column indices
//	                 (u16 when the layer has at most 65536 inputs, else u32)
//	         mask:   ceil(out·in/8) bytes, bit o·in+i (least significant
//	                 first) set when weight (o, i) is kept; nnz is the count
//	         weights out·in (dense) or nnz (sparse) values, f32 or i8
//	         biases  out×f32
//
// Version 2 added the mask; a model is written as version 1 when no layer
// uses it, so that readers of version 1 read it, and both are read.
//
// Bytes is the exact length of that form. Each layer takes the smallest of
// the three: compressed rows pay 2 bytes of index per kept weight, the mask
// an eighth of a byte per weight, so the mask wins from a density of about
// 3% (int8) or 6% (float32) up to where dense storage wins, at about 7/8
// (int8) or 31/32 (float32).
type Compact struct {
	spec        Spec
	layers      []clayer
	yMean, yStd float32
}

var _ Model = (*Compact)(nil)

type clayer struct {
	in, out      int
	int8, sparse bool
	// mask says a sparse layer is serialized as a mask rather than as
	// compressed rows; in memory both are compressed rows.
	mask bool
	// wf (float32) or wq (int8) holds out×in weights (dense) or the nnz
	// kept ones (sparse), row after row.
	wf []float32
	wq []int8
	// scale is the int8 scale of each output unit: weight = scale·q.
	scale []float32
	// rowPtr[o]..rowPtr[o+1] index the kept weights of output unit o, and
	// cols their inputs.
	rowPtr, cols []int32
	b            []float32
}

const (
	magic         = "SSNN"
	formatVersion = 2 // the newest version read and written
	kindInt8      = 1
	kindSparse    = 2
	kindMask      = 4 // version 2
)

// compact converts the MLP to float32 dense layers.
func (m *MLP) compact() *Compact {
	c, _ := m.compress(Compression{})
	return c
}

// Compress implements Compressor: pruning first, so that the int8 scales
// fit the weights that remain.
func (m *MLP) Compress(c Compression) (Model, error) { return m.compress(c) }

func (m *MLP) compress(c Compression) (*Compact, error) {
	if !(c.PruneFraction >= 0 && c.PruneFraction < 1) {
		return nil, fmt.Errorf("nn: prune fraction %g is outside [0, 1)", c.PruneFraction)
	}
	out := &Compact{spec: m.spec, yMean: m.yMean, yStd: m.yStd, layers: make([]clayer, m.layers())}
	for l := 1; l <= m.layers(); l++ {
		in, n := m.sizes[l-1], m.sizes[l]
		w := make([]float32, in*n)
		src := m.weights(l)
		for i := range in {
			for o := range n {
				w[o*in+i] = src[i*n+o]
			}
		}
		kept := prune(w, c.PruneFraction)
		out.layers[l-1] = buildLayer(in, n, w, slices.Clone(m.biases(l)), c.Int8, kept)
	}
	return out, nil
}

// pruned is the number of a layer's n weights that pruning zeroes.
func pruned(n int, fraction float64) int { return int(math.Round(fraction * float64(n))) }

// prune zeroes the pruned(len(w), fraction) weights of smallest magnitude,
// the earlier one first among equals, so that the choice is deterministic,
// and returns which weights it kept (nil when it kept them all).
func prune(w []float32, fraction float64) []bool {
	k := pruned(len(w), fraction)
	if k <= 0 {
		return nil
	}
	idx := make([]int, len(w))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(math.Abs(float64(w[a])), math.Abs(float64(w[b]))); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	kept := make([]bool, len(w))
	for _, i := range idx[k:] {
		kept[i] = true
	}
	for _, i := range idx[:k] {
		w[i] = 0
	}
	return kept
}

// buildLayer stores out×in weights (row per output unit), quantized when
// asked, in the smallest form (layerStorage). A sparse form holds the
// weights pruning kept (all of them when kept is nil), even those that
// quantize to zero, so that its weight count is the pruning's.
func buildLayer(in, out int, w, b []float32, quant bool, kept []bool) clayer {
	L := clayer{in: in, out: out, int8: quant, b: b}
	var q []int8
	if quant {
		L.scale = make([]float32, out)
		q = make([]int8, len(w))
		for o := range out {
			row := w[o*in : (o+1)*in]
			var mx float32
			for _, v := range row {
				mx = max(mx, float32(math.Abs(float64(v))))
			}
			s := mx / 127
			L.scale[o] = s
			if s == 0 {
				continue
			}
			for i, v := range row {
				q[o*in+i] = int8(max(-127, min(127, math.Round(float64(v/s)))))
			}
		}
	}
	nnz := len(w)
	if kept != nil {
		nnz = 0
		for _, k := range kept {
			if k {
				nnz++
			}
		}
	}
	if L.sparse, L.mask = layerStorage(in, out, nnz, quant); L.sparse {
		L.rowPtr = make([]int32, out+1)
		L.cols = make([]int32, 0, nnz)
		if quant {
			L.wq = make([]int8, 0, nnz)
		} else {
			L.wf = make([]float32, 0, nnz)
		}
		for o := range out {
			for i := range in {
				k := o*in + i
				switch {
				case kept != nil && !kept[k]:
				case quant:
					L.wq = append(L.wq, q[k])
					L.cols = append(L.cols, int32(i))
				default:
					L.wf = append(L.wf, w[k])
					L.cols = append(L.cols, int32(i))
				}
			}
			L.rowPtr[o+1] = int32(len(L.cols))
		}
		return L
	}
	if quant {
		L.wq = q
	} else {
		L.wf = w
	}
	return L
}

func colBytes(in int) int64 {
	if in <= 1<<16 {
		return 2
	}
	return 4
}

// sparseBytes is the size of a sparse layer's row starts, nnz and indexed
// values (biases and scales aside).
func sparseBytes(in, out, nnz, valBytes int) int64 {
	return 4 + 4*int64(out+1) + int64(nnz)*(colBytes(in)+int64(valBytes))
}

// maskBytes is the size of a mask layer's mask and kept values.
func maskBytes(in, out, nnz, valBytes int) int64 {
	return (int64(in)*int64(out)+7)/8 + int64(nnz)*int64(valBytes)
}

func valBytes(quant bool) int {
	if quant {
		return 1
	}
	return 4
}

// layerStorage is the smallest form of a layer of in×out weights of which
// nnz are kept: dense (sparse false), compressed rows, or a mask.
func layerStorage(in, out, nnz int, quant bool) (sparse, mask bool) {
	vb := valBytes(quant)
	dense := int64(in) * int64(out) * int64(vb)
	rows, bits := sparseBytes(in, out, nnz, vb), maskBytes(in, out, nnz, vb)
	switch {
	case nnz == in*out || dense <= min(rows, bits):
		return false, false
	case bits < rows:
		return true, true
	}
	return true, false
}

func (L *clayer) nnz() int {
	if L.int8 {
		return len(L.wq)
	}
	return len(L.wf)
}

func (L *clayer) bytes() int64 {
	n := int64(1) + 4*int64(L.out) // kind, biases
	valBytes := 4
	if L.int8 {
		valBytes = 1
		n += 4 * int64(L.out)
	}
	switch {
	case L.mask:
		return n + maskBytes(L.in, L.out, L.nnz(), valBytes)
	case L.sparse:
		return n + sparseBytes(L.in, L.out, L.nnz(), valBytes)
	}
	return n + int64(L.in)*int64(L.out)*int64(valBytes)
}

func headerBytes(layers int) int64 { return 4 + 1 + 1 + 2 + 4 + 4 + 4*int64(layers+1) }

// Spec implements Model.
func (c *Compact) Spec() Spec { return c.spec }

// Params implements Model: the weights the model stores and its biases. A
// sparse layer stores the weights pruning kept; a dense one all of its
// weights, zeros included (pruning that saves no bytes saves no
// parameters either). Spec.StoredParams predicts it before training.
func (c *Compact) Params() int64 {
	var n int64
	for i := range c.layers {
		L := &c.layers[i]
		n += int64(L.out)
		if L.sparse {
			n += int64(L.nnz())
		} else {
			n += int64(L.in) * int64(L.out)
		}
	}
	return n
}

// StoredParams is the Params of the model of this shape compressed as c
// says (see Compact.Params): it depends on the shape, the prune fraction
// and the weights' type, not on the trained values.
func (s Spec) StoredParams(c Compression) int64 {
	sizes := s.Sizes()
	var n int64
	for l := 1; l < len(sizes); l++ {
		in, out := sizes[l-1], sizes[l]
		kept := in*out - pruned(in*out, c.PruneFraction)
		n += int64(out) + int64(in)*int64(out)
		if sparse, _ := layerStorage(in, out, kept, c.Int8); sparse {
			n += int64(kept) - int64(in)*int64(out)
		}
	}
	return n
}

// FLOPs implements Model: the dense count.
func (c *Compact) FLOPs() int64 { return c.spec.FLOPs() }

// NonZero implements Model.
func (c *Compact) NonZero() int64 {
	var n int64
	for i := range c.layers {
		L := &c.layers[i]
		for _, v := range L.wf {
			if v != 0 {
				n++
			}
		}
		for _, v := range L.wq {
			if v != 0 {
				n++
			}
		}
		for _, v := range L.b {
			if v != 0 {
				n++
			}
		}
	}
	return n
}

// Int8 reports whether the model's weights are int8.
func (c *Compact) Int8() bool { return len(c.layers) > 0 && c.layers[0].int8 }

// Bytes implements Model.
func (c *Compact) Bytes() int64 {
	n := headerBytes(len(c.layers))
	for i := range c.layers {
		n += c.layers[i].bytes()
	}
	return n
}

// MarshalBinary implements Model.
func (c *Compact) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, c.Bytes())
	le := binary.LittleEndian
	f32 := func(v float32) { b = le.AppendUint32(b, math.Float32bits(v)) }
	version := byte(1)
	for i := range c.layers {
		if c.layers[i].mask {
			version = 2
		}
	}
	b = append(b, magic...)
	b = append(b, version, byte(c.spec.Task))
	b = le.AppendUint16(b, uint16(len(c.layers)))
	f32(c.yMean)
	f32(c.yStd)
	for _, s := range c.spec.Sizes() {
		b = le.AppendUint32(b, uint32(s))
	}
	for i := range c.layers {
		L := &c.layers[i]
		var kind byte
		if L.int8 {
			kind |= kindInt8
		}
		if L.sparse {
			kind |= kindSparse
		}
		if L.mask {
			kind |= kindMask
		}
		b = append(b, kind)
		for _, s := range L.scale {
			f32(s)
		}
		switch {
		case L.mask:
			bits := make([]byte, (L.in*L.out+7)/8)
			for o := range L.out {
				for k := L.rowPtr[o]; k < L.rowPtr[o+1]; k++ {
					j := o*L.in + int(L.cols[k])
					bits[j/8] |= 1 << (j % 8)
				}
			}
			b = append(b, bits...)
		case L.sparse:
			b = le.AppendUint32(b, uint32(L.nnz()))
			for _, p := range L.rowPtr {
				b = le.AppendUint32(b, uint32(p))
			}
			for _, col := range L.cols {
				if colBytes(L.in) == 2 {
					b = le.AppendUint16(b, uint16(col))
				} else {
					b = le.AppendUint32(b, uint32(col))
				}
			}
		}
		for _, v := range L.wf {
			f32(v)
		}
		for _, v := range L.wq {
			b = append(b, byte(v))
		}
		for _, v := range L.b {
			f32(v)
		}
	}
	if int64(len(b)) != c.Bytes() {
		return nil, fmt.Errorf("nn: serialized %d bytes, counted %d", len(b), c.Bytes())
	}
	return b, nil
}

// errFormat is wrapped by every UnmarshalCompact error.
var errFormat = errors.New("nn: not a model")

// UnmarshalCompact reads a model written by MarshalBinary.
func UnmarshalCompact(data []byte) (*Compact, error) {
	r := reader{b: data}
	if string(r.next(4)) != magic {
		return nil, fmt.Errorf("%w: no %s header", errFormat, magic)
	}
	version := r.u8()
	if version < 1 || version > formatVersion {
		return nil, fmt.Errorf("%w: format version %d, want 1 to %d", errFormat, version, formatVersion)
	}
	c := &Compact{}
	c.spec.Task = Task(r.u8())
	nl := int(r.u16())
	c.yMean, c.yStd = r.f32(), r.f32()
	if r.err != nil || nl < 1 {
		return nil, fmt.Errorf("%w: truncated or empty header", errFormat)
	}
	sizes := make([]int, nl+1)
	for i := range sizes {
		sizes[i] = int(r.u32())
		if sizes[i] < 1 || sizes[i] > maxLayerSize {
			return nil, fmt.Errorf("%w: layer size %d", errFormat, sizes[i])
		}
	}
	c.spec.Inputs, c.spec.Outputs = sizes[0], sizes[nl]
	c.spec.Hidden = slices.Clone(sizes[1:nl])
	if err := c.spec.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", errFormat, err)
	}
	for l := 1; l <= nl && r.err == nil; l++ {
		L := clayer{in: sizes[l-1], out: sizes[l]}
		kind := r.u8()
		if kind > kindInt8|kindSparse|kindMask || (kind&kindMask != 0 && (version < 2 || kind&kindSparse == 0)) {
			return nil, fmt.Errorf("%w: layer %d kind %d in format version %d", errFormat, l, kind, version)
		}
		L.int8, L.sparse, L.mask = kind&kindInt8 != 0, kind&kindSparse != 0, kind&kindMask != 0
		if L.int8 {
			L.scale = r.f32s(L.out)
		}
		n := L.in * L.out
		if L.mask {
			bits := r.next((n + 7) / 8)
			if bits == nil {
				break
			}
			if n%8 != 0 && bits[len(bits)-1]>>(n%8) != 0 {
				return nil, fmt.Errorf("%w: layer %d mask has bits past its %d weights", errFormat, l, n)
			}
			L.rowPtr = make([]int32, L.out+1)
			for o := range L.out {
				for i := range L.in {
					if j := o*L.in + i; bits[j/8]>>(j%8)&1 != 0 {
						L.cols = append(L.cols, int32(i))
					}
				}
				L.rowPtr[o+1] = int32(len(L.cols))
			}
			n = len(L.cols)
		} else if L.sparse {
			nnz := int(r.u32())
			if nnz > n {
				return nil, fmt.Errorf("%w: layer %d has %d kept weights of %d", errFormat, l, nnz, n)
			}
			L.rowPtr = make([]int32, L.out+1)
			for o := range L.rowPtr {
				L.rowPtr[o] = int32(r.u32())
				if L.rowPtr[o] < 0 || int(L.rowPtr[o]) > nnz || (o > 0 && L.rowPtr[o] < L.rowPtr[o-1]) {
					return nil, fmt.Errorf("%w: layer %d row starts are not increasing within %d", errFormat, l, nnz)
				}
			}
			if L.rowPtr[0] != 0 || int(L.rowPtr[L.out]) != nnz {
				return nil, fmt.Errorf("%w: layer %d row starts do not span its %d weights", errFormat, l, nnz)
			}
			L.cols = make([]int32, 0, min(nnz, len(r.b)))
			for range nnz {
				var col int
				if colBytes(L.in) == 2 {
					col = int(r.u16())
				} else {
					col = int(r.u32())
				}
				if r.err != nil {
					break
				}
				if col >= L.in {
					return nil, fmt.Errorf("%w: layer %d column %d of %d", errFormat, l, col, L.in)
				}
				L.cols = append(L.cols, int32(col))
			}
			n = nnz
		}
		if L.int8 {
			if raw := r.next(n); raw != nil {
				L.wq = make([]int8, n)
				for i, v := range raw {
					L.wq[i] = int8(v)
				}
			}
		} else {
			L.wf = r.f32s(n)
		}
		L.b = r.f32s(L.out)
		c.layers = append(c.layers, L)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%w: truncated", errFormat)
	}
	if version == 2 && !slices.ContainsFunc(c.layers, func(L clayer) bool { return L.mask }) {
		// The writer uses version 2 only for masks: one model, one form.
		return nil, fmt.Errorf("%w: format version 2 without a mask layer", errFormat)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last layer", errFormat, len(r.b))
	}
	return c, nil
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = errFormat
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	if b := r.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.next(2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) f32() float32 { return math.Float32frombits(r.u32()) }

func (r *reader) f32s(n int) []float32 {
	raw := r.next(4 * n)
	if raw == nil {
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}
