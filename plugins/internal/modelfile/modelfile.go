// Package modelfile is the built-in trainer's model file, format
// sweetspot-mlp/1 (tables.FormatSweetspotMLP): what the evaluation stage
// keeps of each trial in its models port, and what `sweetspot model`
// exports and predicts with. A file holds everything prediction needs:
// the input columns in order, the preprocessing fitted on the training
// rows, and the compact weights (float32 or int8, dense or sparse).
//
// # Layout (little-endian)
//
//	"SSMODEL1"
//	u32 length, header     JSON: task, features, target, class names,
//	                       preprocess, quantize, prune_fraction
//	u32 length, transform  prep's encoding of the fitted preprocessing
//	u32 length, weights    nn's SSNN compact form
//
// A model file is outside input once it leaves the run: Decode distrusts
// every length, count and value in it (each part's own decoder does the
// same for its part), checks that the parts fit one another (features in,
// the preprocessing's output width, the network's input width, the
// classes), and runs under recover, so damaged bytes are an error, never
// a crash or a model that predicts nonsense.
package modelfile

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Format is the format this package reads and writes.
const Format = tables.FormatSweetspotMLP

// Magic starts every file; its last character is the format's version.
const Magic = "SSMODEL1"

// maxHeader bounds the JSON header: a million features' names fit.
const maxHeader = 64 << 20

// Tasks, as the header names them.
const (
	TaskClassification = tables.Classification
	TaskRegression     = tables.Regression
)

// Header is what a model predicts from and what it gives.
type Header struct {
	Task string `json:"task"`
	// Features are the input columns, in the order the model takes them.
	Features []string `json:"features"`
	// Target is the column the model predicts.
	Target string `json:"target"`
	// ClassNames name the classes by index, when the dataset named them.
	ClassNames    []string `json:"class_names,omitempty"`
	Preprocess    string   `json:"preprocess"`
	Quantize      string   `json:"quantize"`
	PruneFraction float64  `json:"prune_fraction"`
}

// File is a decoded model file.
type File struct {
	Header    Header
	Transform *prep.Transform
	Model     *nn.Compact
}

// ErrFormat is wrapped by every Decode error.
var ErrFormat = errors.New("not a " + Format + " model file")

// Encode writes a model file. m is stored in its compact form (a model
// already compact is stored as it is).
func Encode(h Header, t *prep.Transform, m nn.Model) ([]byte, error) {
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	tb, err := t.MarshalBinary()
	if err != nil {
		return nil, err
	}
	wb, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &File{Header: h, Transform: t}
	if f.Model, err = nn.UnmarshalCompact(wb); err != nil {
		return nil, err
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("modelfile: the parts do not fit: %w", err)
	}
	out := make([]byte, 0, len(Magic)+12+len(hj)+len(tb)+len(wb))
	out = append(out, Magic...)
	for _, part := range [][]byte{hj, tb, wb} {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(part)))
		out = append(out, part...)
	}
	return out, nil
}

