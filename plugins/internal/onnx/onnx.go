// Package onnx writes a trained sweetspot model, with the preprocessing it
// was trained behind, as a standard ONNX model that another runtime (ONNX
// Runtime, for one) can run. docs/onnx.md is the user's account of the
// graph contract; the constants below are its names.
//
// # The graph
//
// One input, Input: tensor(double) [N, F], the dataset's F feature columns
// in the dataset's order (their names are in the metadata property
// "sweetspot.features", a JSON array). The preprocessing runs first, in double as
// sweetspot runs it (standardize and minmax as Sub and Mul, pca as Sub and
// MatMul), then a Cast to float and the dense layers in float32: MatMul,
// Add, Relu. A classifier answers Logits [N, K] (float), Probabilities
// [N, K] (their Softmax) and Class [N] (int64, ArgMax of the logits, the
// first of equals as sweetspot picks it); a regressor answers Value [N]
// (float, in the target's units).
//
// # int8
//
// An int8 layer is written with MatMulInteger, the standard operator whose
// arithmetic is sweetspot's own: int8 weights with a symmetric scale per
// output unit (zero point 0), int8 inputs quantized per row symmetrically
// (s = max|x|/127, q = round(x·(1/s)), ties to even), products summed in
// int32 and scaled back as float32(sum)·s·scale. The per-row quantization
// is a few elementwise nodes in front of each MatMulInteger (Abs,
// ReduceMax, Div, Max, Reciprocal, Mul, Round, Cast). DynamicQuantizeLinear was not chosen: it
// quantizes the whole batch to uint8 with one asymmetric scale, so a row's
// answer would depend on the other rows of its batch, which sweetspot's
// never does. QDQ around a float MatMul would need activation scales fixed
// at export time, which sweetspot does not have. Each step is the same
// float32 operation in the same order as sweetspot's kernel, so an int8
// model's outputs in ONNX Runtime are sweetspot's to the bit in practice
// (the test measures it).
//
// # Encoding
//
// The protobuf is written with google.golang.org/protobuf's protowire (the
// nine messages and the few fields a dense graph uses, in proto.go): the
// Go modules that carry generated ONNX types either keep them internal
// (onnx-go) or bring a tensor library with them (gonnx and gorgonia), for
// nothing an encoder needs.
package onnx

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
)

// The graph contract's names and versions.
const (
	// Input is the features tensor: double [N, F].
	Input = "features"
	// Logits is a classifier's raw scores: float [N, K].
	Logits = "logits"
	// Probabilities is the softmax of the logits: float [N, K].
	Probabilities = "probabilities"
	// Class is the predicted class index: int64 [N].
	Class = "class"
	// Value is a regressor's prediction: float [N].
	Value = "value"
	// BatchDim is the symbolic name of the batch dimension N.
	BatchDim = "N"

	// Opset is the version of the default ONNX operator set the graph
	// imports, and IRVersion the file format version that goes with it.
	Opset     = 17
	IRVersion = 8
)

// Metadata property keys of the model.
const (
	MetaTask     = "sweetspot.task"
	MetaFeatures = "sweetspot.features"
	MetaClasses  = "sweetspot.classes"
	MetaTarget   = "sweetspot.target"
	MetaPrep     = "sweetspot.preprocessing"
	MetaWeights  = "sweetspot.weights"
)

// maxTensorBytes keeps the whole file under protobuf's 2 GiB message limit
// (ONNX's external data, which lifts it, is not written).
const maxTensorBytes = 2<<30 - 1<<20

// Options are what the model's layers do not say.
type Options struct {
	// Features names the input columns in order, for the metadata; when
	// given there must be one per input.
	Features []string
	// Target names the predicted column, for the metadata.
	Target string
	// Classes names a classifier's classes by index, for the metadata;
	// when given there must be one per output.
	Classes []string
	// Preprocessing is the preprocessing's name (as prep.Spec.String()),
	// for the metadata.
	Preprocessing string
	// ProducerVersion is the sweetspot version that writes the file.
	ProducerVersion string
}

