package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// killPipeline is a resize loop of real training that is cheap enough to be
// killed twenty times in a test: 15 trials of about 60 ms over five rounds,
// about two seconds in all. Only min_accuracy is required, so the decision
// depends on the (seeded) training, never on timing.
const killPipeline = `
dataset "s" {
  generator     = "spirals"
  rows          = 800
  test_fraction = 0.25
  seed          = 7
}
stage "requirements" "r" {
  dataset      = dataset.s
  min_accuracy = 0.9
}
stage "model_choice" "m" {
  input = stage.requirements.r
  depth = [1]
  width = { min = 2, max = 128 }
  steps = 7
}
stage "optimization" "o" {
  input         = stage.model_choice.m
  dataset       = dataset.s
  learning_rate = [0.01, 0.03]
  preprocess    = ["standardize"]
}
stage "evaluation" "e" {
  input            = stage.optimization.o
  dataset          = dataset.s
  epochs           = 40
  latency_samples  = 5
  throughput_batch = 16
}
stage "resize" "z" {
  input               = stage.evaluation.e
  requirements        = stage.requirements.r
  loop_to             = stage.evaluation.e
  max_rounds          = 8
  tolerance           = 0.05
  proposals_per_round = 2
}
`

// hostEvent is the part of a --json event the kill tests look at.
type hostEvent struct {
	Type     string `json:"type"`
	RunID    string `json:"run_id"`
	Stage    string `json:"stage"`
	Round    int    `json:"round"`
	Pid      int    `json:"pid"`
	Source   string `json:"source"`
	Progress *struct {
		Done, Total int64
		Message     string
	} `json:"progress"`
	at time.Duration // since the process started
}

// hostProcess is one `sweetspot run --json` process, watched through its
// events.
type hostProcess struct {
	cmd    *exec.Cmd
	start  time.Time
	events chan hostEvent // closed when stdout ends
	stderr bytes.Buffer
}

func startHost(t *testing.T, dir string, args ...string) *hostProcess {
	t.Helper()
	h := &hostProcess{events: make(chan hostEvent, 1024)}
	h.cmd = exec.Command(binary, append([]string{"run", "--json"}, args...)...)
	h.cmd.Dir = dir
	h.cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir, "NO_COLOR=1", "OTEL_TRACES_EXPORTER=none")
	// Its own process group, as a shell gives a job, so that a signal to
	// the group reaches the host and its plugins as Ctrl-C does.
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	h.cmd.Stderr = &h.stderr
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.start = time.Now()
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever a failed test leaves of the group goes with it.
	t.Cleanup(func() { _ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL) })
	go func() {
		defer close(h.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e hostEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				e.at = time.Since(h.start)
				h.events <- e
			}
		}
	}()
	return h
}

// wait waits for the process and returns its exit code (-1 when killed by
// a signal).
func (h *hostProcess) wait(t *testing.T) int {
	t.Helper()
	for range h.events {
	}
	err := h.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		t.Fatal(err)
		return 0
	}
}

// killPoint says when to kill a host: delay after the nth event that
// matches, or after the process started when match is nil.
type killPoint struct {
	phase string
	match func(hostEvent) bool
	nth   int
	delay time.Duration
}

func (k killPoint) String() string {
	if k.match == nil {
		return fmt.Sprintf("%s: %s after the process started", k.phase, k.delay)
	}
	return fmt.Sprintf("%s: %s after event %d", k.phase, k.delay, k.nth)
}

// randomKillPoint picks a phase of the run and a moment in it. startup is
// how long the uninterrupted run took to start its first stage.
func randomKillPoint(rng *rand.Rand, startup time.Duration) killPoint {
	upTo := func(d time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(d))) }
	evaluation := func(e hostEvent) bool { return e.Type == "progress" && e.Stage == "evaluation.e" }
	// Phases by weight out of 20: start-up 4, mid-stage 4, mid-journal-write
	// 6, between rounds 3, committing 3. Most kills cost the run little
	// progress, so the twenty of them spread over the whole run.
	switch n := rng.IntN(20); {
	case n < 4:
		return killPoint{phase: "start-up", delay: upTo(startup + startup/2)}
	case n < 8:
		return killPoint{phase: "mid-stage", nth: 1 + rng.IntN(8), delay: upTo(40 * time.Millisecond),
			match: func(e hostEvent) bool { return e.Type == "stage_started" }}
	case n < 14:
		// The host journals a trial's row as its progress arrives.
		return killPoint{phase: "mid-journal-write", nth: 1, delay: upTo(3 * time.Millisecond), match: evaluation}
	case n < 17:
		return killPoint{phase: "between rounds", nth: 1 + rng.IntN(3), delay: upTo(5 * time.Millisecond),
			match: func(e hostEvent) bool { return e.Type == "decision" || e.Type == "round_started" }}
	default:
		// After a round's last trial the stage commits its file, the
		// manifest records it and the journal goes.
		return killPoint{phase: "committing", nth: 1, delay: upTo(15 * time.Millisecond),
			match: func(e hostEvent) bool {
				return evaluation(e) && e.Progress != nil && e.Progress.Done == e.Progress.Total
			}}
	}
}

