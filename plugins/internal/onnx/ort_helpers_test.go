package onnx_test

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/onnx/ortrun"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
)

// The ONNX Runtime runner is shared with the other tests that judge ONNX
// files (ortrun); these names keep this package's tests short.
type (
	ortOutput = ortrun.Output
	ortJob    = ortrun.Job
)

func repoRoot(tb testing.TB) string { return ortrun.RepoRoot(tb) }

func ortDir(tb testing.TB) string { return ortrun.Dir(tb) }

func runORT(tb testing.TB, jobs []ortJob) []map[string]ortOutput { return ortrun.Run(tb, jobs) }

func node(tb testing.TB, ortDir string, args ...string) []byte {
	return ortrun.Node(tb, ortDir, args...)
}

// table is a dataset from testdata/datasets: features and a target per row.
type table struct {
	x          []float64
	rows, cols int
	labels     []int32
	targets    []float64
	classes    int
}

// readCSV reads a numeric CSV (gzipped when the name says so) with sep
// between values, skipping skip lines.
func readCSV(tb testing.TB, name string, sep string, skip int) [][]float64 {
	tb.Helper()
	f, err := os.Open(filepath.Join(repoRoot(tb), "testdata", "datasets", "sklearn", name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			tb.Fatal(err)
		}
		r = gz
	}
	var out [][]float64
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		if line <= skip || strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var row []float64
		for _, field := range strings.FieldsFunc(sc.Text(), func(r rune) bool { return strings.ContainsRune(sep, r) }) {
			v, err := strconv.ParseFloat(strings.TrimSpace(field), 64)
			if err != nil {
				tb.Fatalf("%s:%d: %v", name, line, err)
			}
			row = append(row, v)
		}
		out = append(out, row)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return out
}

// classTable reads a CSV whose last column is the class.
func classTable(tb testing.TB, name string, skip int) *table {
	tb.Helper()
	t := &table{}
	for _, row := range readCSV(tb, name, ",", skip) {
		t.cols = len(row) - 1
		t.x = append(t.x, row[:t.cols]...)
		t.labels = append(t.labels, int32(row[t.cols]))
		t.classes = max(t.classes, int(row[t.cols])+1)
		t.rows++
	}
	return t
}

// diabetes is scikit-learn's raw diabetes data and its regression target.
func diabetes(tb testing.TB) *table {
	tb.Helper()
	t := &table{}
	for _, row := range readCSV(tb, "diabetes_data_raw.csv.gz", " \t", 0) {
		t.cols = len(row)
		t.x = append(t.x, row...)
		t.rows++
	}
	for _, row := range readCSV(tb, "diabetes_target.csv.gz", " \t,", 0) {
		t.targets = append(t.targets, row...)
	}
	if len(t.targets) != t.rows {
		tb.Fatalf("diabetes: %d targets for %d rows", len(t.targets), t.rows)
	}
	return t
}

// isTest puts every fifth row in the test split, the rest in training.
func isTest(row int) bool { return row%5 == 0 }

// trained is a model fitted on a table's training rows behind a
// preprocessing, with every row prepared as sweetspot prepares it.
type trained struct {
	t     *table
	model nn.Model
	tf    *prep.Transform
	// all holds every row, prepared; test the test split's.
	all, test *nn.Data
}

// fits holds the float32 models train fitted, so that the compressed
// variants of a model start from the same weights and the test fits each
// once.
var fits = map[string]*trained{}

// train fits hidden layers on t's training rows after the preprocessing
// named prepName, then compresses the model as c says.
func train(tb testing.TB, t *table, prepName string, hidden []int, c nn.Compression) *trained {
	tb.Helper()
	key := fmt.Sprintf("%p %s %v", t, prepName, hidden)
	base, ok := fits[key]
	if !ok {
		base = fit(tb, t, prepName, hidden)
		fits[key] = base
	}
	if c == (nn.Compression{}) {
		return base
	}
	m, err := nn.Compress(base.model, c)
	if err != nil {
		tb.Fatal(err)
	}
	out := *base
	out.model = m
	return &out
}

func fit(tb testing.TB, t *table, prepName string, hidden []int) *trained {
	tb.Helper()
	ps, err := prep.Parse(prepName)
	if err != nil {
		tb.Fatal(err)
	}
	var trainX []float64
	var trainRows []int
	var testRows []int
	for r := range t.rows {
		if isTest(r) {
			testRows = append(testRows, r)
			continue
		}
		trainRows = append(trainRows, r)
		trainX = append(trainX, t.x[r*t.cols:(r+1)*t.cols]...)
	}
	tf, err := prep.Fit(ps, trainX, len(trainRows), t.cols)
	if err != nil {
		tb.Fatal(err)
	}
	px := tf.Apply(t.x, t.rows)
	all := &nn.Data{Rows: t.rows, Cols: tf.Out(), X: make([]float32, len(px)), Labels: t.labels}
	for i, v := range px {
		all.X[i] = float32(v)
	}
	spec := nn.Spec{Inputs: tf.Out(), Hidden: hidden, Outputs: t.classes, Task: nn.Classification}
	if t.targets != nil {
		all.Targets = make([]float32, t.rows)
		for i, v := range t.targets {
			all.Targets[i] = float32(v)
		}
		spec.Outputs, spec.Task = 1, nn.Regression
	}
	cfg := nn.Config{LearningRate: 3e-3, BatchSize: 32, Epochs: 40, Patience: 8, Seed: 7}
	m, _, err := nn.Gonum{}.Fit(context.Background(), spec, all.Subset(trainRows), nil, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return &trained{t: t, model: m, tf: tf, all: all, test: all.Subset(testRows)}
}

// predict is sweetspot's own prediction of every row of d.
func predict(m nn.Model, d *nn.Data) []float32 {
	p := m.NewPredictor(d.Rows)
	return append([]float32(nil), p.Predict(d.X, d.Rows)...)
}

// argmax is the first index of the largest value, as sweetspot picks a
// class.
func argmax(z []float32) int {
	best := 0
	for j, v := range z {
		if v > z[best] {
			best = j
		}
	}
	return best
}

// output returns the named output, checking its type and shape.
func output(tb testing.TB, outs map[string]ortOutput, name, typ string, dims ...int) []float64 {
	tb.Helper()
	o, ok := outs[name]
	if !ok {
		names := make([]string, 0, len(outs))
		for n := range outs {
			names = append(names, n)
		}
		tb.Fatalf("no output %q; the model gives %v", name, names)
	}
	if o.Type != typ || fmt.Sprint(o.Dims) != fmt.Sprint(dims) {
		tb.Fatalf("output %q is %s %v, want %s %v", name, o.Type, o.Dims, typ, dims)
	}
	return o.Data
}
