package main

import (
	"fmt"
	"math"
)

// The inference benchmarks of plugins/internal/nn: BenchmarkPredict's
// widths and batches, BenchmarkPruned's widths and prune percentages.
var (
	predictWidths  = []int{16, 64, 256, 1024}
	predictBatches = []int{1, 32, 256}
	prunedWidths   = []int{256, 1024}
	prunedPercents = []int{0, 25, 50, 75, 90, 95}
	prunedBatches  = []int{1, 256}
)

// int8GoalWidth is the narrowest width the int8 goal speaks of: below it
// the layers are too small for any kernel to matter.
const int8GoalWidth = 64

func (d *doc) inference() {
	d.p("## Int8 against float32 inference\n\n")
	d.p("`BenchmarkPredict` (plugins/internal/nn) times forward passes of a 64-W-W-10 ReLU MLP in sweetspot's runtime, float32 (gonum's Sgemm) against int8 (the blocked int8 kernels: AVX2 on amd64, each activation row quantized once per layer), at batches of 1, 32 and 256 rows. Time per sample; the ratio is float32's time over int8's, above 1 when int8 is faster.\n\n")
	d.p("| width | batch | float32 µs/sample | int8 µs/sample | float32 / int8 |\n|---|---|---|---|---|\n")
	worst, n := math.Inf(1), 0
	for _, w := range predictWidths {
		for _, b := range predictBatches {
			f := fmt.Sprintf("BenchmarkPredict/width=%d/batch=%d/float32", w, b)
			q := fmt.Sprintf("BenchmarkPredict/width=%d/batch=%d/int8", w, b)
			ratio := notMeasured
			fv, okF := d.get(f, "µs/sample")
			qv, okQ := d.get(q, "µs/sample")
			if okF && okQ && qv > 0 {
				ratio = num(fv/qv) + "×"
				if w >= int8GoalWidth {
					worst, n = min(worst, fv/qv), n+1
				}
			}
			d.p("| %d | %d | %s | %s | %s |\n", w, b, d.cell(f, "µs/sample"), d.cell(q, "µs/sample"), ratio)
		}
	}
	d.p("\n")
	g := goal{name: fmt.Sprintf("int8 inference at least as fast as float32 from width %d up (batch 1, 32, 256)", int8GoalWidth), measured: notMeasured, met: notMeasured}
	if n > 0 {
		g.measured, g.met = "lowest float32/int8 time ratio "+num(worst)+"×", verdict(worst >= 1)
	}
	d.goals = append(d.goals, g)
}

// prunedMaxBytes is the most bytes a model pruned by half may keep, as a
// share of the unpruned model's, per weight type: a mask costs an eighth
// of a byte per weight, each kept weight its value (4 bytes or 1), and
// biases and scales stay.
var prunedMaxBytes = map[string]float64{"float32": 0.55, "int8": 0.7}

// prunedMinSpeed is the least speed of a pruned model as a share of the
// unpruned one's: a predictor runs a pruned layer on the dense kernel
// unless the sparse one is faster, so pruning never costs speed beyond
// the noise of a shared machine.
const prunedMinSpeed = 0.9

func (d *doc) pruned() {
	d.p("## Pruned models\n\n")
	d.p("`BenchmarkPruned` (plugins/internal/nn) prunes the same 64-W-W-10 MLP by magnitude, float32 and int8, and reports the serialized bytes (each layer in the smallest of dense, compressed rows and bit mask) and forward passes at batches 1 and 256 in the runtime (each layer on the faster of the dense and the sparse kernel). Sizes and speeds are against the unpruned model of the same width and type.\n\n")
	d.p("| width | weights | pruned | bytes | of unpruned | batch 1 µs/sample | speed vs unpruned | batch 256 µs/sample | speed vs unpruned |\n|---|---|---|---|---|---|---|---|---|\n")
	worstBytes := map[string]float64{}
	worstSpeed, n := math.Inf(1), 0
	for _, w := range prunedWidths {
		for _, kind := range []string{"float32", "int8"} {
			name := func(pct, b int) string {
				return fmt.Sprintf("BenchmarkPruned/width=%d/%s/prune=%d/batch=%d", w, kind, pct, b)
			}
			base, okBase := d.get(name(0, 1), "bytes")
			for _, pct := range prunedPercents {
				bytes, ok := d.get(name(pct, 1), "bytes")
				share := notMeasured
				if ok && okBase && base > 0 {
					share = fmt.Sprintf("%.0f%%", 100*bytes/base)
					if pct == 50 {
						worstBytes[kind] = max(worstBytes[kind], bytes/base)
					}
				}
				row := fmt.Sprintf("| %d | %s | %d%% | %s | %s |", w, kind, pct, d.cell(name(pct, 1), "bytes"), share)
				for _, b := range prunedBatches {
					speed := notMeasured
					t0, ok0 := d.get(name(0, b), "µs/sample")
					t, okT := d.get(name(pct, b), "µs/sample")
					if ok0 && okT && t > 0 {
						speed = num(t0/t) + "×"
						if pct > 0 && pct <= 90 {
							worstSpeed, n = min(worstSpeed, t0/t), n+1
						}
					}
					row += fmt.Sprintf(" %s | %s |", d.cell(name(pct, b), "µs/sample"), speed)
				}
				d.p("%s\n", row)
			}
		}
	}
	d.p("\n")
	for _, kind := range []string{"float32", "int8"} {
		g := goal{name: fmt.Sprintf("%s models pruned by half at most %.0f%% of the unpruned bytes", kind, 100*prunedMaxBytes[kind]), measured: notMeasured, met: notMeasured}
		if v, ok := worstBytes[kind]; ok {
			g.measured, g.met = fmt.Sprintf("largest share %.0f%%", 100*v), verdict(v <= prunedMaxBytes[kind])
		}
		d.goals = append(d.goals, g)
	}
	g := goal{name: fmt.Sprintf("pruned models (25%% to 90%%) at least %s× the unpruned speed (batch 1 and 256)", num(prunedMinSpeed)), measured: notMeasured, met: notMeasured}
	if n > 0 {
		g.measured, g.met = "lowest speed ratio "+num(worstSpeed)+"×", verdict(worstSpeed >= prunedMinSpeed)
	}
	d.goals = append(d.goals, g)
}
