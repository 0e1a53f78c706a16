package exec

import (
	"compress/gzip"
	"encoding/binary"
	"io"
	"math"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/onnx/ortrun"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// fashionMNIST is Debian's dataset-fashion-mnist, which examples/pytorch
// trains on.
const fashionMNIST = "/usr/share/datasets/fashion-mnist"

// torch is Debian's Python with python3-torch and the dataset, which make
// test installs (python-torch); without them the test fails under make
// test and CI.
func torch(t *testing.T) string {
	t.Helper()
	if out, err := osexec.Command("/usr/bin/python3", "-c", "import torch").CombinedOutput(); err != nil {
		testenv.Missing(t, "/usr/bin/python3 cannot import torch (%v: %s): run `make python-torch`", err, out)
	}
	if _, err := os.Stat(filepath.Join(fashionMNIST, "t10k-images-idx3-ubyte.gz")); err != nil {
		testenv.Missing(t, "no Fashion-MNIST (%v): run `make python-torch`", err)
	}
	return "/usr/bin/python3"
}

// readIDX reads a gzipped IDX file of unsigned bytes: its dimensions and
// values. It is written here from the format's description, apart from
// the trainer (which reads the same files with Python).
func readIDX(t *testing.T, name string) ([]int, []byte) {
	t.Helper()
	f, err := os.Open(filepath.Join(fashionMNIST, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 4 || raw[0] != 0 || raw[1] != 0 || raw[2] != 0x08 {
		t.Fatalf("%s: not an IDX file of unsigned bytes", name)
	}
	nd := int(raw[3])
	dims, n := make([]int, nd), 1
	for i := range dims {
		dims[i] = int(binary.BigEndian.Uint32(raw[4+4*i:]))
		n *= dims[i]
	}
	body := raw[4+4*nd:]
	if len(body) != n {
		t.Fatalf("%s: %d values, want %d", name, len(body), n)
	}
	return dims, body
}

// examples/pytorch's trainer, run by the stage as its pipeline runs it,
// keeps each trial's model.onnx in the models port; ONNX Runtime, which
// we did not write, runs the kept bytes on the images the trainer
// measured (the first EVAL_ROWS test images, read here from the IDX
// files) and gets the accuracy the trial recorded.
func TestPyTorchArtifactInONNXRuntime(t *testing.T) {
	py := torch(t)
	ortrun.Dir(t) // fail early without ONNX Runtime
	dir, err := filepath.Abs("../../examples/pytorch")
	if err != nil {
		t.Fatal(err)
	}
	const evalRows = 400
	mem := checked(t)
	c2 := convnet("convnet-c2", "convnet-c2", 2, tables.Knobs{"channels": 2.0})
	c6 := convnet("convnet-c6", "convnet-c6", 6, tables.Knobs{"channels": 6.0})
	for _, c := range []*tables.Candidate{&c2, &c6} {
		c.Epochs, c.BatchSize, c.LearningRate = 2, 64, 0.005
	}
	rs, ms := runModels(t, Config{
		Command: []string{py, "train.py"}, BaseDir: dir, Artifact: "model.onnx", Threads: ptr(1), Parallelism: ptr(2),
		Env: map[string]string{"TRAIN_ROWS": "1500", "EVAL_ROWS": "400"},
	}, stagetest.Inputs{InputPort: candidates(t, mem, c2, c6)})
	acc := map[string]float64{}
	for _, r := range rs {
		if r.Status != tables.StatusOK {
			t.Fatalf("%s: %s %s", r.ID, r.Status, r.Error)
		}
		acc[r.ID] = r.Accuracy
	}
	if len(ms) != 2 {
		t.Fatalf("%d models rows, want one per trial", len(ms))
	}

	dims, images := readIDX(t, "t10k-images-idx3-ubyte.gz")
	_, labels := readIDX(t, "t10k-labels-idx1-ubyte.gz")
	pixels := dims[1] * dims[2]
	x := make([]float64, evalRows*pixels)
	for i := range x {
		// The trainer's scaling, in float32: byte / 255.
		x[i] = float64(float32(images[i]) / 255)
	}
	var jobs []ortrun.Job
	for _, m := range ms {
		if m.Format != tables.FormatONNX || m.Artifact != "model.onnx" || m.Digest != sha(t, m.Bytes) {
			t.Fatalf("%s: format %q artifact %q digest %s", m.ID, m.Format, m.Artifact, m.Digest)
		}
		if m.Accuracy != acc[m.ID] {
			t.Errorf("%s: models row accuracy %g, results row %g", m.ID, m.Accuracy, acc[m.ID])
		}
		jobs = append(jobs, ortrun.Job{Model: m.Bytes, X: x, Rows: evalRows, Cols: pixels,
			Dims: []int{evalRows, 1, dims[1], dims[2]}, Type: "float32"})
	}
	outs := ortrun.Run(t, jobs)
	for i, m := range ms {
		logits := outs[i]["logits"]
		if len(logits.Dims) != 2 || logits.Dims[0] != evalRows || logits.Dims[1] != 10 {
			t.Fatalf("%s: logits of shape %v, want [%d 10]", m.ID, logits.Dims, evalRows)
		}
		right := 0
		for r := range evalRows {
			best := 0
			for k := range 10 {
				if logits.Data[r*10+k] > logits.Data[r*10+best] {
					best = k
				}
			}
			if best == int(labels[r]) {
				right++
			}
		}
		got := float64(right) / evalRows
		t.Logf("%s: accuracy %.4f in ONNX Runtime, %.4f recorded", m.ID, got, acc[m.ID])
		// The same float32 model on the same images: at most one image
		// may tip the other way, where two logits nearly tie.
		if math.Abs(got-acc[m.ID]) > 1.0/evalRows+1e-9 {
			t.Errorf("%s: accuracy %.4f in ONNX Runtime, %.4f recorded", m.ID, got, acc[m.ID])
		}
		if got < 0.3 {
			t.Errorf("%s: accuracy %.4f, no better than a guess (0.1)", m.ID, got)
		}
	}
}