// Decode reads a model file, refusing anything that is not a whole,
// consistent sweetspot-mlp/1 file.
func Decode(b []byte) (f *File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%w: %v", ErrFormat, p)
		}
	}()
	if !bytes.HasPrefix(b, []byte(Magic)) {
		if bytes.HasPrefix(b, []byte(Magic[:len(Magic)-1])) {
			return nil, fmt.Errorf("%w: version %q, this sweetspot reads version %q", ErrFormat, b[len(Magic)-1], Magic[len(Magic)-1])
		}
		return nil, fmt.Errorf("%w: no %s header", ErrFormat, Magic)
	}
	rest := b[len(Magic):]
	var parts [3][]byte
	for i, name := range []string{"header", "preprocessing", "weights"} {
		if len(rest) < 4 {
			return nil, fmt.Errorf("%w: the %s's length is cut off", ErrFormat, name)
		}
		n := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: the %s claims %d bytes, %d remain", ErrFormat, name, n, len(rest))
		}
		parts[i], rest = rest[:n], rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the weights", ErrFormat, len(rest))
	}
	if len(parts[0]) > maxHeader {
		return nil, fmt.Errorf("%w: a header of %d bytes, at most %d", ErrFormat, len(parts[0]), maxHeader)
	}
	f = &File{}
	dec := json.NewDecoder(bytes.NewReader(parts[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f.Header); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if f.Transform, err = prep.DecodeTransform(parts[1]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if f.Model, err = nn.UnmarshalCompact(parts[2]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return f, nil
}

// check says whether the parts fit one another.
func (f *File) check() error {
	h, spec := f.Header, f.Model.Spec()
	var task nn.Task
	switch h.Task {
	case TaskClassification:
		task = nn.Classification
	case TaskRegression:
		task = nn.Regression
	default:
		return fmt.Errorf("task %q, want %s or %s", h.Task, TaskClassification, TaskRegression)
	}
	if spec.Task != task {
		return fmt.Errorf("the header says %s, the weights %s", h.Task, spec.Task)
	}
	if len(h.Features) != f.Transform.In() {
		return fmt.Errorf("%d feature names for a preprocessing of %d features", len(h.Features), f.Transform.In())
	}
	seen := map[string]bool{}
	for _, name := range h.Features {
		if name == "" || seen[name] || name == h.Target {
			return fmt.Errorf("feature name %q is empty, repeated or the target", name)
		}
		seen[name] = true
	}
	if f.Transform.Out() != spec.Inputs {
		return fmt.Errorf("the preprocessing gives %d features, the network takes %d", f.Transform.Out(), spec.Inputs)
	}
	if h.ClassNames != nil && (task != nn.Classification || len(h.ClassNames) != spec.Outputs) {
		return fmt.Errorf("%d class names for %d outputs", len(h.ClassNames), spec.Outputs)
	}
	if !(h.PruneFraction >= 0 && h.PruneFraction < 1) {
		return fmt.Errorf("prune_fraction %g is outside [0, 1)", h.PruneFraction)
	}
	return nil
}

// Inputs is the number of raw features the model takes.
func (f *File) Inputs() int { return len(f.Header.Features) }

// Classification says whether the model predicts classes.
func (f *File) Classification() bool { return f.Header.Task == TaskClassification }

// ClassName is class k's name: its dataset's name for it, else its index.
func (f *File) ClassName(k int32) string {
	if int(k) < len(f.Header.ClassNames) {
		return f.Header.ClassNames[k]
	}
	return fmt.Sprint(k)
}

// predictBatch is the rows one forward pass takes.
const predictBatch = 256

// Predict runs the model on rows×Inputs() raw feature values (row-major),
// preprocessed as in training: for classification it returns each row's
// class (the first of the highest logits, as the evaluation stage scores
// it) and for regression its predicted value.
func (f *File) Predict(x []float64, rows int) (classes []int32, values []float64, err error) {
	if len(x) != rows*f.Inputs() {
		return nil, nil, fmt.Errorf("modelfile: %d values for %d rows of %d features", len(x), rows, f.Inputs())
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, nil, fmt.Errorf("row %d, feature %s: %g is not a finite number", i/f.Inputs(), f.Header.Features[i%f.Inputs()], v)
		}
	}
	spec := f.Model.Spec()
	prepared := f.Transform.Apply(x, rows)
	in := make([]float32, len(prepared))
	for i, v := range prepared {
		in[i] = float32(v)
	}
	p := f.Model.NewPredictor(min(max(rows, 1), predictBatch))
	for lo := 0; lo < rows; lo += predictBatch {
		n := min(predictBatch, rows-lo)
		y := p.Predict(in[lo*spec.Inputs:], n)
		for r := range n {
			if spec.Task == nn.Classification {
				z := y[r*spec.Outputs : (r+1)*spec.Outputs]
				arg := 0
				for j, v := range z {
					if v > z[arg] {
						arg = j
					}
				}
				classes = append(classes, int32(arg))
			} else {
				values = append(values, float64(y[r]))
			}
		}
	}
	return classes, values, nil
}

// HeaderOf is the header of a model trained on ds with the candidate's
// preprocessing and compression.
func HeaderOf(ds *prep.Dataset, preprocess, quantize string, pruneFraction float64) Header {
	h := Header{
		Task: TaskClassification, Features: slices.Clone(ds.Features), Target: ds.Target,
		ClassNames: slices.Clone(ds.ClassNames), Preprocess: preprocess, Quantize: quantize, PruneFraction: pruneFraction,
	}
	if ds.Task == nn.Regression {
		h.Task = TaskRegression
	}
	return h
}
