package gomlxbench

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// The MLP and batch of plugins/internal/nn's BenchmarkTrain: 64 inputs, two
// ReLU hidden layers of the same width, 10 logits, softmax cross-entropy,
// Adam (β 0.9/0.999, ε 1e-8, learning rate 1e-4), mini-batches of 64.
const (
	inputs  = 64
	classes = 10
	batch   = 64
)

// trainFLOPs counts as plugins/internal/nn does: the forward product and
// the weight gradient of every layer, and the input gradient of every layer
// but the first (2·in·out each); bias, activation, loss and Adam work are
// left out. The same count on both sides makes the GFLOP/s ratio the ratio
// of samples per second.
func trainFLOPs(sizes []int) float64 {
	var f float64
	for l := 1; l < len(sizes); l++ {
		products := 2.0
		if l > 1 {
			products = 3
		}
		f += products * 2 * float64(sizes[l-1]) * float64(sizes[l])
	}
	return f
}

func mlp(width int) train.ModelFn {
	return func(ctx *context.Context, _ any, in []*graph.Node) []*graph.Node {
		x := in[0]
		for i := range 2 {
			x = layers.Dense(ctx.In(fmt.Sprintf("hidden_%d", i)), x, true, width)
			x = activations.Relu(x)
		}
		return []*graph.Node{layers.Dense(ctx.In("logits"), x, true, classes)}
	}
}

// newTrainer builds the trainer and one fixed batch of normal inputs and
// uniform labels, as BenchmarkTrain draws them.
func newTrainer(tb testing.TB, backend backends.Backend, width int) (*train.Trainer, *tensors.Tensor, *tensors.Tensor) {
	tb.Helper()
	ctx := context.New()
	opt := optimizers.Adam().LearningRate(1e-4).Epsilon(1e-8).Done()
	tr := train.NewTrainer(backend, ctx, mlp(width), losses.SparseCategoricalCrossEntropyLogits, opt, nil, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, batch*inputs)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	y := make([]int32, batch)
	for i := range y {
		y[i] = int32(rng.IntN(classes))
	}
	return tr, tensors.FromFlatDataAndDimensions(x, batch, inputs), tensors.FromFlatDataAndDimensions(y, batch, 1)
}

func step(tb testing.TB, tr *train.Trainer, x, y *tensors.Tensor) float32 {
	m, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
	if err != nil {
		tb.Fatal(err)
	}
	return tensors.ToScalar[float32](m[0])
}

// BenchmarkGoMLXTrain is the peer of plugins/internal/nn's BenchmarkTrain
// (same widths, sub-benchmark names, FLOP count and units). Goal: the
// sweetspot trainer reaches at least 1.5× these GFLOP/s.
func BenchmarkGoMLXTrain(b *testing.B) {
	backend, err := simplego.New("")
	if err != nil {
		b.Fatal(err)
	}
	defer backend.Finalize()
	for _, width := range []int{16, 64, 256, 1024} {
		b.Run(fmt.Sprintf("width=%d", width), func(b *testing.B) {
			tr, x, y := newTrainer(b, backend, width)
			// The first step compiles the graph and creates the variables:
			// not training, so it stays out of the timing.
			step(b, tr, x, y)
			for b.Loop() {
				step(b, tr, x, y)
			}
			s := b.Elapsed().Seconds()
			samples := float64(b.N) * batch
			b.ReportMetric(samples/s, "samples/s")
			b.ReportMetric(samples*trainFLOPs([]int{inputs, width, width, classes})/s/1e9, "GFLOP/s")
		})
	}
}

// TestGoMLXLearns checks that the benchmarked steps train: on a fixed batch
// the loss must fall, or the benchmark would time something else.
func TestGoMLXLearns(t *testing.T) {
	backend, err := simplego.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Finalize()
	tr, x, y := newTrainer(t, backend, 64)
	first := step(t, tr, x, y)
	var last float32
	for range 300 {
		last = step(t, tr, x, y)
	}
	if !(last < first*0.8) {
		t.Errorf("loss went from %g to %g in 300 Adam steps on one batch", first, last)
	}
}
