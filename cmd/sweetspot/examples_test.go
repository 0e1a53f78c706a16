package main

import (
	"path/filepath"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// resultsColumns are the results-table columns docs/tables.md fixes.
var resultsColumns = []string{
	"candidate_id", "round", "family", "depth", "width", "params", "flops", "learning_rate",
	"batch_size", "epochs", "preprocess", "quantize", "prune_fraction",
	"accuracy", "loss", "latency_p50_ms", "latency_p95_ms", "throughput_per_s", "model_bytes",
	"peak_bytes", "train_seconds", "epochs_run", "status", "error", "trace_id",
}

// The shipped examples run end to end, converge, and leave a results table
// with the contract's columns that a plain Arrow reader opens.
func TestExamplesRunEndToEnd(t *testing.T) {
	for _, name := range []string{"quickstart", "digits", "compute", "compute-samples"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			example, _ := filepath.Abs(filepath.Join("../../examples", name))
			r := sweetspot(t, dir, "run", "-q", example)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s", r.code, r.stderr)
			}
			m := onlyRun(t, dir)
			if m.Decision == nil || m.Decision.Status != "converged" || m.Decision.Chosen == "" {
				t.Fatalf("decision %+v, want converged on a model", m.Decision)
			}
			var results *runstore.OutputFile
			for _, s := range m.Stages {
				for i, f := range s.Outputs {
					if f.Port == "results" && f.Round == 1 {
						results = &s.Outputs[i]
					}
				}
			}
			if results == nil {
				t.Fatal("no results of round 1")
			}
			b := readArrowFile(t, filepath.Join(dir, runstore.DefaultRoot, m.RunID, results.Path))
			defer b.Release()
			for _, c := range resultsColumns {
				if len(b.Schema().FieldIndices(c)) != 1 {
					t.Errorf("results lack column %s", c)
				}
			}
			if b.NumRows() < 5 {
				t.Errorf("round 1 trained %d models, want the whole ladder", b.NumRows())
			}
		})
	}
}