// killAt kills the host with SIGKILL at k, unless it ends first. It returns
// the run id the host announced ("" when it was killed before) and whether
// the kill happened.
func (h *hostProcess) killAt(t *testing.T, k killPoint) (runID string, killed bool) {
	t.Helper()
	var fire <-chan time.Time
	if k.match == nil {
		fire = time.After(time.Until(h.start.Add(k.delay)))
	}
	seen := 0
	for {
		select {
		case e, ok := <-h.events:
			if !ok {
				// Its stdout closes when the host ends: too late to kill.
				return runID, false
			}
			if e.RunID != "" {
				runID = e.RunID
			}
			if fire == nil && k.match(e) {
				if seen++; seen == k.nth {
					fire = time.After(k.delay)
				}
			}
		case <-fire:
			if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Fatal(err)
			}
			// Events already written still tell the run id.
			for e := range h.events {
				if e.RunID != "" {
					runID = e.RunID
				}
			}
			return runID, true
		}
	}
}

// trialResult is what identifies one training of a trial: a trial trained
// again gets another trace id (each attempt is its own trace) and another
// train_seconds.
type trialResult struct {
	Round        int64
	TraceID      string
	TrainSeconds float64
}

// readTrials reads candidate_id, round, trace_id and train_seconds from
// result batches, failing on a trial (a candidate's repeat in a round)
// seen twice.
func readTrials(t *testing.T, what string, batches []arrow.RecordBatch, into map[string]trialResult) {
	t.Helper()
	for _, b := range batches {
		col := func(name string) arrow.Array {
			idx := b.Schema().FieldIndices(name)
			if len(idx) == 0 {
				t.Fatalf("%s has no column %s", what, name)
			}
			return b.Column(idx[0])
		}
		ids := col("candidate_id").(*array.String)
		rounds := col("round").(*array.Int32)
		traces := col("trace_id").(*array.String)
		secs := col("train_seconds").(*array.Float64)
		repeats := col("repeat").(*array.Int32)
		for i := 0; i < ids.Len(); i++ {
			// A trial is a candidate's repeat in a round: resize measures
			// a model again near its target, and may propose a pruned
			// model again in a later round.
			key := trialKey(rounds.Value(i), ids.Value(i))
			if r := repeats.Value(i); !repeats.IsNull(i) && r > 0 {
				key = fmt.Sprintf("%s repeat %d", key, r)
			}
			if _, dup := into[key]; dup {
				t.Errorf("%s: trial %s appears twice", what, key)
			}
			into[key] = trialResult{Round: int64(rounds.Value(i)), TraceID: traces.Value(i), TrainSeconds: secs.Value(i)}
		}
	}
}

// trialKey names a candidate's trial in a round (its first repeat), as
// readTrials keys its results.
func trialKey(round int32, id string) string { return fmt.Sprintf("round %d %s", round, id) }

