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

	"github.com/hashicorp/go-hclog"

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

// bestSetting is the setting of the trainer's grid (lr 0.001, 0.01, 0.1;
// opt a, b) best on validation for a size, by trying each with the
// written-out scores.
func bestSetting(size tables.Candidate) string {
	best, bv := "", math.Inf(-1)
	for _, lr := range []float64{0.001, 0.01, 0.1} {
		for _, opt := range []string{"a", "b"} {
			if v := trainerVal(lr, opt, int(size.Epochs), int(size.Width)); v > bv {
				bv, best = v, space.Setting{{Name: "lr", V: lr}, {Name: "opt", V: opt}}.JSON()
			}
		}
	}
	return best
}

func trainerGrid() *space.Block {
	return &space.Block{Kind: space.KindGrid, Metric: "val_accuracy", Params: []space.ParamBlock{
		{Name: "lr", Values: nums(0.001, 0.01, 0.1)},
		{Name: "opt", Values: strs("a", "b")},
	}}
}

// With repeats = 3, each size's setting is searched once, by its repeat
// 0, and repeats 1 and 2 train the chosen setting again: 6 + 2 trials a
// size, not 3 × 6, and each repeat's row is a chosen one, with that
// setting.
func TestSearchOncePerSize(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	cfg := searchTrainer(t, out)
	cfg.Search, cfg.Repeats = trainerGrid(), ptr(3)
	sizes := []tables.Candidate{cand(4, 3, 1, 8), cand(4, 3, 1, 16)}
	rs, err := run(t, context.Background(), cfg, stagetest.Inputs{InputPort: candidates(t, mem, sizes...)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 16 {
		t.Fatalf("%d rows, want 2 sizes × (6 settings + 2 repeats)", len(rs))
	}
	for _, size := range sizes {
		want := bestSetting(size)
		repeats := map[int32]bool{}
		for _, r := range rs {
			if r.ID != size.ID {
				continue
			}
			if r.Status != tables.StatusOK {
				t.Errorf("%s repeat %d %s: %s %s", r.ID, r.Repeat, r.Setting, r.Status, r.Error)
			}
			switch {
			case r.Repeat > 0 && (!r.SettingChosen || r.Setting != want):
				t.Errorf("%s repeat %d: setting %s chosen %t, want the chosen %s", r.ID, r.Repeat, r.Setting, r.SettingChosen, want)
			case r.SettingChosen && r.Setting != want:
				t.Errorf("%s repeat %d: chose %s, want %s", r.ID, r.Repeat, r.Setting, want)
			}
			if r.SettingChosen {
				if repeats[r.Repeat] {
					t.Errorf("%s: repeat %d chosen twice", r.ID, r.Repeat)
				}
				repeats[r.Repeat] = true
			}
		}
		if len(repeats) != 3 || !repeats[0] || !repeats[1] || !repeats[2] {
			t.Errorf("%s: chosen rows of repeats %v, want 0, 1 and 2", size.ID, repeats)
		}
	}
	got := readReceived(t, out)
	if len(got) != 16 {
		t.Errorf("%d trials ran, want 16", len(got))
	}
	var m map[string]any
	for name, r := range got {
		if !strings.Contains(name, "-repeat") {
			continue
		}
		size := sizes[0]
		if r.id == sizes[1].ID {
			size = sizes[1]
		}
		if err := json.Unmarshal([]byte(bestSetting(size)), &m); err != nil {
			t.Fatal(err)
		}
		if r.lr != m["lr"] || r.opt != m["opt"] {
			t.Errorf("%s trained lr %g opt %s, want the chosen %v", name, r.lr, r.opt, m)
		}
	}
}

// searchIn runs one size's trials as runSearch does, in work: the real
// command, each trial in its own directory.
func searchIn(t *testing.T, s *Stage, work string, cands ...tables.Candidate) []tables.Result {
	t.Helper()
	ctx, span := provider.Tracer("test").Start(context.Background(), "stage exec.test")
	defer span.End()
	var cs []candidate
	for _, c := range cands {
		cs = append(cs, newCandidate(c, nil))
	}
	g := bySize(cs, trialDirs(filepath.Join(work, "trials"), cs))
	if len(g) != 1 {
		t.Fatalf("%d sizes, want 1", len(g))
	}
	env := map[string]string{"SWEETSPOT_OUTPUT": OutputJSONL}
	trial := func(ctx context.Context, c candidate, dir string) (tables.Result, *tables.Model, error) {
		return s.trial(ctx, c, dir, env, nil)
	}
	rs, _, err := s.searchRepeats(ctx, g[0], openChosen(work, hclog.NewNullLogger()), trial, func(tables.Result) {})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// Each finished trial of a search is journalled in its directory: a stage
// run that meets the size again (a resumed run after a kill in the middle
// of its search) trains only the settings whose trial had not finished
// (here, whose journal is gone), and keeps the others' rows as they were;
// a journal of another setting (the search block changed) is not taken.
func TestSearchTrialsJournalled(t *testing.T) {
	out, work := t.TempDir(), t.TempDir()
	cfg := searchTrainer(t, out)
	cfg.Search = trainerGrid()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*Stage)
	size := cand(4, 3, 1, 8)
	first := searchIn(t, s, work, size)
	if len(first) != 6 || len(readReceived(t, out)) != 6 {
		t.Fatalf("%d rows, %d trials, want 6", len(first), len(readReceived(t, out)))
	}
	// Two trials cut short: no journal.
	cut := map[string]bool{}
	for _, i := range []int{1, 4} {
		dir := filepath.Join(work, "trials", "r0", size.ID, "s"+strconv.Itoa(i))
		if err := os.Remove(filepath.Join(dir, trialResultFile)); err != nil {
			t.Fatal(err)
		}
		cut[s.settings[i].JSON()] = true
	}
	clearDir(t, out)
	again := searchIn(t, s, work, size)
	ran := readReceived(t, out)
	if len(ran) != 2 {
		t.Errorf("%d trials ran again, want the 2 cut short: %v", len(ran), ran)
	}
	for name := range ran {
		i, _ := strconv.Atoi(name[strings.LastIndex(name, "-s")+2:])
		if !cut[s.settings[i].JSON()] {
			t.Errorf("%s ran again, but it had finished", name)
		}
	}
	before := map[string]tables.Result{}
	for _, r := range first {
		before[r.Setting] = r
	}
	chosen := 0
	for _, r := range again {
		b := before[r.Setting]
		if (r.TraceID == b.TraceID) == cut[r.Setting] || r.Accuracy != b.Accuracy || r.SettingScore != b.SettingScore {
			t.Errorf("%s: trace %s accuracy %g score %g, first run's %s %g %g (cut short: %t)", r.Setting, r.TraceID, r.Accuracy, r.SettingScore, b.TraceID, b.Accuracy, b.SettingScore, cut[r.Setting])
		}
		if r.SettingChosen {
			chosen++
			if r.Setting != bestSetting(size) {
				t.Errorf("chose %s, want %s", r.Setting, bestSetting(size))
			}
		}
	}
	if len(again) != 6 || chosen != 1 {
		t.Errorf("%d rows, %d chosen; want 6, 1", len(again), chosen)
	}

	// Another search block: every journal is of another setting.
	cfg.Search.Params[0].Values = nums(0.002, 0.02, 0.2)
	st, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clearDir(t, out)
	searchIn(t, st.(*Stage), work, size)
	if n := len(readReceived(t, out)); n != 6 {
		t.Errorf("%d trials ran with the new settings, want 6", n)
	}
}

// A later round that asks for one more repeat of a size (resize, near its
// target) measures the setting the size chose before: one trial, no
// search.
func TestSearchLaterRepeatReusesTheChoice(t *testing.T) {
	out, work := t.TempDir(), t.TempDir()
	cfg := searchTrainer(t, out)
	cfg.Search = trainerGrid()
	st, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := st.(*Stage)
	size := cand(4, 3, 1, 8)
	searchIn(t, s, work, size)
	clearDir(t, out)
	more := size
	more.Round, more.Repeat = 1, 1
	rs := searchIn(t, s, work, more)
	if len(rs) != 1 || rs[0].Repeat != 1 || rs[0].Round != 1 || !rs[0].SettingChosen || rs[0].Setting != bestSetting(size) || rs[0].Status != tables.StatusOK {
		t.Fatalf("rows %+v, want one chosen row of repeat 1 with %s", rs, bestSetting(size))
	}
	if ran := readReceived(t, out); len(ran) != 1 {
		t.Errorf("%d trials ran, want 1: %v", len(ran), ran)
	}
	// Without a record of the choice (another work directory), the
	// repeat is searched.
	clearDir(t, out)
	if rs := searchIn(t, s, t.TempDir(), more); len(rs) != 6 {
		t.Errorf("%d rows without a recorded choice, want a search of 6", len(rs))
	}
}

func clearDir(t *testing.T, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}
