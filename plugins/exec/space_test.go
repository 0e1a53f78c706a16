package exec

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/space"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// searchTrainer runs testdata/search_trainer.sh, which records what each
// trial received in out.
func searchTrainer(t *testing.T, out string) Config {
	t.Helper()
	script, err := filepath.Abs("testdata/search_trainer.sh")
	if err != nil {
		t.Fatal(err)
	}
	return Config{Command: []string{"/bin/sh", script}, Env: map[string]string{"OUT": out}, Parallelism: ptr(3)}
}

// The trainer's scores, written out again here: validation is best at
// lr = 0.01 with opt "b"; the test split at lr = 0.1 with opt "a".
func trainerVal(lr float64, opt string, epochs, width int) float64 {
	l := math.Log10(lr)
	v := 0.9 - 0.1*(l+2)*(l+2) - 0.2/float64(epochs) - 0.001*float64(width)
	if opt == "a" {
		v -= 0.05
	}
	return v
}

func trainerTest(lr float64, opt string) float64 {
	v := 0.5 + 0.1*(math.Log10(lr)+3)
	if opt == "a" {
		v += 0.05
	}
	return v
}

func strs(vs ...string) []string { return vs }

func nums(vs ...float64) []string {
	var out []string
	for _, v := range vs {
		out = append(out, strconv.FormatFloat(v, 'g', -1, 64))
	}
	return out
}

type searchReceived struct {
	lr     float64
	opt    string
	epochs int
	knobs  map[string]any
	id     string
}

func readReceived(t *testing.T, out string) map[string]searchReceived {
	t.Helper()
	files, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]searchReceived{}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(out, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fs := strings.Fields(string(b))
		if len(fs) != 5 {
			t.Fatalf("%s: %q", f.Name(), b)
		}
		var r searchReceived
		r.lr, _ = strconv.ParseFloat(fs[0], 64)
		r.opt = fs[1]
		r.epochs, _ = strconv.Atoi(fs[2])
		if err := json.Unmarshal([]byte(fs[3]), &r.knobs); err != nil {
			t.Fatalf("%s: knobs %q: %v", f.Name(), fs[3], err)
		}
		r.id = fs[4]
		got[f.Name()] = r
	}
	return got
}