// Encode writes model m, behind the fitted preprocessing t (nil for none),
// as an ONNX model. It refuses, naming the reason, what the graph cannot
// hold: a model of another backend, a preprocessing step of an unknown
// form, shapes that do not chain, non-finite parameters, more than 2 GiB of
// tensors.
func Encode(m nn.Model, t *prep.Transform, o Options) ([]byte, error) {
	v, err := nn.ViewOf(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: %w", err)
	}
	var steps []prep.StepView
	features := v.Spec.Inputs
	if t != nil {
		steps = t.Steps()
		features = t.In()
		if t.Out() != v.Spec.Inputs {
			return nil, fmt.Errorf("onnx: the preprocessing gives %d features, the model takes %d inputs", t.Out(), v.Spec.Inputs)
		}
	}
	if len(o.Features) > 0 && len(o.Features) != features {
		return nil, fmt.Errorf("onnx: %d feature names for %d input columns", len(o.Features), features)
	}
	if len(o.Classes) > 0 && (v.Spec.Task != nn.Classification || len(o.Classes) != v.Spec.Outputs) {
		return nil, fmt.Errorf("onnx: %d class names for a %s model of %d outputs", len(o.Classes), v.Spec.Task, v.Spec.Outputs)
	}
	if err := check(v, steps); err != nil {
		return nil, err
	}

	b := &builder{}
	x := b.input(Input, typeDouble, []dim{{param: BatchDim}, {value: int64(features)}},
		"the feature columns in the dataset's order, one row per example")
	for i, s := range steps {
		x = b.prepStep(fmt.Sprintf("prep%d", i+1), x, s)
	}
	x = b.op("Cast", "features_f32", []string{x}, intAttr("to", int64(typeFloat)))
	int8Layers := 0
	for i := range v.Layers {
		L := &v.Layers[i]
		if L.Int8 {
			int8Layers++
		}
		x = b.layer(fmt.Sprintf("layer%d", i+1), x, L)
	}
	task := v.Spec.Task
	if task == nn.Classification {
		b.op("Identity", Logits, []string{x})
		b.op("Softmax", Probabilities, []string{x}, intAttr("axis", -1))
		b.op("ArgMax", Class, []string{x}, intAttr("axis", 1), intAttr("keepdims", 0), intAttr("select_last_index", 0))
		k := int64(v.Spec.Outputs)
		b.output(Logits, typeFloat, []dim{{param: BatchDim}, {value: k}}, "one raw score per class")
		b.output(Probabilities, typeFloat, []dim{{param: BatchDim}, {value: k}}, "the softmax of the logits")
		b.output(Class, typeInt64, []dim{{param: BatchDim}}, "the class of the highest logit, the first of equals")
	} else {
		y := b.op("Mul", "value_scaled", []string{x, b.scalar("target_std", v.TargetStd)})
		y = b.op("Add", "value_shifted", []string{y, b.scalar("target_mean", v.TargetMean)})
		b.op("Reshape", Value, []string{y, b.tensor("value_shape", typeInt64, []int64{1}, i64raw([]int64{-1}))})
		b.output(Value, typeFloat, []dim{{param: BatchDim}}, "the predicted target, in its units")
	}
	if b.bytes > maxTensorBytes {
		return nil, fmt.Errorf("onnx: the model's tensors take %d bytes; one ONNX file holds at most %d without external data, which this encoder does not write", b.bytes, maxTensorBytes)
	}

	weights := "float32"
	switch {
	case int8Layers == len(v.Layers):
		weights = "int8"
	case int8Layers > 0:
		weights = "mixed"
	}
	sizes := make([]string, 0, len(v.Layers)+1)
	for _, n := range v.Spec.Sizes() {
		sizes = append(sizes, fmt.Sprint(n))
	}
	b.g.name = "sweetspot_mlp"
	b.g.doc = fmt.Sprintf("sweetspot %s MLP %s, %s weights", task, strings.Join(sizes, "→"), weights)
	model := modelProto{
		irVersion: IRVersion, opset: Opset,
		producer: "sweetspot", producerVersion: o.ProducerVersion,
		doc: b.g.doc, graph: b.g,
		metadata: [][2]string{
			{MetaTask, task.String()},
			{MetaWeights, weights},
		},
	}
	if len(o.Features) > 0 {
		model.metadata = append(model.metadata, [2]string{MetaFeatures, jsonList(o.Features)})
	}
	if len(o.Classes) > 0 {
		model.metadata = append(model.metadata, [2]string{MetaClasses, jsonList(o.Classes)})
	}
	if o.Target != "" {
		model.metadata = append(model.metadata, [2]string{MetaTarget, o.Target})
	}
	if o.Preprocessing != "" {
		model.metadata = append(model.metadata, [2]string{MetaPrep, o.Preprocessing})
	}
	return model.marshal(), nil
}

