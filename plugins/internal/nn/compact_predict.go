package nn

import "fmt"

// A predictor runs each layer on the kernel that is fastest for it, on
// copies of the weights laid out for that kernel, made once when the
// predictor is built; the model's own layers stay as stored.
//
//   - dense float32 layers: gonum's Sgemm (gemm), on the stored rows;
//   - int8 layers: the blocked int8 kernels (int8.go) on packed weights,
//     each activation row quantized once per layer;
//   - sparse layers: the compressed-row kernel when the layer is sparse
//     enough for it to win (sparseWins), else the dense kernel on a dense
//     copy.
type layerKernel uint8

const (
	kernelDenseF32 layerKernel = iota
	kernelSparseF32
	kernelInt8
	kernelSparseInt8
	kernelWideInt8 // int8 layers too wide for int32 sums: int64, scalar
)

// Density below which the compressed-row kernels beat the dense ones. A
// sparse kernel does one indexed multiply-add per kept weight, the dense
// ones several per cycle, and the int8 kernel about four times float32's.
// BenchmarkPruned (-count 3, medians, on a quiet machine; docs/benchmarks.md)
// measured, against the unpruned model of widths 256 and 1024: float32 at
// 10% density (90% pruned) 0.65x to 0.78x on the sparse kernel, at 5%
// 1.15x to 1.54x; int8 at 5% 0.63x to 0.75x at width 256. So float32's
// bound sits between 5% and 10%, and int8's below 5%, where its dense
// kernel still wins.
const (
	sparseF32MaxDensity  = 0.07
	sparseInt8MaxDensity = 0.03
)

// sparseWins reports whether the compressed-row kernel beats the dense one
// on L.
func sparseWins(L *clayer) bool {
	if !L.sparse {
		return false
	}
	d := float64(L.nnz()) / (float64(L.in) * float64(L.out))
	if L.int8 {
		return d < sparseInt8MaxDensity
	}
	return d < sparseF32MaxDensity
}

// predLayer is a layer's kernel and the weights laid out for it.
type predLayer struct {
	kernel layerKernel
	dense  []float32  // kernelDenseF32 of a sparse layer: its out×in weights
	packed packedInt8 // kernelInt8
}

// NewPredictor implements Model.
func (c *Compact) NewPredictor(maxBatch int) Predictor {
	maxBatch = max(maxBatch, 1)
	p := &compactPredictor{c: c, maxBatch: maxBatch, acts: make([][]float32, len(c.layers)+1), layers: make([]predLayer, len(c.layers))}
	var xq, acc int
	for i := range c.layers {
		L := &c.layers[i]
		p.acts[i+1] = make([]float32, maxBatch*L.out)
		pl := &p.layers[i]
		switch {
		case L.int8 && roundUp(L.in, int8Step) > int8MaxK:
			pl.kernel = kernelWideInt8
			xq = max(xq, L.in)
		case L.int8 && sparseWins(L):
			pl.kernel = kernelSparseInt8
			xq = max(xq, L.in)
		case L.int8:
			pl.kernel = kernelInt8
			pl.packed = packInt8(L)
			xq = max(xq, pl.packed.k)
			acc = max(acc, pl.packed.blocks*int8Units)
		case sparseWins(L):
			pl.kernel = kernelSparseF32
		case L.sparse:
			pl.kernel = kernelDenseF32
			pl.dense = make([]float32, L.in*L.out)
			for o := range L.out {
				for k := L.rowPtr[o]; k < L.rowPtr[o+1]; k++ {
					pl.dense[o*L.in+int(L.cols[k])] = L.wf[k]
				}
			}
		}
	}
	if xq > 0 {
		p.xq = make([]int8, maxBatch*xq)
		p.sx = make([]float32, maxBatch)
		p.acc = make([]int32, maxBatch*acc)
	}
	return p
}

type compactPredictor struct {
	c        *Compact
	maxBatch int
	acts     [][]float32
	layers   []predLayer
	// xq holds the quantized activation rows, sx their scales and acc the
	// int32 sums of an int8 layer.
	xq  []int8
	sx  []float32
	acc []int32
}

