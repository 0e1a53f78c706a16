package nn

import "math"

// The int8 product runs on a packed copy of a layer's weights that each
// predictor builds once: the canonical layer keeps one row of in weights per
// output unit (what MarshalBinary writes and the accessors read), the
// kernels want them in the order they stream them.
//
// Packing pads the inputs to a multiple of int8Step and the output units to
// a multiple of int8Units with zeros, and interleaves the rows of every
// int8Units output units step by step: block b holds, for each step s, the
// int8Step weights of unit 4b, then of 4b+1, 4b+2 and 4b+3 at inputs
// s·int8Step onwards. A kernel pass then reads one step of an activation row
// once for four output units, and the weights in one forward stream.
const (
	int8Step  = 16 // inputs per kernel step: one 128-bit load, widened to 16 int16
	int8Units = 4  // output units per kernel pass
)

// int8CacheBytes bounds the packed weights a kernel call walks for a pair
// of activation rows, so that they stay in the L1 cache while the driver
// runs every pair of rows over them.
const int8CacheBytes = 16 << 10

// packedInt8 is an int8 layer's weights in kernel order.
type packedInt8 struct {
	k      int // inputs, padded to a multiple of int8Step
	blocks int // output units / int8Units, rounded up
	w      []int8
}

// packInt8 lays out the weights of an int8 layer, dense or sparse, for the
// kernels.
func packInt8(L *clayer) packedInt8 {
	p := packedInt8{k: roundUp(L.in, int8Step), blocks: roundUp(L.out, int8Units) / int8Units}
	p.w = make([]int8, p.blocks*int8Units*p.k)
	put := func(o, i int, v int8) {
		b, u, s, j := o/int8Units, o%int8Units, i/int8Step, i%int8Step
		p.w[((b*p.k/int8Step+s)*int8Units+u)*int8Step+j] = v
	}
	for o := range L.out {
		if L.sparse {
			for k := L.rowPtr[o]; k < L.rowPtr[o+1]; k++ {
				put(o, int(L.cols[k]), L.wq[k])
			}
			continue
		}
		for i, v := range L.wq[o*L.in : (o+1)*L.in] {
			put(o, i, v)
		}
	}
	return p
}

func roundUp(n, m int) int { return (n + m - 1) / m * m }

// int8Kernels computes int32 dot products of one or two activation rows
// (k int8 each, k a positive multiple of int8Step) with blocks packed
// blocks of int8Units output units: y[4b+u] = Σ_i x[i]·w(4b+u, i). The sums
// are exact: |x|, |w| ≤ 127 keep a sum of up to int8MaxK products within
// int32 (wider layers take int8GemmWide).
type int8Kernels struct {
	name string
	one  func(x, w []int8, k, blocks int, y []int32)
	two  func(x0, x1, w []int8, k, blocks int, y0, y1 []int32)
	// maxAbs returns the bits of the largest |x[i]| (0 for none); the
	// bits of non-negative floats order as the floats, NaN's above
	// infinity's.
	maxAbs func(x []float32) uint32
	// quantize sets q[i] to x[i]·inv in float32, rounded half to even.
	quantize func(x []float32, inv float32, q []int8)
}

// int8Portable is the pure-Go kernel, the reference of the assembly ones
// and the kernel of every machine they do not support.
var int8Portable = int8Kernels{name: "go", one: int8DotGo1, two: int8DotGo2, maxAbs: maxAbsGo, quantize: quantizeGo}

// int8Kernel is the fastest kernel this machine runs (set at init by the
// architecture's file).
var int8Kernel = int8Portable

// int8MaxK is the most inputs whose int32 sum of products cannot
// overflow: 127·127·int8MaxK < 2^31.
const int8MaxK = 1 << 17

// int8Gemm sets acc[r·ldacc + o] to the dot product of activation row r of
// x (rows rows of p.k) with output unit o, for o < p.blocks·int8Units.
func int8Gemm(kern int8Kernels, p *packedInt8, x []int8, rows int, acc []int32, ldacc int) {
	chunk := max(1, int8CacheBytes/(int8Units*p.k))
	stride := int8Units * p.k
	for b0 := 0; b0 < p.blocks; b0 += chunk {
		nb := min(chunk, p.blocks-b0)
		w := p.w[b0*stride : (b0+nb)*stride]
		o := b0 * int8Units
		r := 0
		for ; r+2 <= rows; r += 2 {
			kern.two(x[r*p.k:(r+1)*p.k], x[(r+1)*p.k:(r+2)*p.k], w, p.k, nb,
				acc[r*ldacc+o:r*ldacc+o+nb*int8Units], acc[(r+1)*ldacc+o:(r+1)*ldacc+o+nb*int8Units])
		}
		if r < rows {
			kern.one(x[r*p.k:(r+1)*p.k], w, p.k, nb, acc[r*ldacc+o:r*ldacc+o+nb*int8Units])
		}
	}
}

