// Package nn is the trainer behind the evaluation and optimization stages: a
// compact float32 multi-layer perceptron on gonum's blas32, with post-training
// int8 quantization and magnitude pruning.
//
// The stages see it through two small interfaces, Trainer and Model, so that
// another backend (GoMLX for convolutions or a GPU, OpenBLAS through gonum's
// netlib binding) can be added without touching them. Gonum is the backend
// here.
//
// # The model
//
// A chain of dense layers inputs→hidden…→outputs with ReLU between them;
// no hidden layer is the linear (logistic or least-squares) baseline.
// Classification trains a softmax over one logit per class with
// cross-entropy; regression trains one output with mean squared error on a
// target standardized with the training rows' mean and deviation (undone on
// prediction, so predictions and reported losses are in the target's units).
// Hidden layers start from He initialization, the output layer from Glorot's;
// biases start at zero.
//
// # Training
//
// Adam (β1 0.9, β2 0.999, ε 1e-8) on mini-batches drawn in a seeded shuffle,
// epoch after epoch. With validation rows (given, or held out from the
// training rows by a seeded draw when none are given) the model returned is
// the one of the epoch with the lowest validation loss, and training stops
// after Patience epochs without a new lowest. A loss that turns NaN or
// infinite stops training with ErrDiverged.
//
// # Determinism
//
// The same spec, data and config give bit-identical weights and metrics. A
// fit runs on the calling goroutine: the trainer starts none, and every
// matrix product goes through gemm, which keeps gonum's Sgemm on its serial
// path, so parallelism belongs to the caller (one fit per goroutine). Only
// MaxTime makes a fit depend on the clock.
//
// # Counting
//
// Params and FLOPs follow the model_choice stage's formulas, per dense layer
// in→out: params = in·out + out, flops = 2·in·out + out, summed over layers.
// A pruned model stored sparse counts only the weights pruning kept.
package nn

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Task is what a model predicts.
type Task uint8

const (
	Classification Task = iota
	Regression
)

func (t Task) String() string {
	if t == Regression {
		return "regression"
	}
	return "classification"
}

// Spec is the shape of a model.
type Spec struct {
	Inputs int
	// Hidden holds the width of each hidden layer; none is the linear model.
	Hidden []int
	// Outputs is the number of classes (at least 2) or 1 for regression.
	Outputs int
	Task    Task
}

// Sizes returns the layer sizes: inputs, each hidden width, outputs.
func (s Spec) Sizes() []int {
	out := make([]int, 0, len(s.Hidden)+2)
	out = append(out, s.Inputs)
	out = append(out, s.Hidden...)
	return append(out, s.Outputs)
}

// maxLayerSize bounds every layer so that weight counts stay far from
// overflow and a typo cannot ask for terabytes.
const maxLayerSize = 1 << 20

// Validate reports why a spec cannot be built, or nil.
func (s Spec) Validate() error {
	if s.Inputs < 1 || s.Inputs > maxLayerSize {
		return fmt.Errorf("nn: %d inputs; want 1 to %d", s.Inputs, maxLayerSize)
	}
	for i, w := range s.Hidden {
		if w < 1 || w > maxLayerSize {
			return fmt.Errorf("nn: hidden layer %d has width %d; want 1 to %d", i+1, w, maxLayerSize)
		}
	}
	switch s.Task {
	case Classification:
		if s.Outputs < 2 || s.Outputs > maxLayerSize {
			return fmt.Errorf("nn: classification needs 2 to %d outputs (one per class), not %d", maxLayerSize, s.Outputs)
		}
	case Regression:
		if s.Outputs != 1 {
			return fmt.Errorf("nn: regression has 1 output, not %d", s.Outputs)
		}
	default:
		return fmt.Errorf("nn: unknown task %d", s.Task)
	}
	return nil
}

// Params returns the exact parameter count: Σ in·out + out over layers.
func (s Spec) Params() int64 {
	sizes := s.Sizes()
	var p int64
	for l := 1; l < len(sizes); l++ {
		in, out := int64(sizes[l-1]), int64(sizes[l])
		p += in*out + out
	}
	return p
}

