package prep

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// The dataset port's contract (written by the dataset stage): schema
// metadata naming the target, the task and the class count, a utf8 split
// column, every other column a float64 feature.
// It is declared in sdk/tables.
const (
	MetaTarget  = tables.MetaTarget
	MetaTask    = tables.MetaTask
	MetaClasses = tables.MetaClasses
	SplitColumn = tables.ColSplit
)

// Split names.
const (
	SplitTrain      = tables.SplitTrain
	SplitValidation = tables.SplitValidation
	SplitTest       = tables.SplitTest
)

// Rows are the rows of one split, features row-major.
type Rows struct {
	X       []float64
	N       int
	Labels  []int32
	Targets []float64
}

func (r *Rows) add(x []float64, label int32, target float64, task nn.Task) {
	r.X = append(r.X, x...)
	r.N++
	if task == nn.Classification {
		r.Labels = append(r.Labels, label)
	} else {
		r.Targets = append(r.Targets, target)
	}
}

// Dataset is a dataset port's content, by split.
type Dataset struct {
	Task     nn.Task
	Classes  int
	Features []string
	Target   string
	// ClassNames are the classes' names by index (the dataset's
	// sweetspot.class_names), nil when it gives none.
	ClassNames []string
	Train      Rows
	// Validation and Test have N 0 when the dataset has no such rows.
	Validation, Test Rows
}

// Outputs is the model output count the dataset needs: its classes, or 1.
func (d *Dataset) Outputs() int {
	if d.Task == nn.Regression {
		return 1
	}
	return d.Classes
}

