package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A run whose exec stage searches two settings per size, with a trainer
// whose validation and test scores disagree: opt "b" is better on
// validation, so it is every size's setting, and its test accuracy
// (0.80 + 0.01 × width, capped at 0.99) is what resize sees, so the
// smallest width meeting 0.9 is 10 or more. Had resize seen the other
// setting's rows (0.99 at every width), it would choose width 2. Every
// setting's row is in the results table, the chosen one marked.
func TestExecSearchEndToEnd(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train.sh", `set -eu
case "$SWEETSPOT_OPT" in
  a) val=0.5; acc=0.99 ;;
  b) val=0.9; acc=$(awk -v w="$SWEETSPOT_WIDTH" 'BEGIN { a = 0.80 + 0.01 * w; if (a > 0.99) a = 0.99; printf "%.2f", a }') ;;
esac
echo "{\"val_accuracy\": $val, \"accuracy\": $acc, \"loss\": 0.1, \"params\": $SWEETSPOT_PARAMS}"
`)
	writeFile(t, dir, "p.hcl", `
dataset "d" {
  generator = "blobs"
  rows      = 100
}
stage "requirements" "r" {
  dataset      = dataset.d
  min_accuracy = 0.9
}
stage "model_choice" "m" {
  input = stage.requirements.r
  depth = [1]
  width = { min = 2, max = 32 }
  steps = 5
  include_baseline = false
}
stage "exec" "train" {
  input       = stage.model_choice.m
  command     = ["/bin/sh", "train.sh"]
  parallelism = 2

  search "grid" {
    metric = "val_accuracy"
    param "opt" { values = ["a", "b"] }
  }
}
stage "resize" "fit" {
  input        = stage.exec.train
  requirements = stage.requirements.r
  strategy     = "smallest_meeting"
  loop_to      = stage.exec.train
  max_rounds   = 6
}
`)
	r := sweetspot(t, dir, "run", "--json", "p.hcl")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	res := lastJSONLine(t, r.stdout)
	if res.Decision == nil || res.Decision.Chosen == "" {
		t.Fatalf("result %+v, want a chosen model", res)
	}
	w, err := strconv.Atoi(res.Decision.Chosen[strings.LastIndex(res.Decision.Chosen, "w")+1:])
	if err != nil {
		t.Fatalf("chosen %q: %v", res.Decision.Chosen, err)
	}
	if w < 10 {
		t.Errorf("chosen width %d: resize saw a setting that validation did not choose (opt b meets 0.9 from width 10)", w)
	}
	m := onlyRun(t, dir)
	// A size is searched once, in the first round that trains it: both
	// settings there, and in a later round (a repeat) only the setting its
	// search chose.
	rows, outranked := 0, 0
	searched := map[string]bool{}
	outs := slices.Clone(m.Stages[slices.IndexFunc(m.Stages, func(s *runstore.StageRecord) bool { return s.Addr == "exec.train" })].Outputs)
	slices.SortFunc(outs, func(a, b runstore.OutputFile) int { return a.Round - b.Round })
	for _, f := range outs {
		if f.Port != "results" {
			continue
		}
		b := readArrowFile(t, filepath.Join(dir, runstore.DefaultRoot, m.RunID, f.Path))
		rs, err := tables.ReadResults(b)
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
		perSize := map[string][]tables.Result{}
		for _, r := range rs {
			perSize[r.ID] = append(perSize[r.ID], r)
		}
		for id, rs := range perSize {
			opts := map[string]int{}
			for _, r := range rs {
				var set map[string]string
				if err := json.Unmarshal([]byte(r.Setting), &set); err != nil {
					t.Fatalf("%s: setting %q: %v", id, r.Setting, err)
				}
				opts[set["opt"]]++
				if r.SettingChosen != (set["opt"] == "b") {
					t.Errorf("round %d, %s: setting %s chosen %v; want opt b, the better on validation, chosen", f.Round, id, r.Setting, r.SettingChosen)
				}
			}
			want := map[string]int{"a": 1, "b": 1}
			if searched[id] {
				want = map[string]int{"b": len(rs)}
			}
			if !maps.Equal(opts, want) {
				t.Errorf("round %d, %s: settings trained %v, want %v (searched before: %v)", f.Round, id, opts, want, searched[id])
			}
			searched[id] = true
			outranked += opts["a"]
		}
		rows += len(rs)
	}
	if rows == 0 {
		t.Fatal("no exec results found in the run")
	}
	// The report tells the settings apart: every outranked one is marked
	// in the trials table, and only the chosen ones are plotted.
	out := filepath.Join(dir, "report.html")
	if r := sweetspot(t, dir, "report", m.RunID, "-o", out); r.code != exitOK {
		t.Fatalf("report: exit %d\n%s", r.code, r.stderr)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(page), "(outranked)<"); n != outranked {
		t.Errorf("the report marks %d rows outranked, want %d (one setting of two per size searched)", n, outranked)
	}
	if !strings.Contains(string(page), "only each size&#39;s chosen setting is plotted") && !strings.Contains(string(page), "only each size's chosen setting is plotted") {
		t.Error("the report does not say that outranked settings are not plotted")
	}
	// runs show marks them too, and stars the chosen row only.
	shown := sweetspot(t, dir, "runs", "show", m.RunID)
	if shown.code != exitOK {
		t.Fatalf("runs show: exit %d\n%s", shown.code, shown.stderr)
	}
	if n := strings.Count(shown.stdout, "(outranked)"); n != outranked {
		t.Errorf("runs show marks %d rows outranked, want %d:\n%s", n, outranked, shown.stdout)
	}
	for _, line := range strings.Split(shown.stdout, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "*") && strings.Contains(line, "outranked") {
			t.Errorf("runs show stars an outranked row: %s", line)
		}
	}
	t.Logf("exec results rows: %d, chosen %s", rows, res.Decision.Chosen)
}

// sweetspot validate reports every bad search block at once, each at its
// attribute's line and column, with "did you mean" for a misspelt kind.
func TestExecSearchValidate(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train.sh", "echo '{}'\n")
	writeFile(t, dir, "p.hcl", `stage "model_choice" "m" {
  input = stage.requirements.r
  width = { min = 2, max = 8 }
}
stage "exec" "train" {
  input   = stage.model_choice.m
  command = ["/bin/sh", "train.sh"]
  search "grdi" {
    trials = 0
    param "lr" { log_uniform = [0, 0.1] }
    param "d" { uniform = [0.5, 0.1] }
    param "b" { values = [] }
  }
}
dataset "d" {
  generator = "blobs"
  rows      = 100
}
stage "requirements" "r" {
  dataset      = dataset.d
  min_accuracy = 0.5
}
`)
	r := sweetspot(t, dir, "validate", "p.hcl")
	if r.code != exitInvalid {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, exitInvalid, r.stdout, r.stderr)
	}
	out := r.stdout + r.stderr
	for _, want := range []string{
		"Unknown search", `Did you mean "grid"?`, "p.hcl:8:10",
		"Invalid trials", "p.hcl:9:14",
		"Invalid log_uniform", "p.hcl:10:32",
		"Invalid uniform", "p.hcl:11:27",
		"Invalid values", "p.hcl:12:26",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}
}

// The optimization stage's search reaches the evaluation stage's trials:
// each size's learning rate is chosen on validation loss between one far
// too small to learn in a few epochs and a workable one, and the
// evaluation stage trains every size with the workable one.
func TestOptimizationSearchEndToEnd(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
dataset "d" {
  generator = "blobs"
  rows      = 300
}
stage "requirements" "r" {
  dataset      = dataset.d
  min_accuracy = 0.5
}
stage "model_choice" "m" {
  input  = stage.requirements.r
  depth  = [1]
  width  = { min = 4, max = 16 }
  steps  = 2
  epochs = 6
}
stage "optimization" "o" {
  input   = stage.model_choice.m
  dataset = dataset.d
  search "grid" {
    param "learning_rate" { values = [1e-7, 0.05] }
    param "batch_size"    { values = [32] }
  }
}
stage "evaluation" "e" {
  input   = stage.optimization.o
  dataset = dataset.d
}
`)
	r := sweetspot(t, dir, "run", "-q", "p.hcl")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	m := onlyRun(t, dir)
	b := readArrowFile(t, filepath.Join(dir, runstore.DefaultRoot, m.RunID, runstore.OutputRel("evaluation.e", 0, "results")))
	defer b.Release()
	rs, err := tables.ReadResults(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 {
		t.Fatal("no evaluation results")
	}
	for _, r := range rs {
		if r.LearningRate != 0.05 || r.BatchSize != 32 {
			t.Errorf("%s trained with learning rate %g, batch %d; want the search's 0.05 and 32", r.ID, r.LearningRate, r.BatchSize)
		}
	}
	tb := readArrowFile(t, filepath.Join(dir, runstore.DefaultRoot, m.RunID, runstore.OutputRel("optimization.o", 0, "tuning")))
	defer tb.Release()
	if got, want := tb.NumRows(), int64(2*len(rs)); got != want {
		t.Errorf("%d tuning runs, want 2 settings per size (%d)", got, want)
	}
}