// FLOPs returns the exact forward FLOPs per sample: Σ 2·in·out + out.
func (s Spec) FLOPs() int64 {
	sizes := s.Sizes()
	var f int64
	for l := 1; l < len(sizes); l++ {
		in, out := int64(sizes[l-1]), int64(sizes[l])
		f += 2*in*out + out
	}
	return f
}

// Data is a set of rows: features row-major, one target per row.
type Data struct {
	// X holds Rows×Cols features, row after row.
	X          []float32
	Rows, Cols int
	// Labels holds class indices (classification).
	Labels []int32
	// Targets holds target values (regression).
	Targets []float32
}

// Check reports whether d is well formed for spec.
func (d *Data) Check(s Spec) error {
	if d == nil {
		return errors.New("nn: no data")
	}
	if d.Cols != s.Inputs {
		return fmt.Errorf("nn: data has %d features, the model %d inputs", d.Cols, s.Inputs)
	}
	if len(d.X) != d.Rows*d.Cols {
		return fmt.Errorf("nn: data holds %d values for %d rows of %d features", len(d.X), d.Rows, d.Cols)
	}
	switch s.Task {
	case Classification:
		if len(d.Labels) != d.Rows {
			return fmt.Errorf("nn: %d labels for %d rows", len(d.Labels), d.Rows)
		}
		for i, l := range d.Labels {
			if l < 0 || int(l) >= s.Outputs {
				return fmt.Errorf("nn: row %d has label %d, outside 0..%d", i, l, s.Outputs-1)
			}
		}
	case Regression:
		if len(d.Targets) != d.Rows {
			return fmt.Errorf("nn: %d targets for %d rows", len(d.Targets), d.Rows)
		}
	}
	return nil
}

// Subset returns the rows of d at idx, copied.
func (d *Data) Subset(idx []int) *Data {
	out := &Data{Rows: len(idx), Cols: d.Cols, X: make([]float32, len(idx)*d.Cols)}
	for k, i := range idx {
		copy(out.X[k*d.Cols:(k+1)*d.Cols], d.X[i*d.Cols:(i+1)*d.Cols])
	}
	if d.Labels != nil {
		out.Labels = make([]int32, len(idx))
		for k, i := range idx {
			out.Labels[k] = d.Labels[i]
		}
	}
	if d.Targets != nil {
		out.Targets = make([]float32, len(idx))
		for k, i := range idx {
			out.Targets[k] = d.Targets[i]
		}
	}
	return out
}

// Config says how to train.
type Config struct {
	LearningRate float64
	BatchSize    int
	Epochs       int
	// Patience is the number of epochs without a new lowest validation loss
	// after which training stops; 0 trains every epoch (the model returned is
	// still the one with the lowest validation loss).
	Patience int
	Seed     uint64
	// HoldoutFraction is the share of training rows held out for validation
	// when Fit gets no validation rows (default 0.1; negative holds out none).
	HoldoutFraction float64
	// MaxTime stops training at the first mini-batch that ends past it; 0 is
	// no limit. The epoch under way when time runs out counts as run.
	MaxTime time.Duration
	// NoisePatience, with validation rows, lets the curve's measured noise
	// lengthen Patience while the validation loss is still improving
	// (NoisePatience in patience.go has the rule); Patience is then the
	// least patience.
	NoisePatience bool
	// OnEpoch, when set, is called after each epoch.
	OnEpoch func(EpochStats)
	// Stop, when set, is asked after each epoch (after OnEpoch) whether
	// training should end there: true stops it with StoppedBy
	// StoppedPruner, keeping the best weights so far.
	Stop func(EpochStats) bool
}

// EpochStats is one epoch's outcome.
type EpochStats struct {
	Epoch int // 1-based
	// Loss is the mean training loss over the epoch's mini-batches.
	Loss float64
	// ValLoss is the validation loss after the epoch; NaN without
	// validation rows.
	ValLoss float64
	// ValAccuracy is the validation accuracy after the epoch; NaN for
	// regression or without validation rows.
	ValAccuracy float64
	// Patience is the patience in force after the epoch: Config.Patience,
	// or more with NoisePatience.
	Patience int
}

