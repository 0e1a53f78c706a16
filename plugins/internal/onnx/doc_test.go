package onnx_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/onnx"
)

// docExample is the JavaScript block of docs/onnx.md.
func docExample(t *testing.T) string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "onnx.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```js\n")
	if !ok {
		t.Fatal("docs/onnx.md has no ```js block")
	}
	code, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("docs/onnx.md's ```js block is not closed")
	}
	if n := strings.Count(strings.TrimSpace(code), "\n") + 1; n > 10 {
		t.Errorf("the example is %d lines; the documentation promises ten", n)
	}
	return code
}

// TestDocExample runs the example of docs/onnx.md, as written there, on an
// exported classifier and regressor, and checks each answer it prints
// against sweetspot's prediction of the row.
func TestDocExample(t *testing.T) {
	dir := ortDir(t)
	script := filepath.Join(t.TempDir(), "predict.js")
	if err := os.WriteFile(script, []byte(docExample(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		t    *table
		prep string
	}{
		{"iris", classTable(t, "iris.csv", 1), "standardize"},
		{"diabetes", diabetes(t), "standardize"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := train(t, c.t, c.prep, []int{16}, nn.Compression{})
			model, err := onnx.Encode(tr.model, tr.tf, onnx.Options{})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "model.onnx")
			if err := os.WriteFile(path, model, 0o644); err != nil {
				t.Fatal(err)
			}
			rows := []int{0, 1, 2, 60, 120}
			var in [][]float64
			for _, r := range rows {
				in = append(in, c.t.x[r*c.t.cols:(r+1)*c.t.cols])
			}
			arg, _ := json.Marshal(in)
			out := strings.Split(strings.TrimSpace(string(node(t, dir, script, path, string(arg)))), "\n")
			if len(out) != len(rows) {
				t.Fatalf("the example printed %d lines for %d rows:\n%s", len(out), len(rows), strings.Join(out, "\n"))
			}
			want := predict(tr.model, tr.all)
			k := tr.model.Spec().Outputs
			for i, r := range rows {
				_, got, ok := strings.Cut(out[i], " -> ")
				v, err := strconv.ParseFloat(got, 64)
				if !ok || err != nil {
					t.Fatalf("line %d %q is not ROW -> ANSWER", i+1, out[i])
				}
				if k == 1 {
					if w := float64(want[r]); math.Abs(v-w) > floatTol(w) {
						t.Errorf("row %d: the example prints %g, sweetspot predicts %g", r, v, w)
					}
				} else if w := argmax(want[r*k : (r+1)*k]); int(v) != w {
					t.Errorf("row %d: the example prints class %g, sweetspot predicts %d", r, v, w)
				}
			}
		})
	}
}
