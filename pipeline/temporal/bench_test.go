package temporal_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// The numbers of issue 6, measured on the real thing (dev server, worker
// processes, plugins); benchmarks, not timed tests. Run them with
//
//	go test ./pipeline/temporal -run '^$' -bench . -benchtime 1x

// trivialSweep writes a pipeline whose trials do almost nothing (one
// epoch on a few rows, one latency sample): what is left is scheduling.
func trivialSweep(tb testing.TB, dir string, steps int) string {
	tb.Helper()
	src := fmt.Sprintf(`
dataset "spirals" {
  generator     = "spirals"
  rows          = 200
  test_fraction = 0.25
  seed          = 7
}

stage "requirements" "sla" {
  dataset      = dataset.spirals
  min_accuracy = 0.5
}

stage "model_choice" "mlp" {
  input = stage.requirements.sla
  depth = [1, 2]
  width = { min = 4, max = 64 }
  steps = %d
}

stage "evaluation" "train" {
  input            = stage.model_choice.mlp
  dataset          = dataset.spirals
  epochs           = 1
  latency_samples  = 1
  throughput_batch = 8
}
`, steps)
	path := filepath.Join(dir, "trivial.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// evaluation returns how long the run's evaluation stage took (summed over
// rounds) and its trials.
func evaluation(tb testing.TB, m runstore.Manifest) (time.Duration, int) {
	tb.Helper()
	ev := stageRecord(m, "evaluation.train")
	if ev == nil || m.Status != runstore.StatusSucceeded {
		tb.Fatalf("run %s: %s %s", m.RunID, m.Status, m.Error)
	}
	var took time.Duration
	trials := 0
	for _, e := range ev.Executions {
		took += e.Took
		for _, f := range e.Files {
			trials += int(f.Rows)
		}
	}
	return took, trials
}

func (cl *cluster) timedRun(tb testing.TB, logName string, args ...string) runstore.Manifest {
	before := cl.runIDs()
	cmd := cl.startRun(logName, args...)
	cl.wait(cmd, logName)
	return load(tb, cl.root, cl.newRun(before).ID())
}

// BenchmarkTrialOverhead compares the time per trivial trial of the
// evaluation stage run locally (one plugin process, trials one after the
// other) and on one Temporal worker running one activity at a time (a
// plugin process per trial activity, descriptors through Temporal, files
// through the run store).
func BenchmarkTrialOverhead(b *testing.B) {
	cl := newCluster(b)
	cl.worker("w1", 1, "cpu")
	path := trivialSweep(b, b.TempDir(), 12)
	for range b.N {
		local := cl.timedRun(b, "bench-local.log", path)
		lt, ln := evaluation(b, local)
		remote := cl.timedRun(b, "bench-temporal.log", "--engine", "temporal", "--temporal", cl.addr, path)
		rt, rn := evaluation(b, remote)
		if ln != rn {
			b.Fatalf("local run had %d trials, Temporal run %d", ln, rn)
		}
		perLocal := float64(lt.Milliseconds()) / float64(ln)
		perTemporal := float64(rt.Milliseconds()) / float64(rn)
		b.ReportMetric(float64(ln), "trials")
		b.ReportMetric(perLocal, "local-ms/trial")
		b.ReportMetric(perTemporal, "temporal-ms/trial")
		b.ReportMetric(perTemporal-perLocal, "overhead-ms/trial")
	}
}

// BenchmarkTwoWorkersSpeedup runs the end-to-end test's sweep (25 trials
// that train for real) on one worker, then on two, each running one
// activity at a time, and reports the evaluation stage's speedup. Both
// workers share this machine's cores: on two cores the ceiling is 2.
func BenchmarkTwoWorkersSpeedup(b *testing.B) {
	cl := newCluster(b)
	cl.worker("w1", 1, "cpu")
	path := writePipeline(b, b.TempDir(), 12, 60, "")
	for range b.N {
		one := cl.timedRun(b, "bench-one.log", "--engine", "temporal", "--temporal", cl.addr, path)
		t1, n1 := evaluation(b, one)
		cl.worker("w2", 1, "cpu")
		two := cl.timedRun(b, "bench-two.log", "--engine", "temporal", "--temporal", cl.addr, path)
		t2, n2 := evaluation(b, two)
		_ = cl.workers["w2"].Process.Kill()
		_ = cl.workers["w2"].Wait()
		b.ReportMetric(float64(n1), "trials-1w")
		b.ReportMetric(float64(n2), "trials-2w")
		b.ReportMetric(t1.Seconds(), "s-1-worker")
		b.ReportMetric(t2.Seconds(), "s-2-workers")
		b.ReportMetric(t1.Seconds()/t2.Seconds(), "speedup")
	}
}