// check refuses what the graph cannot hold before anything is built.
func check(v *nn.View, steps []prep.StepView) error {
	for i, s := range steps {
		where := fmt.Sprintf("onnx: preprocessing step %d (%s)", i+1, s.Form)
		switch s.Form {
		case prep.Affine:
			if err := finite64(where+" shift", s.Shift); err != nil {
				return err
			}
			if err := finite64(where+" scale", s.Scale); err != nil {
				return err
			}
		case prep.Projection:
			if err := finite64(where+" mean", s.Mean); err != nil {
				return err
			}
			if err := finite64(where+" axes", s.Axes); err != nil {
				return err
			}
		default:
			return fmt.Errorf("onnx: preprocessing step %d is a %s, which the encoder cannot write; it writes %s and %s steps", i+1, s.Form, prep.Affine, prep.Projection)
		}
		if i > 0 && steps[i-1].Out != s.In {
			return fmt.Errorf("onnx: preprocessing step %d gives %d features, step %d takes %d", i, steps[i-1].Out, i+1, s.In)
		}
	}
	if len(v.Layers) == 0 {
		return errors.New("onnx: the model has no layer")
	}
	for i := range v.Layers {
		L := &v.Layers[i]
		where := fmt.Sprintf("onnx: layer %d (%d→%d)", i+1, L.In, L.Out)
		if i > 0 && v.Layers[i-1].Out != L.In {
			return fmt.Errorf("%s takes %d inputs, layer %d gives %d", where, L.In, i, v.Layers[i-1].Out)
		}
		if err := finite32(where+" biases", L.Biases); err != nil {
			return err
		}
		if L.Int8 {
			if err := finite32(where+" int8 scales", L.Scales); err != nil {
				return err
			}
			continue
		}
		if err := finite32(where+" weights", L.Weights); err != nil {
			return err
		}
	}
	if t := v.Spec.Task; t == nn.Regression {
		if err := finite32("onnx: the target's mean and deviation", []float32{v.TargetMean, v.TargetStd}); err != nil {
			return err
		}
	}
	return nil
}

func finite32(what string, vs []float32) error {
	for i, x := range vs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return fmt.Errorf("%s: value %d is %g; a model with non-finite parameters is not exported", what, i, x)
		}
	}
	return nil
}

func finite64(what string, vs []float64) error {
	for i, x := range vs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("%s: value %d is %g; a preprocessing with non-finite parameters is not exported", what, i, x)
		}
	}
	return nil
}

// builder accumulates a graph's nodes and initializers.
type builder struct {
	g graphProto
	// bytes counts the initializers' raw bytes.
	bytes int64
}

func (b *builder) input(name string, elem int32, shape []dim, doc string) string {
	b.g.inputs = append(b.g.inputs, valueInfo{name: name, elem: elem, shape: shape, doc: doc})
	return name
}

func (b *builder) output(name string, elem int32, shape []dim, doc string) {
	b.g.outputs = append(b.g.outputs, valueInfo{name: name, elem: elem, shape: shape, doc: doc})
}

// op adds a node named after its one output, out, and returns out.
func (b *builder) op(op, out string, inputs []string, attrs ...attribute) string {
	b.g.nodes = append(b.g.nodes, nodeProto{name: out, op: op, inputs: inputs, outs: []string{out}, attrs: attrs})
	return out
}

func (b *builder) tensor(name string, dtype int32, dims []int64, raw []byte) string {
	b.g.inits = append(b.g.inits, tensorProto{name: name, dims: dims, dtype: dtype, raw: raw})
	b.bytes += int64(len(raw))
	return name
}