// readPortFiles reads the Arrow files of a port as batches.
func readPortFiles(t *testing.T, runDir string, files []runstore.OutputFile) []arrow.RecordBatch {
	t.Helper()
	var paths []string
	for _, f := range files {
		if len(files) > 1 && f.Port == "models" {
			// Read apart: the models table has a schema of its own.
			continue
		}
		paths = append(paths, filepath.Join(runDir, f.Path))
	}
	rd, err := runstore.OpenFiles(paths, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var out []arrow.RecordBatch
	for rd.Next() {
		b := rd.RecordBatch()
		b.Retain()
		out = append(out, b)
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func release(bs []arrow.RecordBatch) {
	for _, b := range bs {
		b.Release()
	}
}

// durableTrials is every trial result a crash can no longer take away:
// the evaluation outputs the manifest records, and the rows journalled
// for the rounds it does not.
func durableTrials(t *testing.T, runDir string) map[string]trialResult {
	t.Helper()
	return durableTrialsOf(t, runDir, "evaluation.e")
}

// durableTrialsOf is durableTrials of the stage at addr.
func durableTrialsOf(t *testing.T, runDir, addr string) map[string]trialResult {
	t.Helper()
	out := map[string]trialResult{}
	if _, err := os.Stat(filepath.Join(runDir, runstore.ManifestFile)); errors.Is(err, os.ErrNotExist) {
		return out
	}
	// The snapshot and its change log, as a resume reads them.
	m, err := runstore.ReadManifest(runDir)
	if err != nil {
		t.Fatalf("the manifest is not whole after a kill: %v", err)
	}
	recorded := map[int]bool{}
	for _, s := range m.Stages {
		if s.Addr != addr {
			continue
		}
		for _, e := range s.Executions {
			if e.Status != runstore.StatusSucceeded {
				continue
			}
			recorded[e.Round] = true
			bs := readPortFiles(t, runDir, e.Files)
			readTrials(t, fmt.Sprintf("round %d's output", e.Round), bs, out)
			release(bs)
		}
	}
	journals, _ := filepath.Glob(filepath.Join(runDir, "stages", addr, "round-*", "results.journal.arrows"))
	for _, j := range journals {
		round, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(j)), "round-"))
		if recorded[round] {
			continue // a journal the host had not removed yet
		}
		_, bs, err := runstore.ReadJournal(j, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		readTrials(t, j, bs, out)
		release(bs)
	}
	return out
}

// procStart identifies a process across pid reuse: its start time in
// clock ticks since boot (field 22 of /proc/PID/stat).
func procStart(pid int) (string, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	s := string(data)
	// The command may hold spaces and parentheses: fields follow the last ')'.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 || fields[0] == "Z" {
		return "", false
	}
	return fields[19], true
}

// pluginProcesses lists the live plugin processes that the binary under
// test started in dir, by pid with their start time.
func pluginProcesses(t *testing.T, dir string) map[int]string {
	t.Helper()
	return processes(t, dir, func(cwd, dir string, args []string) bool {
		return cwd == dir && len(args) >= 2 && args[0] == binary && args[1] == pluginModeArg
	})
}

// processes lists the live processes that match, by pid with their start
// time: match sees each one's working directory, dir with its symlinks
// resolved, and its command line.
func processes(t *testing.T, dir string, match func(cwd, dir string, args []string) bool) map[int]string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		testenv.Missing(t, "no /proc to look for processes in: %v", err)
	}
	out := map[int]string{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !match(cwd, real, strings.Split(string(cmdline), "\x00")) {
			continue
		}
		if st, ok := procStart(pid); ok {
			out[pid] = st
		}
	}
	return out
}

// assertExited waits a few seconds for plugin processes to end.
func assertExited(t *testing.T, procs map[int]string, what string) {
	t.Helper()
	waitProcsGone(t, "plugin", procs, what, 5*time.Second)
}

