package main

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// runOnce runs a pipeline with the binary and returns the run's manifest.
func runOnce(b *testing.B, dir string, env []string, args ...string) runstore.Manifest {
	b.Helper()
	cmd := exec.Command(binary, append([]string{"run", "-q", "--no-cache"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("run %v: %v\n%s", args, err, out)
	}
	ids, _ := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).IDs()
	r, err := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).Load(ids[len(ids)-1])
	if err != nil {
		b.Fatal(err)
	}
	return r.Manifest()
}

// BenchmarkTracing reports a run's wall time with span export to a real
// Jaeger and without, in one benchmark run, so their ratio is measured on
// the same machine at the same time.
func BenchmarkTracing(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, dir, "p.hcl", tracedLoop)
	// Jaeger runs for both halves, so both share the machine with it and
	// the difference is the exporting alone.
	j := startJaeger(b)
	b.Run("export=off", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			runOnce(b, dir, []string{"OTEL_TRACES_EXPORTER=none"}, "p.hcl")
		}
	})
	b.Run("export=otlp", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			runOnce(b, dir, nil, "--otlp", j.otlpGRPC, "p.hcl")
		}
	})
}

// gridPipeline is the quickstart's search space laid out as an exhaustive
// grid of widths a quarter-octave apart, with no resize loop.
func gridPipeline(t testing.TB) string {
	src, err := os.ReadFile("../../examples/quickstart/pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	cut := strings.Index(s, `stage "resize"`)
	if cut < 0 {
		t.Fatal("the quickstart has no resize stage")
	}
	s = s[:cut]
	// 4..512 is 7 octaves: 29 widths a quarter-octave apart.
	s = strings.Replace(s, "steps = 6", "steps = 29", 1)
	if !strings.Contains(s, "steps = 29") {
		t.Fatal("the quickstart's model_choice no longer says steps = 6; update gridPipeline")
	}
	return s
}

// BenchmarkLoopVersusGrid trains the quickstart's search space twice on
// the same seeds: once with the resize loop, once as an exhaustive grid,
// and reports the trials and training seconds each needed and whether
// they chose the same size (within one grid step).
func BenchmarkLoopVersusGrid(b *testing.B) {
	loopDir, gridDir := b.TempDir(), b.TempDir()
	quickstart, _ := filepath.Abs("../../examples/quickstart")
	writeFile(b, gridDir, "grid.hcl", gridPipeline(b))
	for i := 0; i < b.N; i++ {
		loop := runOnce(b, loopDir, nil, quickstart)
		grid := runOnce(b, gridDir, nil, "grid.hcl")
		lt, ls, _ := trialStats(b, loopDir, loop, "")
		gt, gs, gridRows := trialStats(b, gridDir, grid, "")
		if loop.Decision == nil {
			b.Fatal("the loop made no decision")
		}
		loopChoice, ok := gridRows[loop.Decision.Chosen]
		if !ok {
			_, _, loopRows := trialStats(b, loopDir, loop, "")
			loopChoice = loopRows[loop.Decision.Chosen]
		}
		gridChoice := smallestMeeting(gridRows, 0.95)
		// Size is parameters. One grid step (a quarter-octave of width)
		// changes them by 2^0.25 at depth 1 and 2^0.5 at depth 2, so two
		// choices within 2^0.5 of each other are one step apart at most.
		same := 0.0
		if gridChoice.params > 0 && math.Abs(math.Log2(float64(loopChoice.params)/float64(gridChoice.params))) <= 0.5+1e-9 {
			same = 1
		}
		b.ReportMetric(float64(lt), "loop_trials")
		b.ReportMetric(float64(gt), "grid_trials")
		b.ReportMetric(ls, "loop_train_s")
		b.ReportMetric(gs, "grid_train_s")
		b.ReportMetric(ls/gs, "train_s_ratio")
		b.ReportMetric(same, "same_size")
		b.Logf("loop chose %s (%d params), grid's smallest meeting 0.95 is %s (%d params)", loop.Decision.Chosen, loopChoice.params, gridChoice.id, gridChoice.params)
	}
}

type trialRow struct {
	id           string
	depth, width int64
	params       int64
	accuracy     float64
	trainSeconds float64
	ok           bool
}

// trialStats reads a run's results (every round): trials, total train
// seconds and the rows by candidate id.
func trialStats(b *testing.B, dir string, m runstore.Manifest, _ string) (int, float64, map[string]trialRow) {
	b.Helper()
	run, err := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).Load(m.RunID)
	if err != nil {
		b.Fatal(err)
	}
	var paths []string
	for _, s := range m.Stages {
		for _, f := range s.Outputs {
			if f.Port == "results" {
				paths = append(paths, run.Path(f.Path))
			}
		}
	}
	rd, err := runstore.OpenFiles(paths, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Release()
	rows := map[string]trialRow{}
	var total float64
	n := 0
	for rd.Next() {
		rec := rd.RecordBatch()
		col := func(name string) int { return rec.Schema().FieldIndices(name)[0] }
		ids := rec.Column(col("candidate_id")).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			r := trialRow{
				id:           ids.Value(i),
				depth:        int64(rec.Column(col("depth")).(*array.Int32).Value(i)),
				width:        int64(rec.Column(col("width")).(*array.Int32).Value(i)),
				params:       rec.Column(col("params")).(*array.Int64).Value(i),
				accuracy:     rec.Column(col("accuracy")).(*array.Float64).Value(i),
				trainSeconds: rec.Column(col("train_seconds")).(*array.Float64).Value(i),
				ok:           rec.Column(col("status")).(*array.String).Value(i) == "ok",
			}
			rows[r.id] = r
			total += r.trainSeconds
			n++
		}
	}
	if err := rd.Err(); err != nil {
		b.Fatal(err)
	}
	return n, total, rows
}

func smallestMeeting(rows map[string]trialRow, target float64) trialRow {
	var best trialRow
	for _, r := range rows {
		if r.ok && r.accuracy >= target && (best.params == 0 || r.params < best.params) {
			best = r
		}
	}
	return best
}
