// Command measure builds examples/zoo/zoo.csv from the evaluation results
// the pipelines under examples/zoo/measure produced (exported with
// `sweetspot runs export RUN --format csv` into examples/zoo/measure/results),
// and prints the per-family statistics and the smallest model meeting each
// of a list of accuracy targets, for examples/zoo/README.md.
//
// Run it from the repository root:
//
//	go run ./examples/zoo/measure
//
// Every row of zoo.csv is one row of those exports, unchanged but for its
// name, family and the columns it keeps: nothing is smoothed, interpolated
// or filled in. A trial that did not end ok is left out (and reported).
// Within a family, a row whose param_count an earlier row of that family
// already has is left out (and reported), so that param_count identifies a
// row within its family.
package main

import (
	"cmp"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// model is one row of zoo.csv.
type model struct {
	name, family        string
	params, denseParams int64
	flops               int64
	accuracy            float64
	latencyP95Ms        float64
	throughputPerS      float64
	modelBytes          int64
	trainSeconds        float64
	depth, width        int64
	quantize            string
	pruneFraction       float64
	learningRate        float64
	epochs              int64
	// Provenance and the float model's score, for the record.
	loss           float64
	accuracyBefore string // empty for uncompressed models
	epochsRun      int64
	source         string // results file and candidate_id
}

var header = []string{
	"name", "family", "param_count", "dense_params", "flops", "accuracy",
	"latency_p95_ms", "throughput_per_s", "model_bytes", "train_seconds",
	"depth", "width", "quantize", "prune_fraction", "learning_rate", "epochs",
	"loss", "accuracy_before", "epochs_run", "source",
}

func (m model) record() []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	return []string{
		m.name, m.family, i(m.params), i(m.denseParams), i(m.flops), f(m.accuracy),
		f(m.latencyP95Ms), f(m.throughputPerS), i(m.modelBytes), f(m.trainSeconds),
		i(m.depth), i(m.width), m.quantize, f(m.pruneFraction), f(m.learningRate), i(m.epochs),
		f(m.loss), m.accuracyBefore, i(m.epochsRun), m.source,
	}
}

// family names a model by its depth and compression: mlp2, mlp1-int8,
// mlp2-pruned, mlp2-int8-pruned.
func family(depth int64, quantize string, prune float64) string {
	s := fmt.Sprintf("mlp%d", depth)
	if quantize != "none" {
		s += "-" + quantize
	}
	if prune > 0 {
		s += "-pruned"
	}
	return s
}

// readResults reads one exported results file into models, in file order.
func readResults(path string) (ok []model, skipped []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	head, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	need := []string{"candidate_id", "family", "depth", "width", "params", "flops", "learning_rate",
		"epochs", "quantize", "prune_fraction", "accuracy", "loss", "latency_p95_ms", "throughput_per_s",
		"model_bytes", "train_seconds", "epochs_run", "status", "error", "accuracy_before", "nonzero_params"}
	for _, n := range need {
		if _, found := col[n]; !found {
			return nil, nil, fmt.Errorf("%s: no column %s", path, n)
		}
	}
	base := filepath.Base(path)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(n string) string { return rec[col[n]] }
		id := get("candidate_id")
		if get("status") != "ok" {
			skipped = append(skipped, fmt.Sprintf("%s:%d %s: status %s: %s", base, line, id, get("status"), get("error")))
			continue
		}
		if get("family") != "mlp" {
			skipped = append(skipped, fmt.Sprintf("%s:%d %s: family %s is not mlp", base, line, id, get("family")))
			continue
		}
		var perr error
		i64 := func(n string) int64 {
			v, err := strconv.ParseInt(get(n), 10, 64)
			if err != nil && perr == nil {
				perr = fmt.Errorf("%s:%d: %s: %w", base, line, n, err)
			}
			return v
		}
		f64 := func(n string) float64 {
			v, err := strconv.ParseFloat(get(n), 64)
			if err != nil && perr == nil {
				perr = fmt.Errorf("%s:%d: %s: %w", base, line, n, err)
			}
			return v
		}
		m := model{
			denseParams: i64("params"), flops: i64("flops"), accuracy: f64("accuracy"),
			latencyP95Ms: f64("latency_p95_ms"), throughputPerS: f64("throughput_per_s"),
			modelBytes: i64("model_bytes"), trainSeconds: f64("train_seconds"),
			depth: i64("depth"), width: i64("width"), quantize: get("quantize"),
			pruneFraction: f64("prune_fraction"), learningRate: f64("learning_rate"), epochs: i64("epochs"),
			loss: f64("loss"), accuracyBefore: get("accuracy_before"), epochsRun: i64("epochs_run"),
			source: strings.TrimSuffix(base, ".csv") + "/" + id,
		}
		nonzero := i64("nonzero_params")
		if m.accuracyBefore != "" {
			f64("accuracy_before")
		}
		if perr != nil {
			return nil, nil, perr
		}
		m.params = m.denseParams
		if m.pruneFraction > 0 {
			m.params = nonzero
		}
		m.family = family(m.depth, m.quantize, m.pruneFraction)
		m.name = fmt.Sprintf("%s-w%d", m.family, m.width)
		ok = append(ok, m)
	}
	return ok, skipped, nil
}