// int8DotGo1 is the portable one-row kernel.
func int8DotGo1(x, w []int8, k, blocks int, y []int32) {
	steps := k / int8Step
	w = w[:blocks*steps*int8Units*int8Step]
	y = y[:blocks*int8Units]
	for b := range blocks {
		var s0, s1, s2, s3 int32
		for s := range steps {
			xs := (*[int8Step]int8)(x[s*int8Step:])
			ws := (*[int8Units * int8Step]int8)(w[(b*steps+s)*int8Units*int8Step:])
			for j, xv := range xs {
				v := int32(xv)
				s0 += int32(ws[j]) * v
				s1 += int32(ws[int8Step+j]) * v
				s2 += int32(ws[2*int8Step+j]) * v
				s3 += int32(ws[3*int8Step+j]) * v
			}
		}
		y[4*b], y[4*b+1], y[4*b+2], y[4*b+3] = s0, s1, s2, s3
	}
}

// int8DotGo2 is the portable two-row kernel: each weight is loaded once
// for both rows.
func int8DotGo2(x0, x1, w []int8, k, blocks int, y0, y1 []int32) {
	steps := k / int8Step
	w = w[:blocks*steps*int8Units*int8Step]
	y0, y1 = y0[:blocks*int8Units], y1[:blocks*int8Units]
	for b := range blocks {
		var a0, a1, a2, a3, c0, c1, c2, c3 int32
		for s := range steps {
			xs := (*[int8Step]int8)(x0[s*int8Step:])
			zs := (*[int8Step]int8)(x1[s*int8Step:])
			ws := (*[int8Units * int8Step]int8)(w[(b*steps+s)*int8Units*int8Step:])
			for j := range int8Step {
				u, v := int32(xs[j]), int32(zs[j])
				w0, w1, w2, w3 := int32(ws[j]), int32(ws[int8Step+j]), int32(ws[2*int8Step+j]), int32(ws[3*int8Step+j])
				a0 += w0 * u
				a1 += w1 * u
				a2 += w2 * u
				a3 += w3 * u
				c0 += w0 * v
				c1 += w1 * v
				c2 += w2 * v
				c3 += w3 * v
			}
		}
		y0[4*b], y0[4*b+1], y0[4*b+2], y0[4*b+3] = a0, a1, a2, a3
		y1[4*b], y1[4*b+1], y1[4*b+2], y1[4*b+3] = c0, c1, c2, c3
	}
}

// quantizeRow writes x quantized symmetrically to int8 into q (len(x)
// values; the caller keeps q's padding zero) and returns the scale s, with
// x ≈ s·q: s = max|x|/127 and q = x·(1/s) in float32, rounded half to even
// (as ONNX's Round and QuantizeLinear round). A row of zeros has scale 0; a
// row holding NaN or an infinity has scale NaN, so that its outputs are NaN
// as float arithmetic would make them.
func quantizeRow(kern int8Kernels, x []float32, q []int8) float32 {
	bits := kern.maxAbs(x)
	mx := math.Float32frombits(bits)
	switch {
	case bits == 0:
		clear(q[:len(x)])
		return 0
	case bits >= 0x7f800000: // infinity or NaN
		return float32(math.NaN())
	}
	// |x[i]·inv| ≤ 127 up to rounding, so q stays within ±127.
	s := mx / 127
	kern.quantize(x, 1/s, q)
	return s
}

func maxAbsGo(x []float32) uint32 {
	var m uint32
	for _, v := range x {
		m = max(m, math.Float32bits(v)&^(1<<31))
	}
	return m
}

func quantizeGo(x []float32, inv float32, q []int8) {
	q = q[:len(x)]
	for i, v := range x {
		q[i] = int8(math.RoundToEven(float64(v * inv)))
	}
}
