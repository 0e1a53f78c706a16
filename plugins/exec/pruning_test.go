package exec

import (
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/space"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// python is Debian's Python, which make test provides (python-helper).
func python(t *testing.T) string {
	t.Helper()
	if out, err := osexec.Command("/usr/bin/python3", "-c", "import json").CombinedOutput(); err != nil {
		t.Fatalf("/usr/bin/python3 does not run (%v: %s): the pruning tests drive the Python helper with it", err, out)
	}
	return "/usr/bin/python3"
}

// TestMedianPruner runs trials one at a time through the Python helper:
// two finish their budget, then each later one is judged at each step
// against the median of the finished ones (worked out by hand below). One
// command ignores the stage's answer and is killed after the grace.
func TestMedianPruner(t *testing.T) {
	mem := checked(t)
	helperDir, err := filepath.Abs(filepath.Join("..", "..", "python"))
	if err != nil {
		t.Fatal(err)
	}
	trainer, err := filepath.Abs(filepath.Join("testdata", "curve_trainer.py"))
	if err != nil {
		t.Fatal(err)
	}
	curves := map[string][]float64{
		"a": {0.5, 0.6, 0.7, 0.8},
		"b": {0.3, 0.5, 0.6, 0.9},
		// Step 1: median of a and b (0.5+0.3)/2 = 0.4, c's 0.4 is not
		// worse; step 2: (0.6+0.5)/2 = 0.55 > 0.54: stopped there.
		"c": {0.4, 0.54, 0.9, 0.9},
		"d": {0.9, 0.9, 0.9, 0.9},
	}
	cj, _ := json.Marshal(curves)
	// "ignore" reports a poor step 1 (median of a, b, d: 0.5) and then
	// sleeps through the answer.
	script := `if [ "$SWEETSPOT_CANDIDATE_ID" = ignore ]; then
  echo '{"epoch": 1, "accuracy": 0.01, "loss": 2}'
  exec sleep 30
fi
exec "$PYTHON" "$TRAINER"`
	var cs []tables.Candidate
	for _, id := range []string{"a", "b", "c", "d", "ignore"} {
		c := cand(4, 3, 1, 8)
		c.ID, c.Name = id, id
		cs = append(cs, c)
	}
	cfg := Config{
		Command:     sh(script),
		Env:         map[string]string{"CURVES": string(cj), "HELPER_DIR": helperDir, "TRAINER": trainer, "PYTHON": python(t)},
		Parallelism: ptr(1),
		Pruner:      &prune.Block{Kind: "median", WarmupTrials: ptr(2), Grace: ptr(300 * time.Millisecond)},
	}
	start := time.Now()
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, cs...)})
	if err != nil {
		t.Fatal(err)
	}
	got := byID(rs)
	type row struct {
		Status, StoppedBy string
		EpochsRun         int32
		Accuracy          float64
	}
	want := map[string]row{
		"a":      {tables.StatusOK, "", 4, 0.8},
		"b":      {tables.StatusOK, "", 4, 0.9},
		"c":      {tables.StatusPruned, "pruner", 2, 0.54}, // its final line, written after the stop
		"d":      {tables.StatusOK, "", 4, 0.9},
		"ignore": {tables.StatusPruned, "pruner", 1, 0.01}, // its last epoch line
	}
	for id, w := range want {
		r := got[id]
		g := row{r.Status, r.StoppedBy, r.EpochsRun, r.Accuracy}
		if g != w {
			t.Errorf("%s: got %+v, want %+v (error %q)", id, g, w, r.Error)
		}
	}
	if e := got["c"].Error; !strings.Contains(e, "worse than the median 0.55 of the 2 finished trials") {
		t.Errorf("c's error: %q", e)
	}
	if e := got["ignore"].Error; !strings.Contains(e, "median 0.5 of the 3 finished trials") || !strings.Contains(e, "grace of 300ms and its process group was killed") {
		t.Errorf("ignore's error: %q", e)
	}
	if l := got["ignore"].Loss; l != 2 {
		t.Errorf("ignore's loss %v, want 2 from its last epoch line", l)
	}
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("the ignoring command was not killed after its grace: the stage took %s", d)
	}
}

