package main

import (
	"fmt"
	"strings"
	"testing"
)

// pruningSeeds are the seeds (dataset and training) of BenchmarkPruning.
const pruningSeeds = 5

// BenchmarkPruning trains the grid sweep of BenchmarkLoopGridRandom (21
// two-hidden-layer widths a quarter-octave apart on two spirals, 60
// epochs, early stopping at patience 10, two trials at once) twice per
// seed: as it is, and with the evaluation stage's default median pruner
// (`pruner "median" {}`: a trial whose best validation accuracy so far is
// below the median of the finished trials at the same epoch stops there,
// once 5 trials finished). It reports both runs' train seconds and
// training work (forward FLOPs per sample times the epochs each trial
// ran, free of the machine's load), and the answer of each: the
// narrowest width measured to meet the 0.95 target, a pruned trial being
// no measurement. Goal: the pruned sweep costs at most 70% of the full
// sweep's train seconds (30% saved) and gives the same answer, for every
// seed.
func BenchmarkPruning(b *testing.B) {
	for seed := 1; seed <= pruningSeeds; seed++ {
		b.Run(fmt.Sprintf("sweep=grid/seed=%d", seed), func(b *testing.B) {
			fullDir, prunedDir := b.TempDir(), b.TempDir()
			grid := fmt.Sprintf(searchPipeline, seed, searchTarget, fmt.Sprintf("steps = %d", gridSteps))
			writeFile(b, fullDir, "grid.hcl", grid)
			writeFile(b, prunedDir, "grid.hcl", withPruner(b, grid, `pruner "median" {}`))
			var full, pruned []trialRow
			for b.Loop() {
				fm, _ := runOnce(b, fullDir, nil, "grid.hcl")
				pm, _ := runOnce(b, prunedDir, nil, "grid.hcl")
				full, pruned = trialRows(b, fullDir, fm), trialRows(b, prunedDir, pm)
			}
			var fullS, prunedS, fullW, prunedW float64
			stopped := 0
			for _, r := range full {
				fullS += r.trainSeconds
				fullW += r.work
			}
			for _, r := range pruned {
				prunedS += r.trainSeconds
				prunedW += r.work
				if !r.ok {
					stopped++
				}
			}
			fw, pw := smallestMeeting(full, searchTarget).width, smallestMeeting(pruned, searchTarget).width
			same := 0.0
			if fw == pw && fw > 0 {
				same = 1
			}
			b.ReportMetric(fullS, "full-train-s")
			b.ReportMetric(prunedS, "pruned-train-s")
			b.ReportMetric(prunedS/fullS, "pruned/full")
			b.ReportMetric(prunedW/fullW, "pruned/full-work")
			b.ReportMetric(float64(stopped), "trials-pruned")
			b.ReportMetric(float64(len(pruned)), "trials")
			b.ReportMetric(float64(fw), "full-width")
			b.ReportMetric(float64(pw), "pruned-width")
			b.ReportMetric(same, "same-answer")
			b.Logf("seed %d: full sweep %s; pruned %s", seed, passPattern(full, searchTarget), passPattern(pruned, searchTarget))
		})
	}
}

// withPruner adds a pruner block to the evaluation stage of a pipeline
// whose last block it is.
func withPruner(b *testing.B, pipeline, block string) string {
	b.Helper()
	p := strings.TrimRight(pipeline, "\n ")
	if !strings.HasSuffix(p, "}") || !strings.Contains(p[strings.LastIndex(p, "stage "):], `stage "evaluation"`) {
		b.Fatal("the pipeline does not end with its evaluation stage")
	}
	return p[:len(p)-1] + "  " + block + "\n}\n"
}
