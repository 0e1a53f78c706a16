package fit

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
)

// BenchmarkScalingSweep fits the law of loss against size and data to a
// sweep of real training runs and predicts the runs held back.
// Fashion-MNIST (Debian's dataset-fashion-mnist: 60000 training and 10000
// test images of 28x28 pixels, 10 classes): MLPs of depth 1 and widths 8
// to 128, trained by the built-in trainer (Adam, learning rate 0.003,
// batches of 64, at most 50 epochs, early stopping after 5 epochs without
// a lower loss on a tenth of the rows) on the first 1000 to 16000
// training images; the 10000 test images measure every run's loss. The
// law is fitted on the runs of width at most 32 and at most 4000 images;
// the others are held back and predicted, each with the 90% interval of
// one run's measurement (ScalingFit.RunBand). It reports the share of
// held-back runs inside their interval and the prediction's error on the
// largest (width 128 on 16000 images: four times the widest and the most
// data fitted), and logs every run.
func BenchmarkScalingSweep(b *testing.B) {
	dir := "/usr/share/datasets/fashion-mnist"
	train, err := readIDX(filepath.Join(dir, "train-images-idx3-ubyte.gz"), filepath.Join(dir, "train-labels-idx1-ubyte.gz"))
	if err != nil {
		testenv.Missing(b, "Fashion-MNIST (Debian's dataset-fashion-mnist, which make fashion-mnist installs): %v", err)
	}
	test, err := readIDX(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"))
	if err != nil {
		b.Fatal(err)
	}
	widths := []int{8, 16, 32, 64, 128}
	rows := []int{1000, 2000, 4000, 8000, 16000}
	fitted := func(w, r int) bool { return w <= 32 && r <= 4000 }
	type run struct {
		w, rows int
		params  float64
		loss    float64
	}
	var runs []run
	for b.Loop() {
		runs = runs[:0]
		for _, r := range rows {
			sub := train.Subset(first(r))
			for _, w := range widths {
				spec := nn.Spec{Inputs: train.Cols, Hidden: []int{w}, Outputs: 10, Task: nn.Classification}
				m, _, err := nn.Gonum{}.Fit(context.Background(), spec, sub, nil, nn.Config{LearningRate: 0.003, BatchSize: 64, Epochs: 50, Patience: 5, Seed: 1})
				if err != nil {
					b.Fatal(err)
				}
				met, err := nn.Evaluate(m, test)
				if err != nil {
					b.Fatal(err)
				}
				runs = append(runs, run{w: w, rows: r, params: float64(spec.Params()), loss: met.Loss})
			}
		}
	}
	var n, d, y []float64
	for _, r := range runs {
		if fitted(r.w, r.rows) {
			n, d, y = append(n, r.params), append(d, float64(r.rows)), append(y, r.loss)
		}
	}
	f, err := FitScaling(n, d, y, ScalingOptions{Bootstrap: 400, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("law fitted on %d runs: E %.3g [%.3g, %.3g], alpha %.3g [%.3g, %.3g], beta %.3g [%.3g, %.3g], RMSLE %.3g",
		f.Runs, f.E, f.ECI.Lo, f.ECI.Hi, f.Alpha, f.AlphaCI.Lo, f.AlphaCI.Hi, f.Beta, f.BetaCI.Lo, f.BetaCI.Hi, f.RMSLE)
	var held, inside int
	var last run
	var lastBand Interval
	for _, r := range runs {
		status := "fitted"
		band := f.RunBand(r.params, float64(r.rows))
		pred := f.At(r.params, float64(r.rows))
		if !fitted(r.w, r.rows) {
			status = "held back"
			held++
			if band.Contains(r.loss) {
				inside++
			}
			last, lastBand = r, band
		}
		b.Logf("%-9s width %3d  rows %5d  params %6.0f  loss measured %.4f  predicted %.4f [%.4f, %.4f]  error %+.1f%%",
			status, r.w, r.rows, r.params, r.loss, pred, band.Lo, band.Hi, 100*(pred/r.loss-1))
	}
	pred := f.At(last.params, float64(last.rows))
	b.ReportMetric(float64(inside)/float64(held), "held-inside-90%")
	b.ReportMetric(100*(pred/last.loss-1), "largest-error-%")
	b.ReportMetric(100*(lastBand.Hi-lastBand.Lo)/2/pred, "largest-halfwidth-%")
}

// first returns the indices 0..k−1.
func first(k int) []int {
	out := make([]int, k)
	for i := range out {
		out[i] = i
	}
	return out
}

// readIDX reads gzipped IDX images (unsigned bytes, scaled to [0, 1])
// and their labels.
func readIDX(images, labels string) (*nn.Data, error) {
	img, err := gunzip(images)
	if err != nil {
		return nil, err
	}
	lab, err := gunzip(labels)
	if err != nil {
		return nil, err
	}
	if len(img) < 16 || binary.BigEndian.Uint32(img) != 0x803 || len(lab) < 8 || binary.BigEndian.Uint32(lab) != 0x801 {
		return nil, fmt.Errorf("%s, %s: not IDX images and labels", images, labels)
	}
	n := int(binary.BigEndian.Uint32(img[4:]))
	cols := int(binary.BigEndian.Uint32(img[8:]) * binary.BigEndian.Uint32(img[12:]))
	if len(img) != 16+n*cols || len(lab) != 8+n {
		return nil, fmt.Errorf("%s, %s: sizes do not match their headers", images, labels)
	}
	d := &nn.Data{Rows: n, Cols: cols, X: make([]float32, n*cols), Labels: make([]int32, n)}
	for i, v := range img[16:] {
		d.X[i] = float32(v) / 255
	}
	for i, v := range lab[8:] {
		d.Labels[i] = int32(v)
	}
	return d, nil
}

func gunzip(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return io.ReadAll(z)
}