// TestSearchPicksOnValidation runs a grid for two sizes with a trainer
// whose validation and test scores disagree: each size's chosen setting
// is the best on validation (found here by trying every setting of the
// written-out scores), not the best on the test split, and its row, with
// its test accuracy, is the size's result; every other setting stays in
// the table, outranked.
func TestSearchPicksOnValidation(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	cfg := searchTrainer(t, out)
	cfg.Search = &space.Block{Kind: space.KindGrid, Metric: "val_accuracy", Params: []space.ParamBlock{
		{Name: "lr", Values: nums(0.001, 0.01, 0.1)},
		{Name: "opt", Values: strs("a", "b")},
	}}
	sizes := []tables.Candidate{cand(4, 3, 1, 8), cand(4, 3, 1, 16)}
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, sizes...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 12 {
		t.Fatalf("%d rows, want 2 sizes × 6 settings", len(rs))
	}
	for _, size := range sizes {
		// The best on validation and on test, by trying every setting.
		bestVal, bestTest := "", ""
		var bv, bt float64 = -1, -1
		for _, lr := range []float64{0.001, 0.01, 0.1} {
			for _, opt := range []string{"a", "b"} {
				set := space.Setting{{Name: "lr", V: lr}, {Name: "opt", V: opt}}.JSON()
				if v := trainerVal(lr, opt, int(size.Epochs), int(size.Width)); v > bv {
					bv, bestVal = v, set
				}
				if v := trainerTest(lr, opt); v > bt {
					bt, bestTest = v, set
				}
			}
		}
		if bestVal == bestTest {
			t.Fatal("the trainer's validation and test scores agree; the test proves nothing")
		}
		var chosen []tables.Result
		settings := map[string]bool{}
		for _, r := range rs {
			if r.ID != size.ID {
				continue
			}
			if r.Status != tables.StatusOK {
				t.Errorf("%s %s: %s %s", r.ID, r.Setting, r.Status, r.Error)
			}
			settings[r.Setting] = true
			var m map[string]any
			if err := json.Unmarshal([]byte(r.Setting), &m); err != nil {
				t.Fatalf("setting %q: %v", r.Setting, err)
			}
			lr, opt := m["lr"].(float64), m["opt"].(string)
			if want := trainerVal(lr, opt, int(size.Epochs), int(size.Width)); math.Abs(r.SettingScore-want) > 1e-6 {
				t.Errorf("%s %s: setting_score %g, want the validation accuracy %g", r.ID, r.Setting, r.SettingScore, want)
			}
			if want := trainerTest(lr, opt); math.Abs(r.Accuracy-want) > 1e-6 {
				t.Errorf("%s %s: accuracy %g, want the test accuracy %g", r.ID, r.Setting, r.Accuracy, want)
			}
			if r.Knobs["lr"] != lr || r.Knobs["opt"] != opt {
				t.Errorf("%s %s: knobs %v lack the setting", r.ID, r.Setting, r.Knobs)
			}
			if r.SettingChosen {
				chosen = append(chosen, r)
			} else if !r.Outranked() {
				t.Errorf("%s %s: neither chosen nor outranked", r.ID, r.Setting)
			}
		}
		if len(settings) != 6 {
			t.Errorf("%s: %d distinct settings tried, want 6", size.ID, len(settings))
		}
		if len(chosen) != 1 || chosen[0].Setting != bestVal {
			t.Errorf("%s: chosen %v, want the best on validation %s (the best on test is %s)", size.ID, chosen, bestVal, bestTest)
		}
	}
	// Each trial got its knobs by name, in its environment and knobs.
	got := readReceived(t, out)
	if len(got) != 12 {
		t.Fatalf("%d trials recorded, want 12", len(got))
	}
	for name, r := range got {
		if !slices.Contains([]float64{0.001, 0.01, 0.1}, r.lr) || !slices.Contains([]string{"a", "b"}, r.opt) {
			t.Errorf("%s searchReceived lr %g opt %q", name, r.lr, r.opt)
		}
		if r.knobs["lr"] != r.lr || r.knobs["opt"] != r.opt {
			t.Errorf("%s: SWEETSPOT_KNOBS %v disagrees with SWEETSPOT_LR %g, SWEETSPOT_OPT %q", name, r.knobs, r.lr, r.opt)
		}
	}
}

