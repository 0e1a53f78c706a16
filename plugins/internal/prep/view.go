package prep

import "fmt"

// Fitted step forms, as StepView.Form names them. Standardize and minmax
// are both Affine; pca is a Projection.
const (
	// Affine maps each feature j to (x_j - Shift_j)·Scale_j.
	Affine = "affine"
	// Projection maps a row x to (x - Mean)·Axes.
	Projection = "projection"
)

// StepView is a read-only copy of one fitted step, for encoders that write
// the preprocessing in another format (the ONNX exporter). Steps compute
// in float64, as Apply does.
type StepView struct {
	Form    string
	In, Out int
	// Shift and Scale hold In values each (Affine).
	Shift, Scale []float64
	// Mean holds In values and Axes In×Out, one row per input feature
	// (Projection).
	Mean, Axes []float64
}

// Steps returns the fitted steps in the order Apply runs them; none for
// "none".
func (t *Transform) Steps() []StepView {
	var out []StepView
	for _, f := range t.steps {
		switch f := f.(type) {
		case *affine:
			out = append(out, StepView{
				Form: Affine, In: len(f.shift), Out: len(f.shift),
				Shift: append([]float64(nil), f.shift...),
				Scale: append([]float64(nil), f.scale...),
			})
		case *pca:
			d := len(f.mean)
			axes := make([]float64, 0, d*f.k)
			for j := range d {
				for c := range f.k {
					axes = append(axes, f.axes.At(j, c))
				}
			}
			out = append(out, StepView{
				Form: Projection, In: d, Out: f.k,
				Mean: append([]float64(nil), f.mean...), Axes: axes,
			})
		default:
			// A step kind added without a view here: encoders refuse the
			// form they do not know, naming it.
			out = append(out, StepView{Form: fmt.Sprintf("%T", f)})
		}
	}
	return out
}
