package exec

import (
	"context"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
)

// python3 skips the test when there is no python3, unless CI is set.
func python3(t *testing.T) {
	t.Helper()
	if _, err := osexec.LookPath("python3"); err != nil {
		testenv.Missing(t, "python3 is not on PATH (%v): the examples/exec trainer needs it", err)
	}
}

// examples/exec/train.py, run as examples/exec/pipeline.hcl runs it, trains
// real models: on blobs a wider MLP does not do worse than a narrow one,
// and a trainer that crashes is a failed trial with its traceback.
func TestPythonExample(t *testing.T) {
	python3(t)
	dir, err := filepath.Abs("../../examples/exec")
	if err != nil {
		t.Fatal(err)
	}
	mem := checked(t)
	ds := data(t, mem, dataset.GenBlobs, 600, 7, 0.25, 0)
	narrow, wide, crash := cand(4, 3, 1, 2), cand(4, 3, 1, 16), cand(4, 3, 1, 5)
	narrow.Epochs, wide.Epochs, crash.Epochs = 20, 20, 20
	st := Config{
		Command: []string{"python3", "train.py"}, BaseDir: dir, DatasetFormat: FormatCSV, Parallelism: ptr(2),
		Env: map[string]string{"TRAIN_FAIL_WIDTH": "5"},
	}
	rs, err := run(t, context.Background(), st, stagetest.Inputs{InputPort: candidates(t, mem, narrow, wide, crash), DatasetPort: ds})
	if err != nil {
		t.Fatal(err)
	}
	got := byID(rs)
	for _, c := range []string{narrow.ID, wide.ID} {
		r := got[c]
		t.Logf("%s: %s accuracy %.3f loss %.3f p95 %.4f ms, %d params, %.2f s", r.ID, r.Status, r.Accuracy, r.Loss, r.LatencyP95Ms, r.Params, r.TrainSeconds)
		if r.Status != "ok" {
			t.Fatalf("%s: %s %s", r.ID, r.Status, r.Error)
		}
		if r.EpochsRun != 20 || !(r.LatencyP95Ms > 0) || !(r.ThroughputPerS > 0) || r.ModelBytes != 8*r.Params || !(r.PeakBytes > 0) {
			t.Errorf("%s: epochs_run %d p95 %g throughput %g model_bytes %d params %d peak %d", r.ID, r.EpochsRun, r.LatencyP95Ms,
				r.ThroughputPerS, r.ModelBytes, r.Params, r.PeakBytes)
		}
		if n := len(trialSpan(t, c).Events()); n != 20 {
			t.Errorf("%s: %d epoch events, want 20", r.ID, n)
		}
	}
	// The trainer counts parameters as model_choice does.
	if r := got[wide.ID]; r.Params != wide.Params {
		t.Errorf("trainer counted %d params, model_choice %d", r.Params, wide.Params)
	}
	n, w := got[narrow.ID], got[wide.ID]
	if !(w.Accuracy > 0.75 && w.Accuracy >= n.Accuracy-0.03) {
		t.Errorf("accuracy: %s %.3f, %s %.3f; want the wider above 0.75 and not worse by more than 0.03", w.ID, w.Accuracy, n.ID, n.Accuracy)
	}
	r := got[crash.ID]
	if r.Status != "failed" || !strings.Contains(r.Error, "exit status 1") || !strings.Contains(r.Error, "RuntimeError: simulated crash: TRAIN_FAIL_WIDTH=5") ||
		!strings.Contains(r.Error, "Traceback") {
		t.Errorf("crashing trial: %s %q", r.Status, r.Error)
	}
}