func (b *builder) scalar(name string, v float32) string {
	return b.tensor(name, typeFloat, nil, f32raw([]float32{v}))
}

// prepStep adds one preprocessing step, in double, as prep's Apply computes
// it: (x - shift)·scale, or (x - mean)·axes.
func (b *builder) prepStep(p string, x string, s prep.StepView) string {
	if s.Form == prep.Affine {
		x = b.op("Sub", p+"/shifted", []string{x, b.tensor(p+"/shift", typeDouble, []int64{int64(s.In)}, f64raw(s.Shift))})
		return b.op("Mul", p+"/scaled", []string{x, b.tensor(p+"/scale", typeDouble, []int64{int64(s.In)}, f64raw(s.Scale))})
	}
	x = b.op("Sub", p+"/centred", []string{x, b.tensor(p+"/mean", typeDouble, []int64{int64(s.In)}, f64raw(s.Mean))})
	return b.op("MatMul", p+"/projected", []string{x, b.tensor(p+"/axes", typeDouble, []int64{int64(s.In), int64(s.Out)}, f64raw(s.Axes))})
}

// layer adds one dense layer, x·W + b and its ReLU, in float32 or as
// sweetspot's int8 kernel computes it (see the package documentation).
func (b *builder) layer(p string, x string, L *nn.LayerView) string {
	dims := []int64{int64(L.In), int64(L.Out)}
	var y string
	if L.Int8 {
		// The row's scale s = max|x|/127 and q = round(x·(1/s)); the scale
		// is floored at the smallest normal float for 1/s, so that a row of
		// zeros gives q = 0 and not 0·∞ (its sums, 0, are scaled by s = 0).
		mx := b.op("ReduceMax", p+"/absmax", []string{b.op("Abs", p+"/abs", []string{x})}, intsAttr("axes", 1), intAttr("keepdims", 1))
		s := b.op("Div", p+"/row_scale", []string{mx, b.scalar(p+"/q_max", 127)})
		safe := b.op("Max", p+"/row_scale_safe", []string{s, b.scalar(p+"/smallest_normal", math.SmallestNonzeroFloat32*(1<<23))})
		q := b.op("Mul", p+"/x_scaled", []string{x, b.op("Reciprocal", p+"/row_scale_inv", []string{safe})})
		q = b.op("Cast", p+"/x_q", []string{b.op("Round", p+"/x_rounded", []string{q})}, intAttr("to", int64(typeInt8)))
		acc := b.op("MatMulInteger", p+"/acc", []string{q, b.tensor(p+"/W_q", typeInt8, dims, i8raw(L.Quantized))})
		y = b.op("Cast", p+"/acc_f32", []string{acc}, intAttr("to", int64(typeFloat)))
		y = b.op("Mul", p+"/rescaled_row", []string{y, s})
		y = b.op("Mul", p+"/matmul", []string{y, b.tensor(p+"/W_scale", typeFloat, []int64{int64(L.Out)}, f32raw(L.Scales))})
	} else {
		y = b.op("MatMul", p+"/matmul", []string{x, b.tensor(p+"/W", typeFloat, dims, f32raw(L.Weights))})
	}
	y = b.op("Add", p+"/biased", []string{y, b.tensor(p+"/b", typeFloat, []int64{int64(L.Out)}, f32raw(L.Biases))})
	if L.ReLU {
		y = b.op("Relu", p+"/relu", []string{y})
	}
	return y
}

// jsonList writes names as a JSON array: a name may hold any character.
func jsonList(names []string) string {
	b, _ := json.Marshal(names) // strings always marshal
	return string(b)
}

func intAttr(name string, v int64) attribute { return attribute{name: name, typ: attrInt, i: v} }

func intsAttr(name string, vs ...int64) attribute {
	return attribute{name: name, typ: attrInts, ints: vs}
}

func f32raw(vs []float32) []byte {
	out := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func f64raw(vs []float64) []byte {
	out := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
	}
	return out
}

func i64raw(vs []int64) []byte {
	out := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint64(out, uint64(v))
	}
	return out
}

func i8raw(vs []int8) []byte {
	out := make([]byte, len(vs))
	for i, v := range vs {
		out[i] = byte(v)
	}
	return out
}
