package prep

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// A fitted Transform travels inside a model file, so that a model predicts
// on raw features as it was trained. Its encoded form (little-endian):
//
//	"SSPREP", version u8 (1), features in u32, steps u8
//	step     kind u8 (1 affine: shift and scale; 2 pca), then
//	         affine: d u32, shift d×f64, scale d×f64
//	         pca:    d u32, k u32, mean d×f64, axes d×k f64 (row-major)
//
// standardize and minmax are both affine maps (x - shift)·scale.
const (
	prepMagic   = "SSPREP"
	prepVersion = 1
	stepAffine  = 1
	stepPCA     = 2
	// maxFeatures bounds every dimension a decoded transform claims.
	maxFeatures = 1 << 20
	maxSteps    = 16
)

// ErrTransformFormat is wrapped by every DecodeTransform error.
var ErrTransformFormat = errors.New("prep: not a preprocessing")

// MarshalBinary encodes the fitted transform.
func (t *Transform) MarshalBinary() ([]byte, error) {
	le := binary.LittleEndian
	b := append([]byte(prepMagic), prepVersion)
	b = le.AppendUint32(b, uint32(t.in))
	b = append(b, byte(len(t.steps)))
	f64s := func(v []float64) {
		for _, x := range v {
			b = le.AppendUint64(b, math.Float64bits(x))
		}
	}
	for _, st := range t.steps {
		switch f := st.(type) {
		case *affine:
			b = append(b, stepAffine)
			b = le.AppendUint32(b, uint32(len(f.shift)))
			f64s(f.shift)
			f64s(f.scale)
		case *pca:
			d := len(f.mean)
			b = append(b, stepPCA)
			b = le.AppendUint32(b, uint32(d))
			b = le.AppendUint32(b, uint32(f.k))
			f64s(f.mean)
			for j := range d {
				for c := range f.k {
					b = le.AppendUint64(b, math.Float64bits(f.axes.At(j, c)))
				}
			}
		default:
			return nil, fmt.Errorf("prep: cannot encode a %T step", st)
		}
	}
	return b, nil
}

// DecodeTransform reads a transform written by MarshalBinary. The bytes
// are distrusted: every dimension is bounded and checked against the
// bytes that remain before anything is allocated, each step must take
// what the previous one gives, every value must be finite, and nothing
// may follow the last step.
func DecodeTransform(data []byte) (*Transform, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrTransformFormat, fmt.Sprintf(format, a...))
	}
	d := decoder{b: data}
	if string(d.next(len(prepMagic))) != prepMagic {
		return nil, bad("no %s header", prepMagic)
	}
	if v := d.u8(); v != prepVersion {
		return nil, bad("version %d, want %d", v, prepVersion)
	}
	in := int(d.u32())
	n := int(d.u8())
	if d.short {
		return nil, bad("truncated header")
	}
	if in < 1 || in > maxFeatures {
		return nil, bad("%d features", in)
	}
	if n > maxSteps {
		return nil, bad("%d steps, at most %d", n, maxSteps)
	}
	t := &Transform{in: in, out: in}
	for s := range n {
		kind := d.u8()
		dim := int(d.u32())
		if d.short {
			return nil, bad("step %d truncated", s+1)
		}
		if dim != t.out {
			return nil, bad("step %d takes %d features, the step before gives %d", s+1, dim, t.out)
		}
		switch kind {
		case stepAffine:
			shift, scale := d.f64s(dim), d.f64s(dim)
			if d.short {
				return nil, bad("step %d truncated", s+1)
			}
			t.steps = append(t.steps, &affine{shift: shift, scale: scale})
		case stepPCA:
			k := int(d.u32())
			if d.short || k < 1 || k > dim {
				return nil, bad("step %d keeps %d components of %d", s+1, k, dim)
			}
			mean := d.f64s(dim)
			axes := d.f64s(dim * k)
			if d.short {
				return nil, bad("step %d truncated", s+1)
			}
			t.steps = append(t.steps, &pca{mean: mean, axes: mat.NewDense(dim, k, axes), k: k})
			t.out = k
		default:
			return nil, bad("step %d has kind %d", s+1, kind)
		}
	}
	if d.nonFinite {
		return nil, bad("a value is not a finite number")
	}
	if len(d.b) != 0 {
		return nil, bad("%d bytes after the last step", len(d.b))
	}
	return t, nil
}

type decoder struct {
	b         []byte
	short     bool
	nonFinite bool
}

func (d *decoder) next(n int) []byte {
	if d.short || n < 0 || n > len(d.b) {
		d.short = true
		return nil
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u8() byte {
	if b := d.next(1); b != nil {
		return b[0]
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.next(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

// f64s reads n float64s, checking first that the bytes are there.
func (d *decoder) f64s(n int) []float64 {
	if n < 0 || n > len(d.b)/8 {
		d.short = true
		return nil
	}
	raw := d.next(8 * n)
	if raw == nil {
		return nil
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		if math.IsNaN(out[i]) || math.IsInf(out[i], 0) {
			d.nonFinite = true
		}
	}
	return out
}