// TestSearchHalving checks successive halving over 9 drawn settings with
// eta 3 and 9 epochs: rungs of 9 settings at 1 epoch, 3 at 3, 1 at 9;
// each rung keeps the best third of the one before on validation
// (worked out here from the written-out scores), and the last rung's
// setting is the size's.
func TestSearchHalving(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	cfg := searchTrainer(t, out)
	block := space.Block{Kind: space.KindHalving, Trials: ptr(9), Seed: ptr[int64](5), Metric: "val_accuracy", Eta: ptr(3), Params: []space.ParamBlock{
		{Name: "lr", LogUniform: []float64{1e-3, 1}},
		{Name: "opt", Values: strs("a", "b")},
	}}
	cfg.Search = &block
	size := cand(4, 3, 1, 8)
	size.Epochs = 9
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, size)})
	if err != nil {
		t.Fatal(err)
	}
	sp, _ := space.Check("search", block)
	settings := sp.Settings()
	val := func(s space.Setting, epochs int) float64 {
		m := s.Map()
		return trainerVal(m["lr"].(float64), m["opt"].(string), epochs, 8)
	}
	// The plan, by hand.
	alive := settings
	want := map[int][]string{}
	for _, epochs := range []int{1, 3, 9} {
		for _, s := range alive {
			want[epochs] = append(want[epochs], s.JSON())
		}
		slices.SortStableFunc(alive, func(a, b space.Setting) int {
			va, vb := val(a, epochs), val(b, epochs)
			switch {
			case va > vb:
				return -1
			case va < vb:
				return 1
			}
			return 0
		})
		alive = alive[:len(alive)/3]
	}
	got := map[int][]string{}
	var chosen []tables.Result
	for _, r := range rs {
		got[int(r.Epochs)] = append(got[int(r.Epochs)], r.Setting)
		if r.SettingChosen {
			chosen = append(chosen, r)
		}
	}
	for _, e := range []int{1, 3, 9} {
		slices.Sort(want[e])
		slices.Sort(got[e])
		if !slices.Equal(want[e], got[e]) {
			t.Errorf("rung at %d epochs tried %v, want %v", e, got[e], want[e])
		}
	}
	if len(rs) != 13 {
		t.Errorf("%d rows, want 9 + 3 + 1", len(rs))
	}
	if len(chosen) != 1 || chosen[0].Epochs != 9 || chosen[0].Setting != want[9][0] {
		t.Errorf("chosen %v, want the last rung's %v at 9 epochs", chosen, want[9])
	}
	for name, r := range readReceived(t, out) {
		if !slices.Contains([]int{1, 3, 9}, r.epochs) {
			t.Errorf("%s searchReceived SWEETSPOT_EPOCHS %d", name, r.epochs)
		}
	}
}

// A trial that does not report the search's metric fails, saying so; a
// size none of whose settings has a score is represented by a failed row,
// so the resize stage sees the failure.
func TestSearchWithoutTheMetric(t *testing.T) {
	mem := checked(t)
	cfg := Config{Command: sh(`echo '{"accuracy": 0.9}'`)}
	cfg.Search = &space.Block{Kind: space.KindRandom, Trials: ptr(2), Metric: "val_accuracy", Params: []space.ParamBlock{{Name: "lr", Uniform: []float64{0.1, 0.2}}}}
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, cand(4, 3, 1, 8))})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d rows, want 2", len(rs))
	}
	chosen := 0
	for _, r := range rs {
		if r.Status != tables.StatusFailed || !strings.Contains(r.Error, "no val_accuracy") {
			t.Errorf("%s: %s %q, want failed for want of val_accuracy", r.Setting, r.Status, r.Error)
		}
		if r.SettingChosen {
			chosen++
		}
	}
	if chosen != 1 {
		t.Errorf("%d rows chosen, want 1 (a failed one)", chosen)
	}
}

// A resumed stage keeps the sizes whose search had finished, and searches
// the others again.
func TestSearchResume(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	cfg := searchTrainer(t, out)
	cfg.Search = &space.Block{Kind: space.KindGrid, Metric: "val_accuracy", Params: []space.ParamBlock{{Name: "lr", Values: nums(0.01, 0.1)}, {Name: "opt", Values: strs("b")}}}
	done, cut, todo := cand(4, 3, 1, 8), cand(4, 3, 1, 16), cand(4, 3, 1, 32)
	row := func(c tables.Candidate, lr float64, chosen bool) tables.Result {
		r := failedResult(c)
		r.Status, r.Accuracy, r.TraceID = tables.StatusOK, 0.5, "0123"
		r.Setting, r.SettingChosen, r.SettingScore = space.Setting{{Name: "lr", V: lr}, {Name: "opt", V: "b"}}.JSON(), chosen, 0.7
		return r
	}
	resume := tables.BuildResults(mem, []tables.Result{row(done, 0.01, true), row(done, 0.1, false), row(cut, 0.01, false)})
	defer resume.Release()
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, done, cut, todo), ResumePort: {resume}})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range rs {
		count[r.ID]++
		if r.ID == done.ID && r.TraceID != "0123" {
			t.Errorf("the finished size's row was not kept: %+v", r)
		}
	}
	if count[done.ID] != 2 || count[cut.ID] != 2 || count[todo.ID] != 2 {
		t.Errorf("rows per size %v, want 2 each", count)
	}
	for name, r := range readReceived(t, out) {
		if r.id == done.ID {
			t.Errorf("the finished size ran again: %s", name)
		}
	}
}