func main() {
	results := flag.String("results", "examples/zoo/measure/results", "directory of exported results files (*.csv)")
	out := flag.String("o", "examples/zoo/zoo.csv", "zoo table to write")
	targetList := flag.String("targets", "0.8,0.85,0.88,0.9,0.92,0.94,0.95,0.955,0.96,0.965,0.97,0.975", "accuracy targets to answer, comma-separated")
	flag.Parse()
	if err := run(*results, *out, *targetList); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}

func run(results, out, targetList string) error {
	var targets []float64
	for s := range strings.SplitSeq(targetList, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("-targets: %w", err)
		}
		targets = append(targets, v)
	}
	files, err := filepath.Glob(filepath.Join(results, "*.csv"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no results files (*.csv) in %s", results)
	}
	slices.Sort(files)
	var all []model
	for _, path := range files {
		ms, skipped, err := readResults(path)
		if err != nil {
			return err
		}
		for _, s := range skipped {
			fmt.Println("left out (not ok):", s)
		}
		all = append(all, ms...)
	}

	// One row per name and per (family, param_count): the first measured.
	var zoo []model
	names := map[string]string{}
	sizes := map[string]string{}
	for _, m := range all {
		if prev, dup := names[m.name]; dup {
			fmt.Printf("left out (name %s already from %s): %s\n", m.name, prev, m.source)
			continue
		}
		key := fmt.Sprintf("%s|%d", m.family, m.params)
		if prev, dup := sizes[key]; dup {
			fmt.Printf("left out (%s has %d params like %s): %s\n", m.name, m.params, prev, m.source)
			continue
		}
		names[m.name], sizes[key] = m.source, m.name
		zoo = append(zoo, m)
	}
	slices.SortStableFunc(zoo, func(a, b model) int {
		return cmp.Or(cmp.Compare(a.family, b.family), cmp.Compare(a.params, b.params))
	})

	if err := write(out, zoo); err != nil {
		return err
	}
	fmt.Printf("wrote %s: %d rows from %d results files\n\n", out, len(zoo), len(files))
	printStats(zoo)
	printTargets(zoo, targets)
	printCompression(zoo)
	return nil
}

