package exec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
)

// TestSamplesByName checks that a candidate's samples reaches the command
// by name, on stdin and as SWEETSPOT_SAMPLES, that a candidate without
// samples gets neither, and that the results row keeps it.
func TestSamplesByName(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	ds := data(t, mem, dataset.GenBlobs, 120, 2, 0.25, 0)
	sub, all := cand(4, 3, 1, 8), cand(4, 3, 1, 4)
	sub.Samples = 37
	script := `
d="$OUT/$SWEETSPOT_WIDTH"
mkdir -p "$d"
cat > "$d/stdin.json"
printf '%s' "${SWEETSPOT_SAMPLES-unset}" > "$d/samples.txt"
echo '{"loss": 0.5}'
`
	rs, err := run(t, context.Background(), Config{Command: sh(script), DatasetFormat: FormatCSV, Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: candidates(t, mem, sub, all), DatasetPort: ds})
	if err != nil {
		t.Fatal(err)
	}
	read := func(width, name string) string {
		b, err := os.ReadFile(filepath.Join(out, width, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read("8", "samples.txt"); got != "37" {
		t.Errorf("SWEETSPOT_SAMPLES = %q, want 37", got)
	}
	if got := read("8", "stdin.json"); !strings.Contains(got, `"samples":37`) {
		t.Errorf("stdin %s has no \"samples\":37", got)
	}
	if got := read("4", "samples.txt"); got != "unset" {
		t.Errorf("a candidate without samples: SWEETSPOT_SAMPLES = %q, want it unset", got)
	}
	if got := read("4", "stdin.json"); strings.Contains(got, `"samples"`) {
		t.Errorf("a candidate without samples: stdin %s names samples", got)
	}
	for _, r := range rs {
		want := map[int32]int64{8: 37, 4: 0}[r.Width]
		if r.Status != "ok" || r.Samples != want {
			t.Errorf("%s: status %s (%s), samples %d, want %d", r.ID, r.Status, r.Error, r.Samples, want)
		}
	}
}

// A candidate on fewer rows is another training to the pruner's record
// of trained models; without samples the key is the one histories
// written before the column hold.
func TestSamplesModelKey(t *testing.T) {
	c := cand(4, 3, 1, 8)
	sub := c
	sub.Samples = 37
	if modelKey(c) == modelKey(sub) {
		t.Errorf("samples 37 and every row share the model key %q", modelKey(c))
	}
	if want := fmt.Sprintf("%s|%s|%s|lr%g|b%d|e%d|%s", c.Family, c.Name, c.Knobs.String(), c.LearningRate, c.BatchSize, c.Epochs, c.Preprocess); modelKey(c) != want {
		t.Errorf("model key without samples %q, want %q", modelKey(c), want)
	}
}
