package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// benchBatch is the mini-batch of the training benchmarks.
const benchBatch = 64

// trainFLOPs is the matrix-product FLOPs of one training step per sample:
// the forward product and the weight gradient of every layer, and the input
// gradient of every layer but the first (2·in·out each). Bias, activation,
// loss and Adam work are left out, as in the FLOPs of a forward pass.
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

// BenchmarkTrain measures training steps (forward, backward, Adam) of a
// two-hidden-layer MLP on digits-shaped data (64 inputs, 10 classes) at
// several widths. Compare its GFLOP/s with BenchmarkSgemm's in the same run.
// Built with the blas tag its names start with the backend
// (openblas/width=64), so that one output holds both builds' figures
// (make bench-blas).
func BenchmarkTrain(b *testing.B) {
	for _, width := range []int{16, 64, 256, 1024} {
		b.Run(backendName(fmt.Sprintf("width=%d", width)), func(b *testing.B) {
			spec := Spec{Inputs: 64, Hidden: []int{width, width}, Outputs: 10}
			m := newMLP(spec)
			m.init(1)
			ws := m.newWorkspace(benchBatch)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range ws.xb {
				ws.xb[i] = float32(rng.NormFloat64())
			}
			for i := range ws.lb {
				ws.lb[i] = int32(rng.IntN(10))
			}
			b.ResetTimer()
			for b.Loop() {
				m.lossGrad(ws, benchBatch)
				m.adam(ws, 1e-4)
			}
			s := b.Elapsed().Seconds()
			samples := float64(b.N) * benchBatch
			b.ReportMetric(samples/s, "samples/s")
			b.ReportMetric(samples*trainFLOPs(m.sizes)/s/1e9, "GFLOP/s")
		})
	}
}

// predictBatches are the batches the inference benchmarks run: one row
// (the latency the evaluation stage reports), and the throughput batches.
var predictBatches = []int{1, 32, 256}

// benchPredict times forward passes of rows rows and reports the time per
// sample and the samples per second.
func benchPredict(b *testing.B, model Model, rows int) {
	p := model.NewPredictor(rows)
	x := make([]float32, rows*model.Spec().Inputs)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	for b.Loop() {
		p.Predict(x, rows)
	}
	s := b.Elapsed().Seconds() / float64(b.N) / float64(rows)
	b.ReportMetric(s*1e6, "µs/sample")
	b.ReportMetric(1/s, "samples/s")
}

// BenchmarkPredict measures forward passes of float32 and int8 models of
// two hidden layers at several widths and batches. The int8 model's goal
// is to be at least as fast as the float32 one from width 64 up.
func BenchmarkPredict(b *testing.B) {
	for _, width := range []int{16, 64, 256, 1024} {
		m := newMLP(Spec{Inputs: 64, Hidden: []int{width, width}, Outputs: 10})
		m.init(1)
		q, _ := m.Compress(Compression{Int8: true})
		for _, batch := range predictBatches {
			for _, c := range []struct {
				name  string
				model Model
			}{{"float32", m}, {"int8", q}} {
				b.Run(fmt.Sprintf("width=%d/batch=%d/%s", width, batch, c.name), func(b *testing.B) {
					benchPredict(b, c.model, batch)
				})
			}
		}
	}
}

// BenchmarkPruned measures pruned models, float32 and int8, beside the
// unpruned ones: their bytes and their forward passes (batch 1 and 256).
func BenchmarkPruned(b *testing.B) {
	for _, width := range []int{256, 1024} {
		m := newMLP(Spec{Inputs: 64, Hidden: []int{width, width}, Outputs: 10})
		m.init(1)
		for _, int8 := range []bool{false, true} {
			for _, frac := range []float64{0, 0.25, 0.5, 0.75, 0.9, 0.95} {
				model, _ := m.Compress(Compression{PruneFraction: frac, Int8: int8})
				kind := "float32"
				if int8 {
					kind = "int8"
				}
				for _, batch := range []int{1, 256} {
					b.Run(fmt.Sprintf("width=%d/%s/prune=%d/batch=%d", width, kind, int(math.Round(frac*100)), batch), func(b *testing.B) {
						benchPredict(b, model, batch)
						b.ReportMetric(float64(model.Bytes()), "bytes")
					})
				}
			}
		}
	}
}

// BenchmarkSgemm is the matrix-product peak the trainer is measured
// against: gonum's blas32.Gemm as shipped (parallel over GOMAXPROCS from
// four 64×64 blocks of C up), and the serial tiling every fit uses, on
// square products up to n = 2048, past the trainer's largest (1024 wide),
// so that the peak is one the trainer cannot exceed. Built with the blas
// tag it measures the one product the trainer calls, OpenBLAS's, as
// openblas/n=N.
func BenchmarkSgemm(b *testing.B) {
	for _, n := range []int{64, 256, 512, 1024, 2048} {
		a, bm, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range a {
			a[i], bm[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		flops := 2 * float64(n) * float64(n) * float64(n)
		if Backend != "gonum" {
			b.Run(backendName(fmt.Sprintf("n=%d", n)), func(b *testing.B) {
				for b.Loop() {
					gemm(false, false, n, n, n, 1, a, n, bm, n, 0, c, n)
				}
				b.ReportMetric(float64(b.N)*flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
			continue
		}
		b.Run(fmt.Sprintf("blas32/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
					blas32.General{Rows: n, Cols: n, Stride: n, Data: a},
					blas32.General{Rows: n, Cols: n, Stride: n, Data: bm},
					0, blas32.General{Rows: n, Cols: n, Stride: n, Data: c})
			}
			b.ReportMetric(float64(b.N)*flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprintf("serial/n=%d", n), func(b *testing.B) {
			for b.Loop() {
				gemm(false, false, n, n, n, 1, a, n, bm, n, 0, c, n)
			}
			b.ReportMetric(float64(b.N)*flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// backendName is a benchmark's name in this build: as is with gonum's
// products, after the backend's name with another (openblas/width=64).
func backendName(name string) string {
	if Backend == "gonum" {
		return name
	}
	return Backend + "/" + name
}
