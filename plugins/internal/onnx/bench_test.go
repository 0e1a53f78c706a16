package onnx_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/onnx"
)

// benchWidths and benchBatches are BenchmarkONNXRuntime's models and
// batches; tools/benchdoc renders the same grid.
var (
	benchWidths  = []int{16, 64, 256, 1024}
	benchBatches = []int{1, 256}
)

// benchModel is a 64-W-W-10 classifier (BenchmarkPredict's shape in nn),
// fitted for one epoch on random rows: the weights' values do not change
// the work, only their shape does.
func benchModel(b *testing.B, width int) nn.Model {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, uint64(width)))
	d := &nn.Data{Rows: 256, Cols: 64, X: make([]float32, 256*64), Labels: make([]int32, 256)}
	for i := range d.X {
		d.X[i] = float32(rng.NormFloat64())
	}
	for i := range d.Labels {
		d.Labels[i] = int32(rng.IntN(10))
	}
	spec := nn.Spec{Inputs: 64, Hidden: []int{width, width}, Outputs: 10}
	m, _, err := nn.Gonum{}.Fit(context.Background(), spec, d, nil, nn.Config{LearningRate: 1e-3, BatchSize: 64, Epochs: 1, HoldoutFraction: -1, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkONNXRuntime times each exported model in ONNX Runtime for
// Node.js (CPU, one intra-op thread, every graph optimization) beside
// sweetspot's own predictor of the same model in the same run: float32 and
// int8, widths 16 to 1024, batches of 1 and 256 rows. The ONNX Runtime
// figure is a session.run call from JavaScript (feeds and fetches
// included) timed by ort.js for about a second after a warm-up; sweetspot's
// is Predict on the calling goroutine.
func BenchmarkONNXRuntime(b *testing.B) {
	dir := ortDir(b)
	tmp := b.TempDir()
	for _, width := range benchWidths {
		base := benchModel(b, width)
		for _, kind := range []string{"float32", "int8"} {
			model := base
			if kind == "int8" {
				var err error
				if model, err = nn.Compress(base, nn.Compression{Int8: true}); err != nil {
					b.Fatal(err)
				}
			}
			enc, err := onnx.Encode(model, nil, onnx.Options{})
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(tmp, fmt.Sprintf("w%d-%s.onnx", width, kind))
			if err := os.WriteFile(path, enc, 0o644); err != nil {
				b.Fatal(err)
			}
			for _, batch := range benchBatches {
				prefix := fmt.Sprintf("width=%d/%s/batch=%d", width, kind, batch)
				b.Run(prefix+"/sweetspot", func(b *testing.B) {
					p := model.NewPredictor(batch)
					x := make([]float32, batch*64)
					for i := range x {
						x[i] = float32((i*7919)%1000)/250 - 2
					}
					for b.Loop() {
						p.Predict(x, batch)
					}
					b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/float64(batch)*1e6, "µs/sample")
				})
				// ort.js does its own timing loop: one run of it serves
				// every b.N the framework asks for.
				var res struct {
					Runs    int     `json:"runs"`
					NsPerOp float64 `json:"ns_per_op"`
				}
				b.Run(prefix+"/onnxruntime", func(b *testing.B) {
					if res.Runs == 0 {
						out := node(b, dir, filepath.Join(dir, "ort.js"), "bench", path, "64", strconv.Itoa(batch), "1000")
						if err := json.Unmarshal(out, &res); err != nil || res.Runs == 0 {
							b.Fatalf("ort.js bench printed %q (%v)", out, err)
						}
					}
					b.ReportMetric(res.NsPerOp, "ns/op")
					b.ReportMetric(res.NsPerOp/float64(batch)/1e3, "µs/sample")
				})
			}
		}
	}
}
