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
// row per output unit, as float32 or int8, densely or in compressed sparse
// rows, whichever of the two takes fewer bytes, and the forward pass runs on
// that storage as it is (int8 arithmetic for int8 layers, a sparse kernel
// for sparse ones), so measured latency reflects it.
//
// # Serialized form (little-endian)
//
//	header   "SSNN", version u8 (1), task u8, layers u16,
//	         target mean f32, target deviation f32, layer sizes (layers+1)×u32
//	layer    kind u8 (bit 0: int8, bit 1: sparse)
//	         int8:   one scale f32 per output unit
//	         sparse: nnz u32, row starts (out+1)×u32, nnz column indices
//	                 (u16 when the layer has at most 65536 inputs, else u32)
//	         weights out·in (dense) or nnz (sparse) values, f32 or i8
//	         biases  out×f32
//
// Go has no int8 SIMD, so the int8 kernel is scalar int32 arithmetic:
// int8 layers are about 4x smaller than float32 ones but, on this backend,
// slower than float32 layers on gonum's vectorized products
// (BenchmarkPredict measures both).
//
// Bytes is the exact length of that form. Sparse storage is chosen when it
// is smaller: for float32 weights below about 2/3 density (6 bytes per kept
// weight against 4 per weight), for int8 below about 1/3 (3 against 1).
type Compact struct {
	spec        Spec
	layers      []clayer
	yMean, yStd float32
}

var _ Model = (*Compact)(nil)

type clayer struct {
	in, out      int
	int8, sparse bool
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
	formatVersion = 1
	kindInt8      = 1
	kindSparse    = 2
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
		prune(w, c.PruneFraction)
		out.layers[l-1] = buildLayer(in, n, w, slices.Clone(m.biases(l)), c.Int8)
	}
	return out, nil
}

// prune zeroes the round(fraction·len(w)) weights of smallest magnitude,
// the earlier one first among equals, so that the choice is deterministic.
func prune(w []float32, fraction float64) {
	k := int(math.Round(fraction * float64(len(w))))
	if k <= 0 {
		return
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
	for _, i := range idx[:k] {
		w[i] = 0
	}
}

// buildLayer stores out×in weights (row per output unit), quantized when
// asked, in the smaller of the dense and sparse forms.
func buildLayer(in, out int, w, b []float32, quant bool) clayer {
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
	nnz := 0
	for i := range w {
		if (quant && q[i] != 0) || (!quant && w[i] != 0) {
			nnz++
		}
	}
	valBytes := 4
	if quant {
		valBytes = 1
	}
	if sparseBytes(in, out, nnz, valBytes) < int64(in)*int64(out)*int64(valBytes) {
		L.sparse = true
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
				case quant && q[k] != 0:
					L.wq = append(L.wq, q[k])
					L.cols = append(L.cols, int32(i))
				case !quant && w[k] != 0:
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
	if L.sparse {
		return n + sparseBytes(L.in, L.out, L.nnz(), valBytes)
	}
	return n + int64(L.in)*int64(L.out)*int64(valBytes)
}

func headerBytes(layers int) int64 { return 4 + 1 + 1 + 2 + 4 + 4 + 4*int64(layers+1) }

// Spec implements Model.
func (c *Compact) Spec() Spec { return c.spec }

// Params implements Model: the dense count, pruned weights included.
func (c *Compact) Params() int64 { return c.spec.Params() }

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
	b = append(b, magic...)
	b = append(b, formatVersion, byte(c.spec.Task))
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
		b = append(b, kind)
		for _, s := range L.scale {
			f32(s)
		}
		if L.sparse {
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
	if v := r.u8(); v != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", errFormat, v, formatVersion)
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
		if kind > kindInt8|kindSparse {
			return nil, fmt.Errorf("%w: layer %d kind %d", errFormat, l, kind)
		}
		L.int8, L.sparse = kind&kindInt8 != 0, kind&kindSparse != 0
		if L.int8 {
			L.scale = r.f32s(L.out)
		}
		n := L.in * L.out
		if L.sparse {
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
