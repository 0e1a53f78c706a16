package temporal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

var idSchema = arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)

// writeIDs writes batches of ids as one Arrow file in the run directory.
func writeIDs(t *testing.T, run *runstore.Run, rel string, mem memory.Allocator, batches ...[]int64) runstore.OutputFile {
	t.Helper()
	w := runstore.NewPortWriter(run.Path(rel), idSchema, mem)
	for _, ids := range batches {
		b := array.NewRecordBuilder(mem, idSchema)
		b.Field(0).(*array.Int64Builder).AppendValues(ids, nil)
		rec := b.NewRecordBatch()
		b.Release()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	rows, size, sum, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return runstore.OutputFile{Port: "x", Path: rel, Rows: rows, Bytes: size, SHA256: sum}
}

func readIDs(t *testing.T, path string, mem memory.Allocator) []int64 {
	t.Helper()
	rd, err := runstore.OpenFiles([]string{path}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Release()
	var out []int64
	for rd.Next() {
		out = append(out, rd.RecordBatch().Column(0).(*array.Int64).Int64Values()...)
	}
	if err := rd.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func activityEnv(t *testing.T) (*testsuite.TestActivityEnvironment, *Activities, *runstore.Run, *memory.CheckedAllocator) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	root := t.TempDir()
	run, err := runstore.Open(root).Create(runstore.Manifest{RunID: "run-1", StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Root: root, Identity: "w", Mem: mem}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.SplitTrials)
	env.RegisterActivity(a.GatherTrials)
	return env, a, run, mem
}

// Seven rows across two files, at most three activities: three trial
// inputs of 3, 3 and 1 consecutive rows; splitting again writes the same
// files.
func TestSplitTrialsChunksRowsInOrder(t *testing.T) {
	env, a, run, mem := activityEnv(t)
	in := []runstore.OutputFile{
		writeIDs(t, run, "in/a.arrow", mem, []int64{0, 1}, []int64{2, 3, 4}),
		writeIDs(t, run, "in/b.arrow", mem, []int64{5, 6}),
	}
	req := SplitRequest{RunID: "run-1", Stage: "evaluation.e", Round: 2, Files: in, MaxActivities: 3}
	val, err := env.ExecuteActivity(a.SplitTrials, req)
	if err != nil {
		t.Fatal(err)
	}
	var first SplitResponse
	if err := val.Get(&first); err != nil {
		t.Fatal(err)
	}
	var got [][]int64
	for _, f := range first.Trials {
		got = append(got, readIDs(t, run.Path(f.Path), mem))
		if f.Port != sdk.PrimaryInput || f.Round != 2 {
			t.Errorf("descriptor %+v", f)
		}
	}
	if diff := cmp.Diff([][]int64{{0, 1, 2}, {3, 4, 5}, {6}}, got); diff != "" {
		t.Errorf("trial inputs (-want +got):\n%s", diff)
	}
	if first.Rows != 7 {
		t.Errorf("rows %d", first.Rows)
	}
	val, err = env.ExecuteActivity(a.SplitTrials, req)
	if err != nil {
		t.Fatal(err)
	}
	var again SplitResponse
	if err := val.Get(&again); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("a second split differs (-first +second):\n%s", diff)
	}
}

// Trials' outputs are concatenated in trial order, whatever order they were
// written in; an empty port gets its declared schema.
func TestGatherTrialsConcatenatesInTrialOrder(t *testing.T) {
	env, a, run, mem := activityEnv(t)
	var trials [][]runstore.OutputFile
	for i := 4; i >= 0; i-- {
		f := writeIDs(t, run, filepath.Join(trialDir("evaluation.e", 1, i), "attempt-1", "results.arrow"), mem, []int64{int64(10 * i), int64(10*i + 1)})
		f.Port = "results"
		trials = append([][]runstore.OutputFile{{f}}, trials...)
	}
	req := GatherRequest{RunID: "run-1", Stage: "evaluation.e", Round: 1, Outputs: []describe.PortDescription{{Name: "results"}}, Trials: trials}
	val, err := env.ExecuteActivity(a.GatherTrials, req)
	if err != nil {
		t.Fatal(err)
	}
	var out []runstore.OutputFile
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Path != runstore.OutputRel("evaluation.e", 1, "results") || out[0].Rows != 10 {
		t.Fatalf("outputs %+v", out)
	}
	if diff := cmp.Diff([]int64{0, 1, 10, 11, 20, 21, 30, 31, 40, 41}, readIDs(t, run.Path(out[0].Path), mem)); diff != "" {
		t.Errorf("gathered rows (-want +got):\n%s", diff)
	}
}

// A trial file changed after its activity recorded it is refused: the
// consumer checks the sha256 its producer recorded.
func TestGatherTrialsRefusesAChangedFile(t *testing.T) {
	env, a, run, mem := activityEnv(t)
	f := writeIDs(t, run, "trial.arrow", mem, []int64{1, 2, 3})
	f.Port = "results"
	if err := os.WriteFile(run.Path("trial.arrow"), []byte("not the file that was recorded"), 0o644); err != nil {
		t.Fatal(err)
	}
	req := GatherRequest{RunID: "run-1", Stage: "evaluation.e", Round: 1, Outputs: []describe.PortDescription{{Name: "results"}}, Trials: [][]runstore.OutputFile{{f}}}
	_, err := env.ExecuteActivity(a.GatherTrials, req)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v, want an application error", err)
	}
	if want := "its producer recorded " + f.SHA256; !strings.Contains(app.Message(), want) {
		t.Errorf("message %q does not say %q", app.Message(), want)
	}
	if _, err := os.Stat(run.Path(runstore.OutputRel("evaluation.e", 1, "results"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed gather left the stage's output file (%v)", err)
	}
}

// A run directory that is not in the worker's store is an error that
// names the store: the worker does not share the client's storage.
func TestActivitiesNeedTheSharedRunStore(t *testing.T) {
	env, a, _, _ := activityEnv(t)
	_, err := env.ExecuteActivity(a.SplitTrials, SplitRequest{RunID: "elsewhere"})
	if err == nil || !strings.Contains(err.Error(), "not in this worker's run store") {
		t.Errorf("error %v", err)
	}
	_, err = env.ExecuteActivity(a.SplitTrials, SplitRequest{RunID: "../run-1"})
	if err == nil || !strings.Contains(err.Error(), "invalid run id") {
		t.Errorf("error %v", err)
	}
}
