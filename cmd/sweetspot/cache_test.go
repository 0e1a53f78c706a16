package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

func runIDs(t *testing.T, dir string) []string {
	t.Helper()
	ids, err := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).IDs()
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func loadRun(t *testing.T, dir, id string) runstore.Manifest {
	t.Helper()
	r, err := runstore.Open(filepath.Join(dir, runstore.DefaultRoot)).Load(id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Manifest()
}

func TestSecondRunIsServedFromCacheAndExplainSaysWhy(t *testing.T) {
	dir := t.TempDir()
	example, _ := filepath.Abs("../../examples/standardize")
	if r := sweetspot(t, dir, "run", "-q", example); r.code != 0 {
		t.Fatalf("first run: %s", r.stderr)
	}
	time.Sleep(1100 * time.Millisecond) // run ids sort by the second they start
	if r := sweetspot(t, dir, "run", "-q", example); r.code != 0 {
		t.Fatalf("second run: %s", r.stderr)
	}
	ids := runIDs(t, dir)
	first, second := ids[0], loadRun(t, dir, ids[1])
	for _, s := range second.Stages {
		if len(s.Executions) != 1 || s.Executions[0].Source != "cache" || s.Executions[0].From != first {
			t.Errorf("stage %s of the second run: %+v, want it served from cache of %s", s.Addr, s.Executions, first)
		}
		// The cached outputs are in the second run's own directory.
		for _, f := range s.Outputs {
			if _, err := os.Stat(filepath.Join(dir, runstore.DefaultRoot, second.RunID, f.Path)); err != nil {
				t.Errorf("cached output missing from the run: %v", err)
			}
		}
	}
	r := sweetspot(t, dir, "explain", second.RunID, "standardize.scale")
	if r.code != 0 || !strings.Contains(r.stdout, "served from the cache: run "+first) {
		t.Errorf("explain of a hit: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// A changed variable: the stages it reaches run again, and explain names
	// the attribute that changed.
	time.Sleep(1100 * time.Millisecond)
	src, _ := os.ReadFile(filepath.Join(example, "pipeline.hcl"))
	changed := strings.Replace(string(src), "min_accuracy   = 0.85", "min_accuracy   = 0.8", 1)
	if changed == string(src) {
		t.Fatal("the example no longer sets min_accuracy = 0.85; update this test")
	}
	own := filepath.Join(dir, "changed")
	os.Mkdir(own, 0o755)
	writeFile(t, own, "pipeline.hcl", changed)
	if r := sweetspot(t, dir, "run", "-q", "changed"); r.code != 0 {
		t.Fatalf("third run: %s", r.stderr)
	}
	third := runIDs(t, dir)[2]
	r = sweetspot(t, dir, "explain", third, "requirements.sla")
	if !strings.Contains(r.stdout, "config min_accuracy was 0.85, now 0.8") {
		t.Errorf("explain of a miss does not name the attribute:\n%s%s", r.stdout, r.stderr)
	}
	r = sweetspot(t, dir, "explain", third, "standardize.scale")
	if !strings.Contains(r.stdout, "served from the cache") {
		t.Errorf("an unchanged stage upstream of the change was not cached:\n%s", r.stdout)
	}

	time.Sleep(1100 * time.Millisecond)
	if r := sweetspot(t, dir, "run", "-q", "--no-cache", example); r.code != 0 {
		t.Fatalf("--no-cache run: %s", r.stderr)
	}
	fourth := loadRun(t, dir, runIDs(t, dir)[3])
	for _, s := range fourth.Stages {
		if s.Executions[0].Source != "ran" {
			t.Errorf("--no-cache: stage %s came from %s", s.Addr, s.Executions[0].Source)
		}
	}
	if r := sweetspot(t, dir, "explain", fourth.RunID, "dataset.blobs"); !strings.Contains(r.stdout, "--no-cache") {
		t.Errorf("explain after --no-cache:\n%s", r.stdout)
	}
}

// resumePipeline trains real models in a loop, slowly enough to be killed
// in the middle of the evaluation stage.
const resumePipeline = `
dataset "s" {
  generator = "spirals"
  rows      = 1500
  seed      = 3
}
stage "requirements" "r" {
  dataset      = dataset.s
  min_accuracy = 0.9
}
stage "model_choice" "m" {
  input  = stage.requirements.r
  depth  = [1]
  width  = { min = 4, max = 256 }
  steps  = 6
  epochs = 40
}
stage "evaluation" "e" {
  input       = stage.model_choice.m
  dataset     = dataset.s
  parallelism = 1
}
stage "resize" "z" {
  input        = stage.evaluation.e
  requirements = stage.requirements.r
  loop_to      = stage.evaluation.e
  max_rounds   = 4
}
`

func TestKilledRunResumesWithoutRetrainingAndDecidesTheSame(t *testing.T) {
	// The uninterrupted run, for the decision to compare with.
	whole := t.TempDir()
	writeFile(t, whole, "p.hcl", resumePipeline)
	// Its search may end with no model found (exit 4): the resumed run
	// must end the same.
	wantCode := sweetspot(t, whole, "run", "-q", "p.hcl").code
	if wantCode != exitOK && wantCode != exitNoAnswer {
		t.Fatalf("uninterrupted run: exit %d", wantCode)
	}
	want := loadRun(t, whole, runIDs(t, whole)[0]).Decision

	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", resumePipeline)
	cmd := exec.Command(binary, "run", "--json", "p.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	trials := 0
	sc := bufio.NewScanner(stdout)
	for trials < 3 && sc.Scan() {
		var e struct{ Type, Stage string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "progress" && e.Stage == "evaluation.e" {
			trials++
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	_ = cmd.Wait()
	if trials < 3 {
		t.Fatal("the evaluation stage never reported 3 trials")
	}
	id := runIDs(t, dir)[0]
	assertGone(t, loadRun(t, dir, id))

	journalled := journalledTrials(t, filepath.Join(dir, runstore.DefaultRoot, id, runstore.JournalPath(runstore.OutputRel("evaluation.e", 1, "results"))))
	// Progress can reach the host a moment before the trial's row is
	// journalled, so the journal may lag the events by a trial or two.
	if len(journalled) == 0 {
		t.Fatal("nothing was journalled before the kill")
	}

	r := sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl")
	if r.code != wantCode {
		t.Fatalf("resume: exit %d, want %d\n%s", r.code, wantCode, r.stderr)
	}
	m := loadRun(t, dir, id)
	if m.Status != runstore.StatusSucceeded || m.Attempts != 2 {
		t.Errorf("resumed run: status %s, attempts %d", m.Status, m.Attempts)
	}
	if m.Decision == nil || want == nil || m.Decision.Status != want.Status || m.Decision.Chosen != want.Chosen {
		t.Errorf("resumed decision %+v, uninterrupted %+v", m.Decision, want)
	}
	// Every trial journalled before the kill was trained exactly once: one
	// trial span for it over both attempts.
	spans := trialSpans(t, filepath.Join(dir, runstore.DefaultRoot, id, "spans"))
	for c := range journalled {
		if spans["trial "+c] != 1 {
			t.Errorf("trial %s was trained %d times", c, spans["trial "+c])
		}
	}
	for _, s := range m.Stages {
		if s.Addr != "evaluation.e" {
			continue
		}
		e, ok := s.Execution(1)
		if !ok || !strings.Contains(e.Note, fmt.Sprintf("resumed with %d journalled row(s)", len(journalled))) {
			t.Errorf("round 1 of evaluation.e was not resumed from its journal: %+v", e)
		}
	}
	// Stages that had finished were kept, not run again.
	for _, s := range m.Stages {
		if s.Addr == "dataset.s" || s.Addr == "model_choice.m" {
			if src := s.Executions[0].Source; src != "resumed" {
				t.Errorf("stage %s was %s on resume, want kept", s.Addr, src)
			}
		}
	}
}

func journalledTrials(t *testing.T, path string) map[string]bool {
	t.Helper()
	_, batches, err := runstore.ReadJournal(path, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, b := range batches {
		ids := b.Column(b.Schema().FieldIndices("candidate_id")[0]).(*array.String)
		for i := 0; i < ids.Len(); i++ {
			out[ids.Value(i)] = true
		}
		b.Release()
	}
	return out
}

// trialSpans counts spans named "trial ..." in a run's span files.
func trialSpans(t *testing.T, dir string) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	counts := map[string]int{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(strings.NewReader(string(data)))
		for dec.More() {
			var s struct{ Name string }
			if err := dec.Decode(&s); err != nil {
				break // a span torn by the kill
			}
			if strings.HasPrefix(s.Name, "trial ") {
				counts[s.Name]++
			}
		}
	}
	return counts
}

func TestEditedDatasetFileIsNotServedFromCache(t *testing.T) {
	dir := t.TempDir()
	iris, err := os.ReadFile("../../testdata/datasets/sklearn/iris.csv")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "iris.csv", string(iris))
	writeFile(t, dir, "p.hcl", `
dataset "iris" {
  path = "iris.csv"
}
stage "requirements" "r" {
  dataset = dataset.iris
}
`)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("first run: %s", r.stderr)
	}
	// Change one measurement: the config text is unchanged, the data are not.
	lines := strings.Split(strings.TrimRight(string(iris), "\n"), "\n")
	last := strings.SplitN(lines[len(lines)-1], ",", 2)
	lines[len(lines)-1] = "9.9," + last[1]
	writeFile(t, dir, "iris.csv", strings.Join(lines, "\n")+"\n")
	time.Sleep(1100 * time.Millisecond)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("second run: %s", r.stderr)
	}
	second := loadRun(t, dir, runIDs(t, dir)[1])
	for _, s := range second.Stages {
		if src := s.Executions[0].Source; src != "ran" {
			t.Errorf("stage %s came from %s after its data file changed", s.Addr, src)
		}
	}
	r := sweetspot(t, dir, "explain", second.RunID, "dataset.iris")
	if !strings.Contains(r.stdout, "the file named by path changed") {
		t.Errorf("explain does not name the changed file:\n%s%s", r.stdout, r.stderr)
	}
}

func TestEditedTrainingScriptIsNotServedFromCache(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train.sh", `echo '{"accuracy": 0.5, "loss": 1.0}'`+"\n")
	writeFile(t, dir, "p.hcl", `
dataset "d" {
  generator = "blobs"
  rows      = 200
}
stage "requirements" "r" {
  dataset = dataset.d
}
stage "model_choice" "m" {
  input = stage.requirements.r
  width = { min = 4, max = 8 }
  steps = 2
}
stage "exec" "e" {
  input   = stage.model_choice.m
  command = ["sh", "train.sh"]
}
`)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("first run: %s", r.stderr)
	}
	writeFile(t, dir, "train.sh", `echo '{"accuracy": 0.75, "loss": 0.5}'`+"\n")
	time.Sleep(1100 * time.Millisecond)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("second run: %s", r.stderr)
	}
	second := loadRun(t, dir, runIDs(t, dir)[1])
	for _, s := range second.Stages {
		src := s.Executions[0].Source
		if s.Addr == "exec.e" && src != "ran" {
			t.Errorf("exec.e came from %s after its script changed", src)
		}
		if s.Addr != "exec.e" && src != "cache" {
			t.Errorf("unchanged stage %s came from %s, want the cache", s.Addr, src)
		}
	}
	r := sweetspot(t, dir, "explain", second.RunID, "exec.e")
	if !strings.Contains(r.stdout, "the file named by command[1] changed") {
		t.Errorf("explain does not name the changed script:\n%s%s", r.stdout, r.stderr)
	}
}

// Identical stages of one pipeline (a chain of passthroughs over the same
// data) share a cache key; served from the cache, each still gets its
// outputs at its own paths, with the recorded size and hash.
func TestStagesSharingACacheKeyKeepTheirOwnOutputs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "emit" "e" {
  plugin = "testkit"
  rows   = 100
}
stage "passthrough" "a" {
  plugin = "testkit"
  input  = stage.emit.e
}
stage "passthrough" "b" {
  plugin = "testkit"
  input  = stage.passthrough.a
}
stage "passthrough" "c" {
  plugin = "testkit"
  input  = stage.passthrough.b
}
`)
	for i := range 2 {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // run ids sort by the second they start
		}
		if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
			t.Fatalf("run %d: %s", i+1, r.stderr)
		}
	}
	ids := runIDs(t, dir)
	second := loadRun(t, dir, ids[1])
	for _, s := range second.Stages {
		if s.Addr != "emit.e" && (len(s.Executions) != 1 || s.Executions[0].Source != "cache") {
			t.Errorf("stage %s: %+v, want it served from the cache", s.Addr, s.Executions)
		}
		for _, f := range s.Outputs {
			if want := runstore.OutputRel(s.Addr, f.Round, f.Port); f.Path != want {
				t.Errorf("stage %s's output is recorded at %s, want its own %s", s.Addr, f.Path, want)
			}
			sum, err := runstore.FileSHA256(filepath.Join(dir, runstore.DefaultRoot, second.RunID, f.Path))
			if err != nil || sum != f.SHA256 {
				t.Errorf("stage %s: %s has sha256 %s (%v), recorded %s", s.Addr, f.Path, sum, err, f.SHA256)
			}
		}
	}
}