// Stop reasons.
const (
	StoppedEpochs   = "epochs"
	StoppedEarly    = "early_stopping"
	StoppedMaxTime  = "max_train_time"
	StoppedCanceled = "canceled"
	// StoppedPruner: Config.Stop said so (a pruner judging the trial
	// against others).
	StoppedPruner = "pruner"
)

// Report is what a fit did.
type Report struct {
	EpochsRun int
	// BestEpoch is the epoch whose weights were returned.
	BestEpoch int
	// BestValLoss is the validation loss of the returned weights (NaN
	// without validation rows).
	BestValLoss float64
	// TrainLoss is the last epoch's mean training loss.
	TrainLoss float64
	StoppedBy string
	History   []EpochStats
	// ValidationRows is the number of rows early stopping watched, given or
	// held out.
	ValidationRows int
	// PeakBytes is the high-water mark of the tensors the fit allocated:
	// parameters, gradients, Adam moments, the best-weights snapshot, the
	// mini-batch activations and their gradients, the evaluation buffers,
	// the shuffled index and the held-out validation rows. The data passed
	// in are not counted: callers share them between fits.
	PeakBytes int64
}

// ErrDiverged is wrapped by the error of a fit whose loss became NaN or
// infinite.
var ErrDiverged = errors.New("training diverged")

// Trainer fits models. Implementations must be deterministic for a given
// seed and safe for concurrent fits.
type Trainer interface {
	// Fit trains a model of the given shape on train, watching valid (may
	// be nil) for early stopping. A canceled ctx ends the fit with ctx's
	// error.
	Fit(ctx context.Context, spec Spec, train, valid *Data, cfg Config) (Model, Report, error)
}

// Model is a trained model.
type Model interface {
	Spec() Spec
	// Params is the parameter count: Spec().Params() for a dense model;
	// for a pruned one the weights it stores and its biases
	// (Spec().StoredParams).
	Params() int64
	// NonZero counts the weights and biases that are not zero.
	NonZero() int64
	// FLOPs is the dense forward FLOPs per sample (Spec().FLOPs()).
	FLOPs() int64
	// Bytes is the size of the model's serialized form, len(MarshalBinary()).
	Bytes() int64
	MarshalBinary() ([]byte, error)
	// NewPredictor returns a predictor for batches of up to maxBatch rows.
	// A predictor is not safe for concurrent use; a model is.
	NewPredictor(maxBatch int) Predictor
}

// Predictor runs forward passes.
type Predictor interface {
	// Predict returns the outputs of rows rows of x (rows×Outputs: logits
	// for classification, target values for regression), in a buffer valid
	// until the next call. rows must not exceed the predictor's maxBatch.
	Predict(x []float32, rows int) []float32
	// Bytes is the size of the predictor's buffers.
	Bytes() int64
}

// Compression says how to shrink a trained model.
type Compression struct {
	// PruneFraction of each layer's weights, the smallest in magnitude, are
	// set to zero (biases are kept). 0 prunes nothing.
	PruneFraction float64
	// Int8 quantizes the weights to int8 with a symmetric scale per output
	// unit; the forward pass then runs in int8 with int32 accumulation.
	Int8 bool
}

// Compressor is implemented by models that can be pruned and quantized.
type Compressor interface {
	Compress(c Compression) (Model, error)
}

// Compress prunes and quantizes m as c says, when m's backend can.
func Compress(m Model, c Compression) (Model, error) {
	if !(c.PruneFraction >= 0 && c.PruneFraction < 1) {
		return nil, fmt.Errorf("nn: prune fraction %g is outside [0, 1)", c.PruneFraction)
	}
	cm, ok := m.(Compressor)
	if !ok {
		return nil, fmt.Errorf("nn: a %T cannot be pruned or quantized", m)
	}
	return cm.Compress(c)
}
