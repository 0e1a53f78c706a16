package main

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// runOnce runs a pipeline with the binary and returns the run's manifest
// and the wall time of the command alone.
func runOnce(b *testing.B, dir string, env []string, args ...string) (runstore.Manifest, time.Duration) {
	b.Helper()
	cmd := exec.Command(binary, append([]string{"run", "-q", "--no-cache"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir), env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("run %v: %v\n%s", args, err, out)
	}
	store := runstore.Open(filepath.Join(dir, runstore.DefaultRoot))
	ids, err := store.IDs()
	if err != nil || len(ids) == 0 {
		b.Fatalf("run %v left no run in %s: %v", args, dir, err)
	}
	r, err := store.Load(ids[len(ids)-1])
	if err != nil {
		b.Fatal(err)
	}
	return r.Manifest(), wall
}

// tracingPairs is how many untraced/traced runs each iteration of
// BenchmarkTracing makes. One run lasts about a second and this machine's
// noise is several percent from run to run, so a 2% goal needs the median
// of many pairs, interleaved so that drifting load hits both sides alike.
const tracingPairs = 25

// BenchmarkTracing reports a traced loop run's wall time with tracing on
// (every span exported over OTLP to a real Jaeger, as well as written to the
// run's span files) and off (OTEL_TRACES_EXPORTER=none: the span files
// alone, which every run keeps as part of its record). Goal: tracing costs
// under 2% of the wall time (overhead-%, from the median of the pairs'
// ratios).
func BenchmarkTracing(b *testing.B) {
	dir := b.TempDir()
	writeFile(b, dir, "p.hcl", tracedLoop)
	// Jaeger runs for both halves, so both share the machine with it and
	// the difference is the exporting alone.
	j := startJaeger(b)
	off := func() time.Duration {
		_, d := runOnce(b, dir, []string{"OTEL_TRACES_EXPORTER=none"}, "p.hcl")
		return d
	}
	on := func() time.Duration {
		_, d := runOnce(b, dir, nil, "--otlp", j.otlpGRPC, "p.hcl")
		return d
	}
	var offs, ons, ratios []float64
	for b.Loop() {
		for i := range tracingPairs {
			var tOff, tOn time.Duration
			if i%2 == 0 {
				tOff, tOn = off(), on()
			} else {
				tOn, tOff = on(), off()
			}
			offs = append(offs, tOff.Seconds())
			ons = append(ons, tOn.Seconds())
			ratios = append(ratios, tOn.Seconds()/tOff.Seconds())
		}
	}
	b.ReportMetric(median(offs), "off-s")
	b.ReportMetric(median(ons), "on-s")
	b.ReportMetric((median(ratios)-1)*100, "overhead-%")
	b.ReportMetric(float64(len(ratios)), "pairs")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(v))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// The search of BenchmarkLoopGridRandom: two-hidden-layer MLPs on two
// interleaved spirals, widths 4 to 128. The grid trains every width a
// quarter-octave apart (the resolution the loop stops at, its default
// tolerance), 21 of them; the loop starts from model_choice's narrow start
// (widths 4 and 8) and lets resize (smallest_meeting, max_width 128) grow
// and bisect.
const (
	searchTarget = 0.95
	gridSteps    = 21
	// randomDraws is how many random searches are drawn per seed to
	// estimate how often one finds the sweet spot.
	randomDraws = 2000
)

const searchPipeline = `
dataset "d" {
  generator     = "spirals"
  rows          = 3000
  noise         = 0.05
  test_fraction = 0.4
  seed          = %[1]d
}
stage "requirements" "r" {
  dataset      = dataset.d
  min_accuracy = %[2]g
  budget {
    max_trials = 24
  }
}
stage "model_choice" "m" {
  input            = stage.requirements.r
  depth            = [2]
  width            = { min = 4, max = 128 }
  %[3]s
  include_baseline = false
  learning_rate    = 0.01
  epochs           = 60
}
stage "evaluation" "e" {
  input           = stage.model_choice.m
  dataset         = dataset.d
  seed            = %[1]d
  parallelism     = 2
  latency_samples = 20
}
`

const searchLoop = `
stage "resize" "z" {
  input        = stage.evaluation.e
  requirements = stage.requirements.r
  strategy     = "smallest_meeting"
  max_width    = 128
  loop_to      = stage.evaluation.e
  max_rounds   = 6
}
`

// BenchmarkLoopGridRandom trains one search space per seed (dataset and
// training seeds) three ways and reports what each cost in training
// seconds and whether it found the smallest model meeting the target.
//
// The truth is the grid's narrowest width measured to meet the target
// (grid-width). Training is deterministic per width and seed, so a
// measured pass is what that model does, never luck: small spiral nets
// train unevenly, and a pass may well be followed by wider failures, but
// the smallest model meeting the target is still the narrowest pass. A
// search finds it when its answer is measured to pass and lies at most one
// grid step above the grid's narrowest pass, or below it (the loop also
// trains widths between the grid's, and a narrower pass there is a better
// answer, as real as the grid's). The grid's smallest width from which
// every wider grid width passes is reported too
// (grid-dependable-width), and the log lists which grid widths passed.
//
//   - loop: model_choice's narrow start and the resize loop
//     (smallest_meeting);
//   - grid: every width a quarter-octave apart;
//   - random: random search with the loop's budget (as many trials as the
//     loop trained), drawn without replacement from the grid's widths and
//     choosing as a person would from its table, the narrowest that met the
//     target. Its trials are the grid's own trained models (training is
//     deterministic per width and seed), so its train seconds are theirs;
//     the hit rate is over randomDraws draws.
//
// Every model is really trained. Goal: the loop costs at most a quarter of
// the grid's train seconds and finds the same size.
func BenchmarkLoopGridRandom(b *testing.B) {
	for seed := 1; seed <= 5; seed++ {
		b.Run(fmt.Sprintf("seed=%d", seed), func(b *testing.B) {
			loopDir, gridDir := b.TempDir(), b.TempDir()
			writeFile(b, loopDir, "loop.hcl", fmt.Sprintf(searchPipeline, seed, searchTarget, `start = "narrow"`)+searchLoop)
			writeFile(b, gridDir, "grid.hcl", fmt.Sprintf(searchPipeline, seed, searchTarget, fmt.Sprintf("steps = %d", gridSteps)))
			var s searchStats
			for b.Loop() {
				loop, _ := runOnce(b, loopDir, nil, "loop.hcl")
				grid, _ := runOnce(b, gridDir, nil, "grid.hcl")
				s = compareSearches(b, loopDir, loop, gridDir, grid, uint64(seed))
			}
			b.ReportMetric(float64(s.loopTrials), "loop-trials")
			b.ReportMetric(float64(s.gridTrials), "grid-trials")
			b.ReportMetric(s.loopSec, "loop-train-s")
			b.ReportMetric(s.gridSec, "grid-train-s")
			b.ReportMetric(s.randomSec, "random-train-s")
			b.ReportMetric(s.loopSec/s.gridSec, "loop/grid")
			b.ReportMetric(s.loopWork, "loop-work")
			b.ReportMetric(s.gridWork, "grid-work")
			b.ReportMetric(s.loopWork/s.gridWork, "loop/grid-work")
			b.ReportMetric(float64(s.loopWidth), "loop-width")
			b.ReportMetric(float64(s.gridWidth), "grid-width")
			b.ReportMetric(float64(s.gridDependable), "grid-dependable-width")
			b.ReportMetric(s.loopHit, "loop-hit")
			b.ReportMetric(s.randomHit, "random-hit")
			b.Logf("seed %d: grid passes %s", seed, s.gridPattern)
			b.Logf("seed %d: loop passes %s", seed, s.loopPattern)
			b.Logf("seed %d: grid's narrowest pass width %d (every wider grid width passes from %d); loop chose width %d in %d trials (%.2f train s, grid %.2f s); random search with %d trials finds it in %.0f%% of draws (%.2f train s on average)",
				seed, s.gridWidth, s.gridDependable, s.loopWidth, s.loopTrials, s.loopSec, s.gridSec, s.loopTrials, 100*s.randomHit, s.randomSec)
		})
	}
}

type searchStats struct {
	loopTrials, gridTrials int
	loopSec, gridSec       float64
	randomSec              float64
	loopWork, gridWork     float64
	loopWidth, gridWidth   int64
	gridDependable         int64
	loopPasses             bool
	gridPattern            string
	loopPattern            string
	loopHit, randomHit     float64
}

func compareSearches(b *testing.B, loopDir string, loop runstore.Manifest, gridDir string, grid runstore.Manifest, seed uint64) searchStats {
	b.Helper()
	loopRows := trialRows(b, loopDir, loop)
	gridRows := trialRows(b, gridDir, grid)
	if loop.Decision == nil {
		b.Fatal("the loop made no decision")
	}
	s := searchStats{loopTrials: len(loopRows), gridTrials: len(gridRows)}
	for _, r := range loopRows {
		s.loopSec += r.trainSeconds
		s.loopWork += r.work
		if r.id == loop.Decision.Chosen {
			s.loopWidth = r.width
			s.loopPasses = r.ok && r.accuracy >= searchTarget
		}
	}
	for _, r := range gridRows {
		s.gridSec += r.trainSeconds
		s.gridWork += r.work
	}
	s.gridWidth = smallestMeeting(gridRows, searchTarget).width
	s.gridDependable = dependable(gridRows, searchTarget)
	s.gridPattern = passPattern(gridRows, searchTarget)
	s.loopPattern = passPattern(loopRows, searchTarget)
	if s.loopPasses && (s.loopWidth < s.gridWidth || oneGridStep(s.loopWidth, s.gridWidth)) {
		s.loopHit = 1
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	budget := min(s.loopTrials, len(gridRows))
	hits := 0
	for range randomDraws {
		drawn := make([]trialRow, 0, budget)
		for _, i := range rng.Perm(len(gridRows))[:budget] {
			drawn = append(drawn, gridRows[i])
			s.randomSec += gridRows[i].trainSeconds
		}
		if oneGridStep(smallestMeeting(drawn, searchTarget).width, s.gridWidth) {
			hits++
		}
	}
	s.randomSec /= randomDraws
	s.randomHit = float64(hits) / randomDraws
	return s
}

// oneGridStep reports whether two widths are the same size to within one
// grid step: their nearest quarter-octave grid points (counted from width
// 4) are at most one apart. Comparing grid points rather than ratios keeps
// the integer rounding of small widths (5 and 6 are a quarter-octave apart
// on the grid, yet 2^0.26 apart as integers) from deciding a hit.
func oneGridStep(a, b int64) bool {
	if a <= 0 || b <= 0 {
		return false
	}
	step := func(w int64) float64 { return math.Round(4 * math.Log2(float64(w)/4)) }
	return math.Abs(step(a)-step(b)) <= 1
}

type trialRow struct {
	id           string
	width        int64
	accuracy     float64
	trainSeconds float64
	// work is the trial's training work, forward FLOPs per sample times
	// the epochs it ran: proportional to its training arithmetic, and free
	// of the machine's load, which train seconds are not.
	work float64
	ok   bool
}

// trialRows reads a run's results, every round's, in order.
func trialRows(b *testing.B, dir string, m runstore.Manifest) []trialRow {
	b.Helper()
	var rows []trialRow
	for _, r := range resultRows(b, dir, m) {
		rows = append(rows, trialRow{
			id:           r.ID,
			width:        int64(r.Width),
			accuracy:     r.Accuracy,
			trainSeconds: r.TrainSeconds,
			work:         float64(r.FLOPs) * float64(max(r.EpochsRun, 0)),
			ok:           r.Status == tables.StatusOK,
		})
	}
	return rows
}

// dependable is the smallest width from which every wider trained width met
// the target (a failed trial counts as missing it); 0 when the widest did
// not.
func dependable(rows []trialRow, target float64) int64 {
	sorted := slices.SortedFunc(slices.Values(rows), func(a, b trialRow) int { return cmp.Compare(a.width, b.width) })
	var w int64
	for i := len(sorted) - 1; i >= 0; i-- {
		r := sorted[i]
		if !r.ok || r.accuracy < target {
			break
		}
		w = r.width
	}
	return w
}

// passPattern lists the widths with "+" for a pass and "-" for a miss.
func passPattern(rows []trialRow, target float64) string {
	sorted := slices.SortedFunc(slices.Values(rows), func(a, b trialRow) int { return cmp.Compare(a.width, b.width) })
	var sb strings.Builder
	for i, r := range sorted {
		if i > 0 {
			sb.WriteByte(' ')
		}
		mark := "-"
		if r.ok && r.accuracy >= target {
			mark = "+"
		}
		fmt.Fprintf(&sb, "%d%s", r.width, mark)
	}
	return sb.String()
}

// smallestMeeting is the narrowest trained model that met the target, as
// one would pick it from a table of results; the zero row when none did.
func smallestMeeting(rows []trialRow, target float64) trialRow {
	var best trialRow
	for _, r := range rows {
		if r.ok && r.accuracy >= target && (best.width == 0 || r.width < best.width) {
			best = r
		}
	}
	return best
}
