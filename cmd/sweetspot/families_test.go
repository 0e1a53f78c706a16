package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/examples/zoo/zootruth"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// TestZooAnswersWithTheSmallestRealModel runs examples/zoo, five families
// of measured models searched at once, for twelve targets, and checks each
// answer against the table's ground truth, computed by a brute-force scan
// of the file (zootruth) apart from the search: the answer is always a
// row of the table, and the smallest row meeting the target, or the next
// larger one, in at least 90% of the targets.
func TestZooAnswersWithTheSmallestRealModel(t *testing.T) {
	src := filepath.Join("..", "..", "examples", "zoo")
	rows, err := zootruth.Load(filepath.Join(src, "zoo.csv"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]zootruth.Row{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	targets := []float64{0.80, 0.85, 0.88, 0.90, 0.92, 0.94, 0.95, 0.955, 0.96, 0.965, 0.97, 0.975}
	hits := 0
	for _, target := range targets {
		dir := t.TempDir()
		for _, f := range []string{"pipeline.hcl", "zoo.csv"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, dir, f, string(b))
		}
		res := sweetspot(t, dir, "run", ".", "--quiet", "-var", fmt.Sprintf("target_accuracy=%g", target))
		if res.code != 0 {
			t.Fatalf("target %g: exit %d\n%s", target, res.code, res.stderr)
		}
		m := onlyRun(t, dir)
		if m.Decision == nil || m.Decision.Chosen == "" {
			t.Fatalf("target %g: no model chosen (%+v)", target, m.Decision)
		}
		got, ok := byName[m.Decision.Chosen]
		if !ok {
			t.Fatalf("target %g: the answer %q is not a row of the table", target, m.Decision.Chosen)
		}
		first, second := zootruth.SmallestMeeting(rows, target, 0)
		if first == nil {
			t.Fatalf("target %g: the table has no model meeting it; pick targets it meets", target)
		}
		// Rows of equal size are equally right: the families share sizes.
		ok = got.Params == first.Params || (second != nil && got.Params == second.Params)
		if ok && got.Accuracy >= target {
			hits++
		} else {
			t.Logf("target %g: chose %s (%d params, accuracy %.4f); the smallest meeting it is %s (%d params)", target, got.Name, got.Params, got.Accuracy, first.Name, first.Params)
		}
	}
	if hits*10 < len(targets)*9 {
		t.Errorf("the smallest or next larger model in %d of %d targets, want at least 90%%", hits, len(targets))
	}
}

// TestConvnetAxisFamilyEndToEnd runs examples/convnet: an axis family
// whose size variable s sets a convnet's channels (4s) and layers
// (1 + floor(log2 s)), trained by a numpy trainer through the exec stage.
// The answer must be a named model of the axis, whose knobs reached the
// trainer by name and whose parameter count, reported by the trainer,
// matches the count worked out here from the architecture.
func TestConvnetAxisFamilyEndToEnd(t *testing.T) {
	if out, err := exec.Command("/usr/bin/python3", "-c", "import numpy").CombinedOutput(); err != nil {
		t.Fatalf("/usr/bin/python3 has no numpy (%v: %s): `make python-numpy` installs it (make test does)", err, out)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res := sweetspot(t, dir, "run", filepath.Join(root, "examples", "convnet"), "--quiet", "--out", filepath.Join(dir, runstore.DefaultRoot))
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	m := onlyRun(t, dir)
	if m.Decision == nil || m.Decision.Status != "converged" {
		t.Fatalf("decision %+v, want converged", m.Decision)
	}
	var s int
	if _, err := fmt.Sscanf(m.Decision.Chosen, "convnet-s%d", &s); err != nil || s < 1 || s > 10 {
		t.Fatalf("chosen %q, want a model convnet-sN of the axis 1..10", m.Decision.Chosen)
	}
	c := 4 * s
	l := 1
	for v := s; v >= 2; v /= 2 {
		l++
	}
	// Block 1: 9C weights + C biases; each later block 9C² + C; the
	// dense head C·10 + 10 after global average pooling.
	wantParams := 10*c + (l-1)*(9*c*c+c) + 10*c + 10
	show := sweetspot(t, dir, "runs", "export", m.RunID, "--format", "csv", "-o", filepath.Join(dir, "results.csv"))
	if show.code != 0 {
		t.Fatalf("export: %s", show.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.Contains(text, m.Decision.Chosen) || !strings.Contains(text, fmt.Sprintf(",%d,", wantParams)) {
		t.Errorf("the export does not hold %s with %d params (channels %d, layers %d):\n%s", m.Decision.Chosen, wantParams, c, l, text)
	}
	if !strings.Contains(text, fmt.Sprintf(`""channels"":%d`, c)) {
		t.Errorf("the export does not carry the knob channels = %d:\n%s", c, text)
	}
}
