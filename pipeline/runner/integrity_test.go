package runner_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// rig runs one pipeline into one store, first and resumed, as `sweetspot
// run` and `run --resume` do.
type rig struct {
	t     *testing.T
	p     *config.Pipeline
	store *runstore.Store
}

func newRig(t *testing.T, src string) *rig {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	catalog, err := pluginhost.New(pluginhost.WithSearchPaths(pluginDir))
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close()
	p, diags := config.Load([]string{path}, catalog)
	if diags.HasErrors() {
		t.Fatalf("load: %s", diags.Error())
	}
	return &rig{t: t, p: p, store: runstore.Open(filepath.Join(dir, "runs"))}
}

func (g *rig) create() *runstore.Run {
	g.t.Helper()
	run, err := g.store.Create(runstore.Manifest{Pipeline: g.p.Paths, PipelineHash: g.p.Hash, StartedAt: time.Now().UTC()})
	if err != nil {
		g.t.Fatal(err)
	}
	return run
}

// execute runs (or, with resume, resumes) run; the run is loaded afresh
// for a resume, as another process would.
func (g *rig) execute(ctx context.Context, run *runstore.Run, resume bool, events func(runner.Event)) (*runstore.Run, error) {
	g.t.Helper()
	if resume {
		var err error
		if run, err = g.store.Load(run.ID()); err != nil {
			g.t.Fatal(err)
		}
	}
	host, err := pluginhost.New(pluginhost.WithSearchPaths(pluginDir), pluginhost.WithTraceDir(run.Path("spans")))
	if err != nil {
		g.t.Fatal(err)
	}
	defer host.Close()
	r := &runner.Runner{Launcher: host, Resume: resume, Events: events}
	return run, r.Execute(ctx, run, g.p, g.p.Graph)
}

const evalPipeline = `
stage "emit" "a" {
  rows = 6
}
stage "trivial_eval" "t" {
  input = stage.emit.a
}
`

