package resize

import (
	"math"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// ioShape is the inputs and outputs of the dense chain, which with depth
// and width fix a model's parameter count.
type ioShape struct{ in, out int64 }

// inferShape recovers inputs and outputs from a candidate's exact counts
// (see modelchoice): with P' and F' its params and FLOPs less those of the
// (depth−1) hidden-to-hidden layers, F' − P' = w·(in+out) and
// P' − w·(in+out) − w = out. For the depth-0 baseline, F − P = in·out and
// 2P − F = out. Counting from the candidates rather than from the
// requirements keeps proposals consistent with upstream stages that changed
// the inputs (PCA, say).
func inferShape(c tables.Candidate) (ioShape, bool) {
	d, w, P, F := int64(c.Depth), int64(c.Width), c.Params, c.FLOPs
	var sh ioShape
	switch {
	case d == 0:
		sh.out = 2*P - F
		if sh.out <= 0 || (F-P)%sh.out != 0 {
			return ioShape{}, false
		}
		sh.in = (F - P) / sh.out
	case w > 0:
		p1 := P - (d-1)*(w*w+w)
		f1 := F - (d-1)*(2*w*w+w)
		if (f1-p1)%w != 0 {
			return ioShape{}, false
		}
		s := (f1 - p1) / w
		sh.out = p1 - w*s - w
		sh.in = s - sh.out
	default:
		return ioShape{}, false
	}
	if sh.in < 1 || sh.out < 1 {
		return ioShape{}, false
	}
	if p, f := mlp.Count(mlp.LayerSizes(sh.in, d, w, sh.out)); p != P || f != F {
		return ioShape{}, false
	}
	return sh, true
}

// setShape finds the inputs and outputs of the dense chain: from a
// measured candidate's own counts, else from the requirements' features
// and classes.
func (e *engine) setShape() {
	for _, s := range e.sizes {
		if sh, ok := inferShape(s.rep.cand); ok {
			e.shape, e.shapeOK = sh, true
			return
		}
	}
	if e.g.features != nil && *e.g.features > 0 {
		var classes int64
		if e.g.classes != nil {
			classes = int64(*e.g.classes)
		}
		out := mlp.Outputs(e.g.task, classes)
		if out > 0 {
			e.shape, e.shapeOK = ioShape{in: int64(*e.g.features), out: out}, true
		}
	}
}

// exactParams counts the parameters of the MLP of depth d and width w.
func (e *engine) exactParams(d int32, w int) int64 {
	p, _ := mlp.Count(mlp.LayerSizes(e.shape.in, int64(d), int64(w), e.shape.out))
	return p
}

// paramsAt is the parameter count at a real-valued width, for moving
// between width and size on continuous curves.
func (e *engine) paramsAt(d int32, w float64) float64 {
	in, out, dd := float64(e.shape.in), float64(e.shape.out), float64(d)
	return w*(in+1) + (dd-1)*(w*w+w) + out*(w+1)
}

// widthFor inverts paramsAt by bisection on log width.
func (e *engine) widthFor(d int32, n float64) float64 {
	lo, hi := math.Log(1e-3), math.Log(float64(maxWidth)*2)
	for range 100 {
		m := (lo + hi) / 2
		if e.paramsAt(d, math.Exp(m)) < n {
			lo = m
		} else {
			hi = m
		}
	}
	return math.Exp((lo + hi) / 2)
}
