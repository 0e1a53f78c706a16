package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// The BLAS section compares the two builds of the trainer's matrix
// product, gonum's pure Go (the default) and OpenBLAS (the blas build
// tag), from one run of `make bench-blas`, which benchmarks both builds
// one after the other into one output. `make bench` does not build with
// the tag, so the page it writes keeps the section it finds between the
// markers, and `make bench-blas` replaces that section alone.
const (
	blasBegin = "<!-- bench-blas: written by `make bench-blas`, kept by `make bench` -->\n"
	blasEnd   = "<!-- /bench-blas -->\n"
)

// blasSection renders the section from one `make bench-blas` output,
// each figure the median of its reports: the two builds run in turns, so
// that a change of the machine's load weighs on both alike.
func blasSection(r *Results, date time.Time, machine Machine) string {
	med := &Results{Runs: map[string]Metrics{}, All: r.All, Pkg: r.Pkg, Skipped: r.Skipped, CPU: r.CPU}
	for name, reports := range r.All {
		med.Runs[name] = medianMetrics(reports)
	}
	d := &doc{r: med, used: map[string]bool{}}
	d.p("## OpenBLAS against pure Go (`make bench-blas`)\n\n")
	d.p("Built with `-tags blas`, the trainer's and the float32 predictor's matrix products go through OpenBLAS's `cblas_sgemm` (Debian's libopenblas-dev, one thread, through sweetspot's own cgo binding in plugins/internal/nn/openblas) instead of gonum's pure-Go blas32; the default build stays pure Go. `make bench-blas` runs `BenchmarkSgemm` and `BenchmarkTrain` in both builds, in turns, three times each, on this machine")
	if machine.LoadAvg != "" {
		d.p(" (load average at the end %s)", machine.LoadAvg)
	}
	if !date.IsZero() {
		d.p(", finished %s", date.UTC().Format("2006-01-02 15:04 MST"))
	}
	d.p(". Each figure is the median of its runs; the ratio is OpenBLAS's over pure Go's; the pure-Go product is the serial tiling every fit uses.\n\n")
	d.p("| matrix product | n | pure Go GFLOP/s | OpenBLAS GFLOP/s | OpenBLAS / pure Go |\n|---|---|---|---|---|\n")
	for _, n := range gemmSizes {
		g, o := fmt.Sprintf("BenchmarkSgemm/serial/n=%d", n), fmt.Sprintf("BenchmarkSgemm/openblas/n=%d", n)
		d.p("| Sgemm | %d | %s | %s | %s |\n", n, d.cell(g, "GFLOP/s"), d.cell(o, "GFLOP/s"), d.ratio(o, g, "GFLOP/s"))
	}
	d.p("\n| training step, 64-W-W-10 | W | pure Go samples/s | OpenBLAS samples/s | OpenBLAS / pure Go |\n|---|---|---|---|---|\n")
	for _, w := range trainWidths {
		g, o := fmt.Sprintf("BenchmarkTrain/width=%d", w), fmt.Sprintf("BenchmarkTrain/openblas/width=%d", w)
		d.p("| Train | %d | %s | %s | %s |\n", w, d.cell(g, "samples/s"), d.cell(o, "samples/s"), d.ratio(o, g, "samples/s"))
	}
	d.p("\n")
	return blasBegin + d.body.String() + blasEnd
}

// ratio is a/b of one unit, or not measured.
func (d *doc) ratio(a, b, unit string) string {
	x, okA := d.get(a, unit)
	y, okB := d.get(b, unit)
	if !okA || !okB || y == 0 {
		return notMeasured
	}
	return num(x/y) + "×"
}

// blasPart returns the BLAS section of a page, markers included, or "".
func blasPart(page string) string {
	i := strings.Index(page, blasBegin)
	if i < 0 {
		return ""
	}
	j := strings.Index(page[i:], blasEnd)
	if j < 0 {
		return ""
	}
	return page[i : i+j+len(blasEnd)]
}

// withBLAS puts section into page: in place of the page's own, else
// before its notes, else at its end.
func withBLAS(page, section string) string {
	if old := blasPart(page); old != "" {
		return strings.Replace(page, old, section, 1)
	}
	if i := strings.Index(page, "## Notes\n"); i >= 0 {
		return page[:i] + section + "\n" + page[i:]
	}
	return page + "\n" + section
}

// medianMetrics is each unit's median over reports (the upper middle of
// an even count).
func medianMetrics(reports []Metrics) Metrics {
	out := Metrics{}
	units := map[string][]float64{}
	for _, m := range reports {
		for u, v := range m {
			units[u] = append(units[u], v)
		}
	}
	for u, vs := range units {
		slices.Sort(vs)
		out[u] = vs[len(vs)/2]
	}
	return out
}