// TestSearchConfigErrors checks the exec stage's own rules on params,
// each at the param that breaks it.
func TestSearchConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		param space.ParamBlock
		kind  string
		path  string
		want  string
	}{
		{"reserved width", space.ParamBlock{Name: "width", IntRange: []float64{1, 4}}, space.KindRandom, "search.param.0.name", "Reserved param name"},
		{"reserved seed", space.ParamBlock{Name: "seed", IntRange: []float64{1, 4}}, space.KindRandom, "search.param.0.name", "Reserved param name"},
		{"fractional batch size", space.ParamBlock{Name: "batch_size", Uniform: []float64{16, 64}}, space.KindRandom, "search.param.0.uniform", "Invalid batch_size param"},
		{"zero batch size", space.ParamBlock{Name: "batch_size", Values: nums(0, 32)}, space.KindRandom, "search.param.0.values", "Invalid batch_size param"},
		{"learning rate at zero", space.ParamBlock{Name: "learning_rate", Uniform: []float64{0, 0.1}}, space.KindRandom, "search.param.0.uniform", "Invalid learning_rate param"},
		{"epochs by halving", space.ParamBlock{Name: "epochs", IntRange: []float64{1, 4}}, space.KindHalving, "search.param.0.name", "Epochs searched by halving"},
		{"numeric preprocess", space.ParamBlock{Name: "preprocess", Values: nums(1)}, space.KindRandom, "search.param.0.values", "Invalid preprocess param"},
		{"empty values", space.ParamBlock{Name: "lr", Values: []string{}}, space.KindRandom, "search.param.0.values", "Invalid values"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{Command: sh("true"), Search: &space.Block{Kind: tc.kind, Params: []space.ParamBlock{tc.param}}})
			var diags sdk.Diagnostics
			if err == nil {
				t.Fatal("no error")
			}
			diags, _ = err.(sdk.Diagnostics)
			var found []string
			for _, d := range diags {
				p := strings.Join(d.Path, ".")
				found = append(found, p+": "+d.Summary)
				if p == tc.path && d.Summary == tc.want {
					return
				}
			}
			t.Errorf("want %s: %s; got %q", tc.path, tc.want, found)
		})
	}
}

// Only the chosen setting's artifact is kept: one models row per size,
// holding the file its chosen trial wrote.
func TestSearchKeepsTheChosenArtifact(t *testing.T) {
	mem := checked(t)
	cfg := Config{
		Command:  sh(`printf 'lr=%s' "$SWEETSPOT_LR" > model.bin; echo "{\"accuracy\": 0.5, \"val_loss\": $SWEETSPOT_LR}"`),
		Artifact: "model.bin",
		Search: &space.Block{Kind: space.KindGrid, Params: []space.ParamBlock{
			{Name: "lr", Values: nums(0.3, 0.1, 0.2)},
		}},
	}
	sizes := []tables.Candidate{cand(4, 3, 1, 8), cand(4, 3, 1, 16)}
	rs, ms := runModels(t, cfg, stagetest.Inputs{InputPort: candidates(t, mem, sizes...)})
	if len(rs) != 6 {
		t.Fatalf("%d rows, want 6", len(rs))
	}
	if len(ms) != 2 {
		t.Fatalf("%d models rows, want one per size", len(ms))
	}
	for _, m := range ms {
		// val_loss is the lr: the least, 0.1, is chosen.
		if string(m.Bytes) != "lr=0.1" {
			t.Errorf("%s: kept %q, want the chosen setting's lr=0.1", m.ID, m.Bytes)
		}
	}
}
