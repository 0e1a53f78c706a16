package main

import (
	"bufio"
	"bytes"
	bin "encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// These tests replay an outside attack on the run store through the
// binary: one byte changed in a committed file or in a journal, a file cut
// short, a second --resume of a run in use.

// smallEvalPipeline trains a few small models in a few seconds.
const smallEvalPipeline = `
dataset "s" {
  generator = "spirals"
  rows      = 400
  seed      = 3
}
stage "requirements" "r" {
  dataset      = dataset.s
  min_accuracy = 0.6
}
stage "model_choice" "m" {
  input  = stage.requirements.r
  depth  = [1]
  width  = { min = 4, max = 32 }
  steps  = 4
  epochs = 5
}
stage "evaluation" "e" {
  input       = stage.model_choice.m
  dataset     = dataset.s
  parallelism = 1
}
`

// searchEnded reports whether a run of resumePipeline ended as a search
// may: with an answer (0) or with its rounds spent before any model met the
// target (exitNoAnswer). Which one depends on the trials' noise; what these
// tests check is that the run store carried the run to its end.
func searchEnded(code int) bool { return code == exitOK || code == exitNoAnswer }

// uniqueAccuracy picks a trial's accuracy whose 8 bytes occur once in the
// file at path.
func uniqueAccuracy(t *testing.T, path string, values []float64) float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		var enc [8]byte
		bin.LittleEndian.PutUint64(enc[:], math.Float64bits(v))
		if at := bytes.Index(data, enc[:]); at >= 0 && bytes.Index(data[at+1:], enc[:]) < 0 {
			return v
		}
	}
	t.Fatalf("no accuracy of %v occurs once in %s", values, path)
	return 0
}

// flipFloatIn changes one byte of the one place the file at path holds v
// (its exponent's low bit), in place: the inode every hard link to the
// file shares, past its read-only mode, as root or a chmod could.
func flipFloatIn(t *testing.T, path string, v float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var enc [8]byte
	bin.LittleEndian.PutUint64(enc[:], math.Float64bits(v))
	at := bytes.Index(data, enc[:])
	if at < 0 {
		t.Fatalf("%g is not in %s", v, path)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{data[at+7] ^ 0x01}, int64(at+7)); err != nil {
		t.Fatal(err)
	}
}

// accuracyValues reads the candidate ids and accuracies of a committed
// results file, or of the rows its journal hands back.
func accuracyValues(t *testing.T, path string, journal bool) (ids []string, acc []float64) {
	t.Helper()
	add := func(b arrow.RecordBatch) {
		ids = append(ids, stringColumn(b.Column(b.Schema().FieldIndices("candidate_id")[0]))...)
		acc = append(acc, b.Column(b.Schema().FieldIndices("accuracy")[0]).(*array.Float64).Float64Values()...)
	}
	if journal {
		_, bs, err := runstore.ReadJournal(path, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			add(b)
			b.Release()
		}
		return ids, acc
	}
	rd, err := runstore.OpenFiles([]string{path}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	for rd.Next() {
		add(rd.RecordBatch())
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return ids, acc
}

func stringColumn(a arrow.Array) []string {
	c := a.(*array.String)
	out := make([]string, c.Len())
	for i := range out {
		out[i] = c.Value(i)
	}
	return out
}

// refusal checks that a command failed and said which file of which run,
// stage and port is damaged.
func refusal(t *testing.T, what string, r result, run, file string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s of a damaged run succeeded:\n%s%s", what, r.stdout, r.stderr)
		return
	}
	for _, want := range []string{"run " + run, "stage evaluation.e", "port results", file, "damaged"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("%s: stderr does not say %q:\n%s", what, want, r.stderr)
		}
	}
}