// TestPruningHistory checks that a later round's pruner (a new stage run)
// judges against the trials an earlier one recorded, and skips a damaged
// line of the history.
func TestPruningHistory(t *testing.T) {
	work := t.TempDir()
	s, diags := prune.Check("pruner", prune.Block{Kind: "median", WarmupTrials: ptr(2)})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	log := hclog.NewNullLogger()
	first := newPruning(s, work, log)
	for _, tr := range []struct {
		dir   string
		curve [][2]float64
	}{{"r0/a", [][2]float64{{1, 0.2}, {2, 0.4}}}, {"r0/b", [][2]float64{{1, 0.4}, {2, 0.6}}}} {
		first.forTrial(work, filepath.Join(work, tr.dir), named(tr.dir), "").done(tr.curve, true)
	}
	first.forTrial(work, filepath.Join(work, "r0/c"), named("c"), "").done([][2]float64{{2, 0.01}}, false)
	f, err := os.OpenFile(filepath.Join(work, prune.HistoryFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"trial": "r0/x", "curve": [[1, 0.99]], "comp` + "\n" + `{"trial": "r0/y", "curve": [[1.5, 0.1]], "complete": true}` + "\n")
	f.Close()

	second := newPruning(s, work, log)
	tp := second.forTrial(work, filepath.Join(work, "r1/d"), named("d"), "")
	// A model trained in an earlier round (c, though it was stopped) is
	// trained to its end when asked for again; a new one (d) is judged.
	if again := second.forTrial(work, filepath.Join(work, "r1/c-r1"), named("c"), ""); !again.again || tp.again {
		t.Errorf("trained again: c %v, d %v; want c only", again.again, tp.again)
	}
	// Step 2's median of a and b: 0.5 (c was stopped, x and y are damaged).
	if stop, reason := second.Report(tp.key, 2, 0.49); !stop || !strings.Contains(reason, "median 0.5 of the 2 finished trials") {
		t.Errorf("0.49 at step 2: stop %v (%s), want stopped below the median 0.5", stop, reason)
	}
	if stop, _ := second.Report("r1/e", 2, 0.5); stop {
		t.Error("0.5 at step 2 stopped, want on (equal to the median)")
	}
}

// named is a candidate of the given name (its directory's last element).
func named(dir string) tables.Candidate {
	c := cand(4, 3, 1, 8)
	c.Name = filepath.Base(dir)
	c.ID = c.Name
	return c
}

// With a search, each size is a study of the pruner's: a setting is
// judged against its own size's settings only. Every setting of a size
// here reports the same curve (narrow 0.3, wide 0.9), so within a size no
// setting is ever worse than the median, and none is stopped; judged
// against the wide size's finished settings, the narrow ones would be
// (their first epoch line comes late, once wide settings have finished).
func TestSearchPrunesWithinASize(t *testing.T) {
	mem := checked(t)
	cfg := Config{
		Command: sh(`acc=0.9; [ "$SWEETSPOT_WIDTH" = 4 ] && { acc=0.3; sleep 0.3; }
for e in 1 2 3; do echo "{\"epoch\": $e, \"val_accuracy\": $acc}"; done
echo "{\"accuracy\": $acc, \"val_accuracy\": $acc}"`),
		Parallelism: ptr(2),
		Pruner:      &prune.Block{Kind: prune.KindMedian, Metric: "val_accuracy", WarmupTrials: ptr(1)},
		Search:      &space.Block{Kind: space.KindGrid, Metric: "val_accuracy", Params: []space.ParamBlock{{Name: "lr", Values: nums(0.1, 0.2, 0.3)}}},
	}
	narrow, wide := cand(4, 3, 1, 4), cand(4, 3, 1, 64)
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, wide, narrow)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 6 {
		t.Fatalf("%d rows, want 6", len(rs))
	}
	for _, r := range rs {
		if r.Status != tables.StatusOK {
			t.Errorf("%s %s: %s %s; judged against another size", r.ID, r.Setting, r.Status, r.Error)
		}
	}
}