// waitProcsGone waits up to within for procs (pid to start time) to end; one
// that does not, still the same process, is reported as a kind process
// that outlived what, and killed so it outlives the test no more.
func waitProcsGone(t *testing.T, kind string, procs map[int]string, what string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for pid, st := range procs {
		for {
			now, alive := procStart(pid)
			if !alive || now != st {
				break
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Errorf("%s process %d outlived %s", kind, pid, what)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// killSeed is the seed of the kill points: SWEETSPOT_KILL_SEED replays a
// failure the test logged.
func killSeed(t *testing.T) uint64 {
	if s := os.Getenv("SWEETSPOT_KILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SWEETSPOT_KILL_SEED=%q: %v", s, err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

func TestRunKilledTwentyTimesResumesToTheSameDecision(t *testing.T) {
	seed := killSeed(t)
	t.Logf("kill points from seed %d (replay with SWEETSPOT_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))

	// The uninterrupted run: the decision and trials to match, and how
	// long the host takes to start its first stage.
	whole := t.TempDir()
	writeFile(t, whole, "p.hcl", killPipeline)
	h := startHost(t, whole, "p.hcl")
	startup := time.Duration(0)
	for e := range h.events {
		if e.Type == "stage_started" && startup == 0 {
			startup = e.at
		}
	}
	if code := h.wait(t); code != 0 {
		t.Fatalf("uninterrupted run: exit %d\n%s", code, h.stderr.String())
	}
	wantRun := loadRun(t, whole, runIDs(t, whole)[0])
	want := wantRun.Decision
	if want == nil || want.Rounds < 3 {
		t.Fatalf("the uninterrupted run decided %+v; the pipeline should loop at least 3 rounds", want)
	}
	wantTrials := map[string]trialResult{}
	wantDir := filepath.Join(whole, runstore.DefaultRoot, wantRun.RunID)
	for _, s := range wantRun.Stages {
		if s.Addr == "evaluation.e" {
			bs := readPortFiles(t, wantDir, s.Outputs)
			readTrials(t, "uninterrupted output", bs, wantTrials)
			release(bs)
		}
	}

	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", killPipeline)
	id := ""
	durable := map[string]trialResult{}
	orphans := map[int]string{}
	const kills = 20
	for i := 0; i < kills; i++ {
		k := randomKillPoint(rng, startup)
		args := []string{"p.hcl"}
		if id != "" {
			args = []string{"--resume", id, "p.hcl"}
		}
		h := startHost(t, dir, args...)
		announced, killed := h.killAt(t, k)
		code := h.wait(t)
		if id == "" {
			id = announced
		}
		if id == "" {
			// Killed after the run directory was made but before its id
			// was printed: the user finds it with runs list, as here.
			if ids := runIDs(t, dir); len(ids) == 1 {
				id = ids[0]
			}
		}
		switch {
		case killed:
			t.Logf("kill %d, %s", i+1, k)
		case code == 0:
			t.Logf("kill %d, %s: the run finished first", i+1, k)
		default:
			t.Fatalf("attempt %d (%s): exit %d\n%s", i+1, k, code, h.stderr.String())
		}
		for pid, st := range pluginProcesses(t, dir) {
			orphans[pid] = st
		}
		if id == "" {
			continue // killed before it made a run directory
		}
		// A result that survived one kill survives every later one, as it
		// was: its trial is never trained again.
		for c, r := range durableTrials(t, filepath.Join(dir, runstore.DefaultRoot, id)) {
			if old, ok := durable[c]; ok && old != r {
				t.Errorf("after kill %d (%s) trial %s is %+v, but it was %+v before: a finished trial was trained again", i+1, k, c, r, old)
			}
			durable[c] = r
		}
	}
	// Plugins notice the host is gone and end by themselves.
	assertExited(t, orphans, "its killed host")

	args := []string{"p.hcl"}
	if id != "" {
		args = []string{"--resume", id, "p.hcl"}
	}
	h = startHost(t, dir, args...)
	if code := h.wait(t); code != 0 {
		t.Fatalf("last resume: exit %d\n%s", code, h.stderr.String())
	}
	if id == "" {
		id = runIDs(t, dir)[0]
	}
	if ids := runIDs(t, dir); len(ids) != 1 {
		t.Errorf("run directories %v, want only %s", ids, id)
	}
	m := loadRun(t, dir, id)
	runDir := filepath.Join(dir, runstore.DefaultRoot, id)
	if m.Decision == nil || m.Decision.Status != want.Status || m.Decision.Chosen != want.Chosen || m.Decision.Rounds != want.Rounds {
		t.Errorf("decision after %d kills: %+v\nuninterrupted: %+v", kills, m.Decision, want)
	}

	// Every trial exactly once, the same trials as the uninterrupted run,
	// and each durable result as it was first recorded.
	got := map[string]trialResult{}
	for _, s := range m.Stages {
		if s.Addr == "evaluation.e" {
			bs := readPortFiles(t, runDir, s.Outputs)
			readTrials(t, "final output", bs, got)
			release(bs)
		}
	}
	for c, r := range wantTrials {
		g, ok := got[c]
		if !ok {
			t.Errorf("trial %s (round %d) is missing", c, r.Round)
		} else if g.Round != r.Round {
			t.Errorf("trial %s ran in round %d, uninterrupted in round %d", c, g.Round, r.Round)
		}
	}
	for c := range got {
		if _, ok := wantTrials[c]; !ok {
			t.Errorf("trial %s was not in the uninterrupted run", c)
		}
	}
	for c, r := range durable {
		if got[c] != r {
			t.Errorf("trial %s is %+v in the end, but %+v was recorded before a kill", c, got[c], r)
		}
	}
	if len(durable) == 0 {
		t.Error("no kill left a trial result behind: the kill points miss the evaluation stage")
	}

	assertConsistent(t, runDir, m)
	assertExited(t, pluginProcesses(t, dir), "the finished run")
}

// assertConsistent checks a finished run's manifest against its directory:
// one execution per stage and round, outputs that are exactly the
// executions' files, each file there with its recorded size, rows and
// sha256, and nothing left over from the attempts that were killed.
func assertConsistent(t *testing.T, runDir string, m runstore.Manifest) {
	t.Helper()
	if m.Status != runstore.StatusSucceeded || m.Error != "" || m.FinishedAt == nil {
		t.Errorf("run status %s, error %q, finished %v", m.Status, m.Error, m.FinishedAt)
	}
	if m.Attempts < 2 || m.Attempts != len(m.TraceIDs) || m.TraceID != m.TraceIDs[len(m.TraceIDs)-1] {
		t.Errorf("attempts %d with traces %v (latest %s)", m.Attempts, m.TraceIDs, m.TraceID)
	}
	listed := map[string]bool{}
	for _, s := range m.Stages {
		if s.Status != runstore.StatusSucceeded || s.Error != "" {
			t.Errorf("stage %s: %s %s", s.Addr, s.Status, s.Error)
		}
		rounds := map[int]bool{}
		var files []runstore.OutputFile
		for _, e := range s.Executions {
			if rounds[e.Round] {
				t.Errorf("stage %s has two executions of round %d", s.Addr, e.Round)
			}
			rounds[e.Round] = true
			if e.Status != runstore.StatusSucceeded {
				t.Errorf("stage %s round %d: %s", s.Addr, e.Round, e.Status)
			}
			files = append(files, e.Files...)
		}
		if (s.Addr == "evaluation.e" || s.Addr == "resize.z") && m.Decision != nil {
			if s.Rounds != m.Decision.Rounds || len(s.Executions) != m.Decision.Rounds {
				t.Errorf("stage %s: rounds %d, %d executions; the loop ran %d", s.Addr, s.Rounds, len(s.Executions), m.Decision.Rounds)
			}
		}
		if !sameFiles(files, s.Outputs) {
			t.Errorf("stage %s lists outputs %+v\nits executions wrote %+v", s.Addr, s.Outputs, files)
		}
		for _, f := range s.Outputs {
			listed[filepath.Clean(f.Path)] = true
			path := filepath.Join(runDir, f.Path)
			sum, err := runstore.FileSHA256(path)
			if err != nil || sum != f.SHA256 {
				t.Errorf("%s: sha256 %s (%v), manifest %s", f.Path, sum, err, f.SHA256)
				continue
			}
			if fi, _ := os.Stat(path); fi.Size() != f.Bytes {
				t.Errorf("%s: %d bytes, manifest %d", f.Path, fi.Size(), f.Bytes)
			}
			bs := readPortFiles(t, runDir, []runstore.OutputFile{f})
			var rows int64
			for _, b := range bs {
				rows += b.NumRows()
			}
			release(bs)
			if rows != f.Rows {
				t.Errorf("%s: %d rows, manifest %d", f.Path, rows, f.Rows)
			}
		}
	}
	_ = filepath.WalkDir(filepath.Join(runDir, "stages"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(runDir, path)
		if !listed[rel] {
			t.Errorf("%s is left in the run directory, and the manifest does not list it", rel)
		}
		return nil
	})
	leftovers, _ := filepath.Glob(filepath.Join(runDir, ".*.tmp-*"))
	for _, l := range leftovers {
		t.Errorf("%s is left in the run directory", l)
	}
}

// sameFiles reports whether two lists hold the same files, in any order.
func sameFiles(a, b []runstore.OutputFile) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[runstore.OutputFile]int{}
	for _, f := range a {
		count[f]++
	}
	for _, f := range b {
		if count[f]--; count[f] < 0 {
			return false
		}
	}
	return true
}