// Defect 1: one float changed in a committed results file was used by
// runs show, runs export, report and --resume; a file cut short made
// --resume report success and its own summary fail. Every one of them now
// refuses the file, naming the run, stage, port and file.
func TestDamagedFileIsRefusedByShowExportReportAndResume(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", smallEvalPipeline)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	id := runIDs(t, dir)[0]
	rel := runstore.OutputRel("evaluation.e", 0, "results")
	path := filepath.Join(dir, runstore.DefaultRoot, id, rel)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o222 != 0 {
		t.Errorf("a committed file is writable: %v, %v", fi.Mode(), err)
	}
	_, acc := accuracyValues(t, path, false)
	flipFloatIn(t, path, uniqueAccuracy(t, path, acc))

	refusal(t, "runs show", sweetspot(t, dir, "runs", "show", id), id, rel)
	out := filepath.Join(dir, "results.csv")
	refusal(t, "runs export", sweetspot(t, dir, "runs", "export", id, "--format", "csv", "-o", out), id, rel)
	if _, err := os.Stat(out); err == nil {
		t.Error("runs export wrote a file from damaged data")
	}
	refusal(t, "report", sweetspot(t, dir, "report", id, "-o", filepath.Join(dir, "r.html")), id, rel)
	refusal(t, "run --resume", sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl"), id, rel)

	// Cut short: the resume says so at once rather than succeed.
	if err := os.Truncate(path, 1000); err != nil {
		t.Fatal(err)
	}
	r := sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl")
	refusal(t, "run --resume of a file cut short", r, id, rel)
	if !strings.Contains(r.stderr, "1000 bytes") {
		t.Errorf("the resume does not say the file is cut short:\n%s", r.stderr)
	}
	if m := loadRun(t, dir, id); m.Status == runstore.StatusSucceeded {
		t.Errorf("the resumed run is recorded as %s", m.Status)
	}
}

// Defect 2: a cache hit is a hard link, so one damaged file damaged every
// run that shared it, silently. The shared inode is now read-only, damage
// done to it anyway is refused in both runs, and a later run is not served
// the damaged file: it runs the stage again, saying why.
func TestCacheHitSharesNoWritableFileAndDamageIsRefusedInBothRuns(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", smallEvalPipeline)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("first run: %s", r.stderr)
	}
	time.Sleep(1100 * time.Millisecond) // run ids sort by the second they start
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("second run: %s", r.stderr)
	}
	ids := runIDs(t, dir)
	rel := runstore.OutputRel("evaluation.e", 0, "results")
	first := filepath.Join(dir, runstore.DefaultRoot, ids[0], rel)
	second := filepath.Join(dir, runstore.DefaultRoot, ids[1], rel)
	for _, s := range loadRun(t, dir, ids[1]).Stages {
		if s.Executions[0].Source != "cache" {
			t.Fatalf("stage %s of the second run was not served from the cache", s.Addr)
		}
	}
	for _, p := range []string{first, second} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable (%v)", p, fi.Mode().Perm())
		}
	}

	_, acc := accuracyValues(t, first, false)
	flipFloatIn(t, first, uniqueAccuracy(t, first, acc))
	refusal(t, "runs show of the first run", sweetspot(t, dir, "runs", "show", ids[0]), ids[0], rel)
	refusal(t, "runs show of the run served from its cache", sweetspot(t, dir, "runs", "show", ids[1]), ids[1], rel)

	time.Sleep(1100 * time.Millisecond)
	r := sweetspot(t, dir, "run", "-q", "p.hcl")
	if r.code != 0 {
		t.Fatalf("third run: %s", r.stderr)
	}
	if !strings.Contains(r.stderr, "is damaged") {
		t.Errorf("the third run does not say why it did not use the cache:\n%s", r.stderr)
	}
	third := loadRun(t, dir, runIDs(t, dir)[2])
	for _, s := range third.Stages {
		if s.Addr == "evaluation.e" && s.Executions[0].Source != "ran" {
			t.Errorf("the third run's evaluation came from %s %s, want it run again", s.Executions[0].Source, s.Executions[0].From)
		}
	}
	if r := sweetspot(t, dir, "runs", "show", third.RunID); r.code != 0 {
		t.Errorf("runs show of the third run: %s", r.stderr)
	}
}