func (p *compactPredictor) Bytes() int64 {
	n := int64(len(p.xq)) + 4*int64(len(p.sx)+len(p.acc))
	for _, a := range p.acts[1:] {
		n += 4 * int64(len(a))
	}
	for _, l := range p.layers {
		n += 4*int64(len(l.dense)) + int64(len(l.packed.w))
	}
	return n
}

func (p *compactPredictor) Predict(x []float32, rows int) []float32 {
	if rows > p.maxBatch {
		panic(fmt.Sprintf("nn: %d rows for a predictor of batch %d", rows, p.maxBatch))
	}
	c := p.c
	in := x[:rows*c.spec.Inputs]
	last := len(c.layers) - 1
	for i := range c.layers {
		L := &c.layers[i]
		pl := &p.layers[i]
		y := p.acts[i+1][:rows*L.out]
		switch pl.kernel {
		case kernelInt8:
			p.int8Layer(L, &pl.packed, in, y, rows)
		case kernelSparseInt8, kernelWideInt8:
			p.int8Scalar(L, in, y, rows)
		case kernelSparseF32:
			for r := range rows {
				xr := in[r*L.in : (r+1)*L.in]
				yr := y[r*L.out : (r+1)*L.out]
				for o := range L.out {
					var s float32
					for k := L.rowPtr[o]; k < L.rowPtr[o+1]; k++ {
						s += L.wf[k] * xr[L.cols[k]]
					}
					yr[o] = s
				}
			}
		default:
			w := L.wf
			if pl.dense != nil {
				w = pl.dense
			}
			gemm(false, true, rows, L.out, L.in, 1, in, L.in, w, L.in, 0, y, L.out)
		}
		for r := range rows {
			yr := y[r*L.out : (r+1)*L.out]
			for o, b := range L.b {
				yr[o] += b
			}
			if i < last {
				for o, v := range yr {
					if v < 0 {
						yr[o] = 0
					}
				}
			}
		}
		in = y
	}
	if c.spec.Task == Regression {
		for i := range in {
			in[i] = in[i]*c.yStd + c.yMean
		}
	}
	return in
}

// int8Layer quantizes each input row (quantizeRow), takes the int32 sums
// of the packed weights with it and scales them back to float32: y =
// sum·sx·scale (biases are added by the caller).
func (p *compactPredictor) int8Layer(L *clayer, pk *packedInt8, in, y []float32, rows int) {
	xq := p.xq[:rows*pk.k]
	for r := range rows {
		row := xq[r*pk.k : (r+1)*pk.k]
		p.sx[r] = quantizeRow(int8Kernel, in[r*L.in:(r+1)*L.in], row)
		clear(row[L.in:]) // another layer may have left values there
	}
	ld := pk.blocks * int8Units
	acc := p.acc[:rows*ld]
	int8Gemm(int8Kernel, pk, xq, rows, acc, ld)
	for r := range rows {
		sx := p.sx[r]
		a := acc[r*ld : r*ld+L.out]
		yr := y[r*L.out : (r+1)*L.out]
		for o, s := range L.scale[:L.out] {
			yr[o] = float32(a[o]) * sx * s
		}
	}
}

// int8Scalar is the int8 product on the stored layer, one weight at a
// time, with int64 sums: the sparse kernel, and the only one for layers too
// wide for int32 sums.
func (p *compactPredictor) int8Scalar(L *clayer, in, y []float32, rows int) {
	xq := p.xq[:L.in]
	for r := range rows {
		sx := quantizeRow(int8Kernel, in[r*L.in:(r+1)*L.in], xq)
		yr := y[r*L.out : (r+1)*L.out]
		for o := range L.out {
			var acc int64
			if L.sparse {
				for k := L.rowPtr[o]; k < L.rowPtr[o+1]; k++ {
					acc += int64(L.wq[k]) * int64(xq[L.cols[k]])
				}
			} else {
				for i, w := range L.wq[o*L.in : (o+1)*L.in] {
					acc += int64(w) * int64(xq[i])
				}
			}
			yr[o] = float32(acc) * sx * L.scale[o]
		}
	}
}