// ReadDataset reads a dataset port to its end. Problems with the data are
// *sdk.InputError values naming port, row (0-based in the stream) and
// column.
func ReadDataset(port string, r array.RecordReader) (*Dataset, error) {
	bad := func(row int64, col string, err error) error {
		return &sdk.InputError{Port: port, Row: row, Column: col, Err: err}
	}
	schema := r.Schema()
	md := schema.Metadata()
	d := &Dataset{}
	task, _ := md.GetValue(MetaTask)
	switch task {
	case "classification":
		d.Task = nn.Classification
	case "regression":
		d.Task = nn.Regression
	default:
		return nil, bad(-1, "", fmt.Errorf("schema metadata %s is %q, want classification or regression: connect a dataset (dataset.NAME)", MetaTask, task))
	}
	target, ok := md.GetValue(MetaTarget)
	if !ok || !schema.HasField(target) {
		return nil, bad(-1, target, fmt.Errorf("schema metadata %s names no column of the table (%q)", MetaTarget, target))
	}
	d.Target = target
	if d.Task == nn.Classification {
		cs, _ := md.GetValue(MetaClasses)
		k, err := strconv.Atoi(cs)
		if err != nil || k < 2 || k > 1<<20 {
			return nil, bad(-1, target, fmt.Errorf("schema metadata %s is %q, want the number of classes (2 or more)", MetaClasses, cs))
		}
		d.Classes = k
		if js, ok := md.GetValue(tables.MetaClassNames); ok {
			var names []string
			// Names are a convenience for predictions: a list that does not
			// fit the classes is left out, not an error.
			if json.Unmarshal([]byte(js), &names) == nil && len(names) == k {
				d.ClassNames = names
			}
		}
	}
	var features []int
	targetIdx, splitIdx := -1, -1
	for i, f := range schema.Fields() {
		switch f.Name {
		case target:
			targetIdx = i
			want := arrow.DataType(arrow.PrimitiveTypes.Int64)
			if d.Task == nn.Regression {
				want = arrow.PrimitiveTypes.Float64
			}
			if !arrow.TypeEqual(f.Type, want) {
				return nil, bad(-1, f.Name, fmt.Errorf("the %s target is %s, want %s", task, f.Type, want))
			}
		case SplitColumn:
			splitIdx = i
			if !arrow.TypeEqual(f.Type, arrow.BinaryTypes.String) {
				return nil, bad(-1, f.Name, fmt.Errorf("the split column is %s, want utf8", f.Type))
			}
		default:
			if !arrow.TypeEqual(f.Type, arrow.PrimitiveTypes.Float64) {
				return nil, bad(-1, f.Name, fmt.Errorf("feature column is %s, want float64", f.Type))
			}
			features = append(features, i)
			d.Features = append(d.Features, f.Name)
		}
	}
	if splitIdx < 0 {
		return nil, bad(-1, SplitColumn, errors.New("no split column: connect a dataset stage's data port"))
	}
	if len(features) == 0 {
		return nil, bad(-1, "", errors.New("the table has no feature column"))
	}
	var row int64
	x := make([]float64, len(features))
	for r.Next() {
		b := r.RecordBatch()
		cols := make([]*array.Float64, len(features))
		for k, i := range features {
			cols[k] = b.Column(i).(*array.Float64)
		}
		split := b.Column(splitIdx).(*array.String)
		tcol := b.Column(targetIdx)
		for i := range int(b.NumRows()) {
			for k, c := range cols {
				if c.IsNull(i) {
					return nil, bad(row, d.Features[k], errors.New("missing value"))
				}
				v := c.Value(i)
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, bad(row, d.Features[k], fmt.Errorf("value %g is not a finite number", v))
				}
				x[k] = v
			}
			if tcol.IsNull(i) {
				return nil, bad(row, target, errors.New("missing target"))
			}
			var label int32
			var value float64
			if d.Task == nn.Classification {
				l := tcol.(*array.Int64).Value(i)
				if l < 0 || l >= int64(d.Classes) {
					return nil, bad(row, target, fmt.Errorf("class index %d is outside 0..%d", l, d.Classes-1))
				}
				label = int32(l)
			} else {
				value = tcol.(*array.Float64).Value(i)
				if math.IsNaN(value) || math.IsInf(value, 0) {
					return nil, bad(row, target, fmt.Errorf("target %g is not a finite number", value))
				}
			}
			if split.IsNull(i) {
				return nil, bad(row, SplitColumn, errors.New("missing split"))
			}
			switch s := split.Value(i); s {
			case SplitTrain:
				d.Train.add(x, label, value, d.Task)
			case SplitValidation:
				d.Validation.add(x, label, value, d.Task)
			case SplitTest:
				d.Test.add(x, label, value, d.Task)
			default:
				return nil, bad(row, SplitColumn, fmt.Errorf("split %q is not train, validation or test", s))
			}
			row++
		}
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read port %s: %w", port, err)
	}
	if d.Train.N == 0 {
		return nil, bad(-1, SplitColumn, errors.New("the dataset has no training rows"))
	}
	return d, nil
}

// Prepared is a dataset after preprocessing, ready for the trainer.
type Prepared struct {
	Spec Spec
	// Validation and Test are nil when the dataset has no such rows.
	Train, Validation, Test *nn.Data
	// Inputs is the number of features after preprocessing.
	Inputs int
	// Transform is the preprocessing fitted on the training rows, which
	// a model file keeps so that its model predicts on raw features.
	Transform *Transform
}

// Prepare fits spec on the training rows and applies it to every split.
func (d *Dataset) Prepare(spec Spec) (*Prepared, error) {
	cols := len(d.Features)
	t, err := Fit(spec, d.Train.X, d.Train.N, cols)
	if err != nil {
		return nil, err
	}
	p := &Prepared{Spec: spec, Inputs: t.Out(), Transform: t}
	conv := func(r *Rows) *nn.Data {
		if r.N == 0 {
			return nil
		}
		x := t.Apply(r.X, r.N)
		out := &nn.Data{Rows: r.N, Cols: t.Out(), X: make([]float32, len(x)), Labels: r.Labels}
		for i, v := range x {
			out.X[i] = float32(v)
		}
		if r.Targets != nil {
			out.Targets = make([]float32, len(r.Targets))
			for i, v := range r.Targets {
				out.Targets[i] = float32(v)
			}
		}
		return out
	}
	p.Train, p.Validation, p.Test = conv(&d.Train), conv(&d.Validation), conv(&d.Test)
	return p, nil
}