// Defect 3: a damaged journal. A flipped value came back as a trial's
// result in a "succeeded" run. Now the damaged trial is trained again,
// the others are kept, and the log and the manifest say which.
func TestKilledRunWithADamagedJournalResumesTrainingTheDamagedTrialAgain(t *testing.T) {
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
	id := ""
	journal := ""
	sc := bufio.NewScanner(stdout)
	deadline := time.Now().Add(2 * time.Minute)
	for sc.Scan() && time.Now().Before(deadline) {
		var e struct {
			Type, Stage string
			RunID       string `json:"run_id"`
			Round       int
		}
		if json.Unmarshal(sc.Bytes(), &e) != nil {
			continue
		}
		id = e.RunID
		if e.Type == "progress" && e.Stage == "evaluation.e" {
			journal = filepath.Join(dir, runstore.DefaultRoot, id, runstore.JournalPath(runstore.OutputRel("evaluation.e", e.Round, "results")))
			if ids, _ := accuracyValues(t, journal, true); len(ids) >= 3 {
				break
			}
		}
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	go io.Copy(io.Discard, stdout)
	_ = cmd.Wait()
	if journal == "" {
		t.Fatal("the evaluation stage never journalled 3 trials")
	}
	ids, acc := accuracyValues(t, journal, true)
	if len(acc) < 3 {
		t.Fatalf("the journal holds %d trial(s) after the kill, want 3 or more", len(acc))
	}
	flipped := uniqueAccuracy(t, journal, acc[1:])
	var damagedTrial string
	for i, a := range acc {
		if a == flipped {
			damagedTrial = ids[i]
		}
	}
	flipFloatIn(t, journal, flipped)

	r := sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl")
	if !searchEnded(r.code) {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "journal") || !strings.Contains(r.stderr, "damaged") {
		t.Errorf("the resume's log does not warn of the damaged journal:\n%s", r.stderr)
	}
	m := loadRun(t, dir, id)
	var note string
	for _, s := range m.Stages {
		for _, e := range s.Executions {
			if s.Addr == "evaluation.e" && strings.Contains(e.Note, "journal") {
				note = e.Note
			}
		}
	}
	if !strings.Contains(note, "is damaged") || !strings.Contains(note, "trained again") {
		t.Errorf("the manifest's note does not report the damage: %q", note)
	}
	for _, kept := range ids {
		if kept != damagedTrial && !strings.Contains(note, kept) {
			t.Errorf("the note does not name kept trial %s: %q", kept, note)
		}
	}
	// The damaged trial was trained again: once before the kill, once now.
	spans := trialSpans(t, filepath.Join(dir, runstore.DefaultRoot, id, "spans"))
	if n := spans["trial "+damagedTrial]; n != 2 {
		t.Errorf("the damaged trial %s was trained %d times, want again after the resume", damagedTrial, n)
	}
	for _, s := range m.Stages {
		if s.Addr != "evaluation.e" {
			continue
		}
		for _, f := range s.Outputs {
			gotIDs, gotAcc := accuracyValues(t, filepath.Join(dir, runstore.DefaultRoot, id, f.Path), false)
			for i := range gotIDs {
				if gotIDs[i] == damagedTrial && gotAcc[i] != flipped {
					t.Logf("trial %s trained again: accuracy %g", damagedTrial, gotAcc[i])
				}
				if gotAcc[i] < 0.01 {
					t.Errorf("trial %s has accuracy %g: a damaged value was used", gotIDs[i], gotAcc[i])
				}
			}
		}
	}
}

// Defect 4: two --resume of one run both went ahead. The second now fails
// at once, saying which process holds the run, and changes nothing; once
// the holder is gone (even by kill -9) the run resumes.
func TestSecondResumeFailsAtOnceNamingTheProcessThatHoldsTheRun(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", resumePipeline)
	cmd := exec.Command(binary, "run", "--json", "p.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	id := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var e struct {
			Type, Stage string
			RunID       string `json:"run_id"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "progress" && e.Stage == "evaluation.e" {
			id = e.RunID
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if id == "" {
		_ = cmd.Wait()
		t.Fatalf("the evaluation stage never started:\n%s", stderr.String())
	}

	start := time.Now()
	r := sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl")
	took := time.Since(start)
	if r.code == 0 {
		t.Fatalf("a second resume of a run in use succeeded:\n%s", r.stdout)
	}
	if took > 10*time.Second {
		t.Errorf("the second resume took %s to give up", took)
	}
	for _, want := range []string{"run " + id + " is in use", fmt.Sprintf("process %d", cmd.Process.Pid), "since"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the second resume does not say %q:\n%s", want, r.stderr)
		}
	}
	m := loadRun(t, dir, id)
	if m.Attempts != 1 || m.Status != runstore.StatusRunning {
		t.Errorf("the second resume changed the run: attempts %d, status %s", m.Attempts, m.Status)
	}

	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	r = sweetspot(t, dir, "run", "-q", "--resume", id, "p.hcl")
	if !searchEnded(r.code) {
		t.Fatalf("resume after the holder was killed: exit %d\n%s", r.code, r.stderr)
	}
	if m := loadRun(t, dir, id); m.Status != runstore.StatusSucceeded || m.Attempts != 2 {
		t.Errorf("resumed run: status %s, attempts %d", m.Status, m.Attempts)
	}
}