// scores reads trial -> score from the trivial evaluation's results.
func scores(t *testing.T, run *runstore.Run) map[int64]float64 {
	t.Helper()
	rd, err := runstore.OpenFiles([]string{run.Path(runstore.OutputRel("trivial_eval.t", 0, "results"))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	out := map[int64]float64{}
	for rd.Next() {
		b := rd.RecordBatch()
		ids, s := b.Column(0).(*array.Int64), b.Column(1).(*array.Float64)
		for i := 0; i < ids.Len(); i++ {
			out[ids.Value(i)] = s.Value(i)
		}
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// flipFloat changes one byte of the one place the file at path holds v,
// in place (past its read-only mode, as root or a chmod could).
func flipFloat(t *testing.T, path string, v float64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var enc [8]byte
	binary.LittleEndian.PutUint64(enc[:], math.Float64bits(v))
	at := bytes.Index(data, enc[:])
	if at < 0 || bytes.Index(data[at+1:], enc[:]) >= 0 {
		t.Fatalf("%g is not in %s exactly once", v, path)
	}
	data[at+7] ^= 0x01
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Defect 1, on resume: a finished execution's file changed since commit
// was kept and handed to the stages after it; cut short, the resume
// succeeded and the run's own summary failed later. Now the resume refuses
// it at once, naming the run, stage, port and file.
func TestResumeRefusesAKeptFileDamagedSinceCommit(t *testing.T) {
	for _, damage := range []string{"one float", "cut short"} {
		t.Run(damage, func(t *testing.T) {
			g := newRig(t, evalPipeline)
			run, err := g.execute(context.Background(), g.create(), false, nil)
			if err != nil {
				t.Fatal(err)
			}
			rel := runstore.OutputRel("trivial_eval.t", 0, "results")
			path := run.Path(rel)
			switch damage {
			case "one float":
				flipFloat(t, path, 1.0/3) // trial 2's score
			case "cut short":
				fi, _ := os.Stat(path)
				if err := os.Truncate(path, fi.Size()/2); err != nil {
					t.Fatal(err)
				}
			}
			resumed, err := g.execute(context.Background(), run, true, nil)
			if err == nil {
				t.Fatal("a resume kept a file damaged since commit")
			}
			for _, want := range []string{"run " + run.ID(), "stage trivial_eval.t", "port results", rel, "damaged"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if m := resumed.Manifest(); m.Status != runstore.StatusFailed {
				t.Errorf("the resumed run is %s, want failed", m.Status)
			}
		})
	}
}

// interrupt makes run look as a kill in the middle of its evaluation
// stage leaves it: trials 0-5 journalled one batch each, the stage's
// execution unfinished and its file gone.
func interrupt(t *testing.T, run *runstore.Run) string {
	t.Helper()
	const stage = "trivial_eval.t"
	portFile := run.Path(runstore.OutputRel(stage, 0, "results"))
	if err := os.Remove(portFile); err != nil {
		t.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	pw := runstore.NewPortWriter(portFile, stages.TrialSchema, mem)
	pw.Journal(0)
	for trial := int64(0); trial < 6; trial++ {
		b := array.NewRecordBuilder(mem, stages.TrialSchema)
		b.Field(0).(*array.Int64Builder).Append(trial)
		b.Field(1).(*array.Float64Builder).Append(1 / float64(trial+1))
		b.Field(2).(*array.StringBuilder).Append("ok")
		rec := b.NewRecordBatch()
		if err := pw.Write(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
		b.Release()
	}
	pw.Abort() // as a kill: the journal stays, the file never commits
	if err := run.UpdateStage(stage, func(s *runstore.StageRecord) {
		s.Status, s.Outputs, s.Executions = runstore.StatusRunning, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := run.Update(func(m *runstore.Manifest) { m.Status = runstore.StatusRunning }); err != nil {
		t.Fatal(err)
	}
	return runstore.JournalPath(portFile)
}

// Defect 3, on resume: a journalled value flipped on disk came back as
// the trial's result in a "succeeded" run; garbage put in the middle made
// the resume drop the trials after it, without a word. Now the damaged
// trial is trained again, the others are kept, and the execution's note
// in the manifest says what was kept and dropped.
func TestResumeWithADamagedJournalTrainsOnlyTheDamagedTrialAgainAndSaysSo(t *testing.T) {
	cases := []struct {
		name     string
		damage   func(t *testing.T, journal string)
		kept     string
		notes    []string
		wantWarn string
	}{
		{
			name:   "one float flipped",
			damage: func(t *testing.T, journal string) { flipFloat(t, journal, 1.0/3) },
			kept:   "resumed with 5 journalled row(s)",
			notes:  []string{"is damaged", "kept 5 of 6 batch(es) (batches 1, 2, 4, 5, 6", "dropped batch 3 (1 row(s))", "trained again"},
		},
		{
			name: "garbage put in the middle",
			damage: func(t *testing.T, journal string) {
				data, err := os.ReadFile(journal)
				if err != nil {
					t.Fatal(err)
				}
				// Before the third batch: the second one's end is where the
				// value 1/2 (trial 1's score) is followed by its row's rest;
				// the middle of the file is good enough a place.
				at := len(data) / 2
				for at < len(data)-4 && binary.LittleEndian.Uint32(data[at:]) != 0xFFFFFFFF {
					at++
				}
				out := append(append(append([]byte{}, data[:at]...), bytes.Repeat([]byte("garbage!"), 8)...), data[at:]...)
				if err := os.WriteFile(journal, out, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			kept:  "resumed with 6 journalled row(s)",
			notes: []string{"is damaged", "kept 6 of 6 batch(es)", "which no checksum vouches for"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, evalPipeline)
			run, err := g.execute(context.Background(), g.create(), false, nil)
			if err != nil {
				t.Fatal(err)
			}
			journal := interrupt(t, run)
			tc.damage(t, journal)
			resumed, err := g.execute(context.Background(), run, true, nil)
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			got := scores(t, resumed)
			if len(got) != 6 {
				t.Errorf("the resumed stage has trials %v, want 0-5", got)
			}
			for trial, s := range got {
				if want := 1 / float64(trial+1); s != want {
					t.Errorf("trial %d has score %g after the resume, want %g", trial, s, want)
				}
			}
			var note string
			for _, s := range resumed.Manifest().Stages {
				if e, ok := s.Execution(0); ok && s.Addr == "trivial_eval.t" {
					note = e.Note
				}
			}
			for _, want := range append([]string{tc.kept}, tc.notes...) {
				if !strings.Contains(note, want) {
					t.Errorf("the execution's note %q does not say %q", note, want)
				}
			}
		})
	}
}

// Defect 4: two attempts at one run went ahead together. The second now
// fails at once, before it starts a plugin or removes a file, saying
// which process holds the run.
func TestSecondResumeOfARunningRunFailsAtOnce(t *testing.T) {
	g := newRig(t, `
stage "emit" "a" {
  rows = 3
}
stage "block" "b" {}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := g.create()
	blocked := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		var once bool
		_, err := g.execute(ctx, first, false, func(e runner.Event) {
			if e.Type == runner.EventStageStarted && e.Stage == "block.b" && !once {
				once = true
				close(blocked)
			}
		})
		done <- err
	}()
	select {
	case <-blocked:
	case err := <-done:
		t.Fatalf("the first run ended: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the blocking stage never started")
	}
	// A temporary file of the live attempt, which a second attempt's
	// clean-up would remove.
	live := first.Path("stages", "block.b", ".live.tmp-1")
	if err := os.MkdirAll(filepath.Dir(live), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(live, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	start := time.Now()
	_, err := g.execute(sctx, first, true, nil)
	if err == nil {
		t.Fatal("a second resume of a running run succeeded")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the second resume took %s to fail", took)
	}
	for _, want := range []string{"run " + first.ID() + " is in use", fmt.Sprintf("process %d", os.Getpid()), "since"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the second resume removed the live attempt's file: %v", err)
	}
	if st := first.Manifest().Status; st != runstore.StatusRunning {
		t.Errorf("the first attempt's run is %s", st)
	}
	cancel()
	<-done
}