func write(path string, zoo []model) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write(header)
	for _, m := range zoo {
		w.Write(m.record())
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func families(zoo []model) []string {
	var fs []string
	for _, m := range zoo {
		if !slices.Contains(fs, m.family) {
			fs = append(fs, m.family)
		}
	}
	slices.Sort(fs)
	return fs
}

func printStats(zoo []model) {
	fmt.Println("| family | rows | widths | param_count | accuracy | latency_p95_ms |")
	fmt.Println("| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, f := range families(zoo) {
		n := 0
		wlo, whi := int64(math.MaxInt64), int64(0)
		plo, phi := int64(math.MaxInt64), int64(0)
		alo, ahi := math.Inf(1), math.Inf(-1)
		llo, lhi := math.Inf(1), math.Inf(-1)
		for _, m := range zoo {
			if m.family != f {
				continue
			}
			n++
			wlo, whi = min(wlo, m.width), max(whi, m.width)
			plo, phi = min(plo, m.params), max(phi, m.params)
			alo, ahi = min(alo, m.accuracy), max(ahi, m.accuracy)
			llo, lhi = min(llo, m.latencyP95Ms), max(lhi, m.latencyP95Ms)
		}
		fmt.Printf("| %s | %d | %d..%d | %d..%d | %.4f..%.4f | %.4f..%.4f |\n", f, n, wlo, whi, plo, phi, alo, ahi, llo, lhi)
	}
	fmt.Printf("| all | %d | | | | |\n\n", len(zoo))
}

// meeting returns the models meeting the target, fewest params first,
// ties by name.
func meeting(zoo []model, target float64, family string) []model {
	var ms []model
	for _, m := range zoo {
		if m.accuracy >= target && (family == "" || m.family == family) {
			ms = append(ms, m)
		}
	}
	slices.SortFunc(ms, func(a, b model) int {
		return cmp.Or(cmp.Compare(a.params, b.params), cmp.Compare(a.name, b.name))
	})
	return ms
}

func printTargets(zoo []model, targets []float64) {
	show := func(ms []model, i int) string {
		if i >= len(ms) {
			return "none"
		}
		return fmt.Sprintf("%s (%d, %.4f)", ms[i].name, ms[i].params, ms[i].accuracy)
	}
	fmt.Println("Smallest model meeting each accuracy target, over every family (param_count, accuracy):")
	fmt.Println()
	fmt.Println("| min accuracy | smallest meeting | next meeting | models meeting |")
	fmt.Println("| ---: | --- | --- | ---: |")
	for _, t := range targets {
		ms := meeting(zoo, t, "")
		fmt.Printf("| %g | %s | %s | %d |\n", t, show(ms, 0), show(ms, 1), len(ms))
	}
	fmt.Println()
	fs := families(zoo)
	fmt.Println("Per family (param_count):")
	fmt.Println()
	fmt.Printf("| min accuracy | %s |\n", strings.Join(fs, " | "))
	fmt.Printf("| ---: |%s\n", strings.Repeat(" --- |", len(fs)))
	for _, t := range targets {
		cells := make([]string, len(fs))
		for i, f := range fs {
			ms := meeting(zoo, t, f)
			cells[i] = "none"
			if len(ms) > 0 {
				cells[i] = fmt.Sprintf("w%d (%d)", ms[0].width, ms[0].params)
			}
		}
		fmt.Printf("| %g | %s |\n", t, strings.Join(cells, " | "))
	}
	fmt.Println()
}

// printCompression compares each int8 or pruned model with the float model
// it was made from (accuracy_before).
func printCompression(zoo []model) {
	for _, f := range families(zoo) {
		var up, same, down int
		var sum, worst float64
		n := 0
		for _, m := range zoo {
			if m.family != f || m.accuracyBefore == "" {
				continue
			}
			before, _ := strconv.ParseFloat(m.accuracyBefore, 64)
			d := m.accuracy - before
			switch {
			case d > 0:
				up++
			case d < 0:
				down++
			default:
				same++
			}
			sum += d
			worst = min(worst, d)
			n++
		}
		if n == 0 {
			continue
		}
		fmt.Printf("%s vs its float models: accuracy up %d, same %d, down %d; mean change %+.4f, worst %+.4f\n", f, up, same, down, sum/float64(n), worst)
	}
}
