package nn

import "fmt"

// View is a read-only copy of a trained model's layers, for encoders that
// write a model in another format (the ONNX exporter). Sparse layers are
// given dense, their pruned weights as zeros.
//
// The forward pass a View describes is the one Predict runs: for each
// layer y = x·W + b, ReLU after every layer but the last; for regression
// the output is then y·TargetStd + TargetMean. An int8 layer computes x·W
// as sweetspot's int8 kernel does: each input row is quantized on its own,
// symmetrically, with scale s = max|x|/127 and q = round(x·(1/s)) in
// float32, ties to even (a row of zeros gives zeros), the int8 products are
// summed in int32, and each sum is scaled back as float32(sum)·s·Scales[o].
type View struct {
	Spec   Spec
	Layers []LayerView
	// TargetMean and TargetStd undo the target standardization of a
	// regression model (0 and 1 for classification).
	TargetMean, TargetStd float32
}

// LayerView is one dense layer In→Out.
type LayerView struct {
	In, Out int
	// ReLU is true for every layer but the last.
	ReLU bool
	// Int8 says the weights are Quantized with Scales; otherwise they are
	// Weights.
	Int8 bool
	// Weights holds In×Out float32 weights, one row per input (the right
	// operand of x·W).
	Weights []float32
	// Quantized holds In×Out int8 weights, one row per input, and Scales one
	// symmetric scale per output unit: the weight is Scales[o]·Quantized[i·Out+o].
	Quantized []int8
	Scales    []float32
	Biases    []float32
}

// ViewOf returns the layers of a model trained or compressed by this
// package.
func ViewOf(m Model) (*View, error) {
	switch m := m.(type) {
	case *MLP:
		return m.view(), nil
	case *Compact:
		return m.view(), nil
	case nil:
		return nil, fmt.Errorf("nn: no model to view")
	default:
		return nil, fmt.Errorf("nn: a %T has no layers to view", m)
	}
}

func (m *MLP) view() *View {
	v := &View{Spec: m.spec, TargetMean: m.yMean, TargetStd: m.yStd}
	L := m.layers()
	for l := 1; l <= L; l++ {
		v.Layers = append(v.Layers, LayerView{
			In: m.sizes[l-1], Out: m.sizes[l], ReLU: l < L,
			Weights: append([]float32(nil), m.weights(l)...),
			Biases:  append([]float32(nil), m.biases(l)...),
		})
	}
	return v
}

func (c *Compact) view() *View {
	v := &View{Spec: c.spec, TargetMean: c.yMean, TargetStd: c.yStd}
	for i := range c.layers {
		L := &c.layers[i]
		lv := LayerView{
			In: L.in, Out: L.out, ReLU: i < len(c.layers)-1, Int8: L.int8,
			Biases: append([]float32(nil), L.b...),
		}
		// Compact layers hold one row per output unit; the view one row per
		// input. at(o, k) is the k-th stored weight of output o and its input.
		at := func(o int, each func(k, in int)) {
			if L.sparse {
				for k := L.rowPtr[o]; k < L.rowPtr[o+1]; k++ {
					each(int(k), int(L.cols[k]))
				}
				return
			}
			for in := range L.in {
				each(o*L.in+in, in)
			}
		}
		if L.int8 {
			lv.Quantized = make([]int8, L.in*L.out)
			lv.Scales = append([]float32(nil), L.scale...)
			for o := range L.out {
				at(o, func(k, in int) { lv.Quantized[in*L.out+o] = L.wq[k] })
			}
		} else {
			lv.Weights = make([]float32, L.in*L.out)
			for o := range L.out {
				at(o, func(k, in int) { lv.Weights[in*L.out+o] = L.wf[k] })
			}
		}
		v.Layers = append(v.Layers, lv)
	}
	return v
}
