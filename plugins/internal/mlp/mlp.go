// Package mlp counts the built-in trainer's models: the parameters and
// FLOPs of an MLP (a chain of dense layers) and its size on each task.
// model_choice counts its candidates with it, and resize counts the
// widths it proposes, so both count alike.
package mlp

import (
	"fmt"

	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Count returns the exact parameter count and forward FLOPs per sample of
// the chain of dense layers through the given sizes (inputs first, outputs
// last). For each dense layer in→out:
//
//	params = in*out + out          (weights and biases)
//	flops  = 2*in*out + out        (a multiply and an add per weight, an add per bias)
//
// Activations and the final softmax are not counted: they are O(width)
// against O(width²) and depend on the runtime.
func Count(sizes []int64) (params, flops int64) {
	for i := 1; i < len(sizes); i++ {
		in, out := sizes[i-1], sizes[i]
		params += in*out + out
		flops += 2*in*out + out
	}
	return params, flops
}

// LayerSizes returns the layer sizes of an MLP: inputs, depth hidden layers
// of width, outputs.
func LayerSizes(inputs, depth, width, outputs int64) []int64 {
	sizes := make([]int64, 0, depth+2)
	sizes = append(sizes, inputs)
	for range depth {
		sizes = append(sizes, width)
	}
	return append(sizes, outputs)
}

// Outputs is the size of a model's output layer for a task: the class
// count (2 for a binary task: a softmax over two logits, so binary and
// multi-class models are built and counted alike), or 1 for regression.
func Outputs(task string, classes int64) int64 {
	if task == tables.Regression {
		return 1
	}
	return classes
}

// Name is the name of the MLP of a family, depth and width:
// "mlp-d2-w64", or "linear-d0-w0" for the baseline.
func Name(family string, depth, width int) string {
	return fmt.Sprintf("%s-d%d-w%d", family, depth, width)
}

// Knobs are an MLP's knobs: its depth and width.
func Knobs(depth, width int) tables.Knobs {
	return tables.Knobs{"depth": float64(depth), "width": float64(width)}
}
