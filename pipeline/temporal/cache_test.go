package temporal

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// A worker serves an execution from the run store's cache as a local run
// does: nothing is there before a run remembers it; a run is not its own
// cache; another run gets the remembered files linked into its own
// directory, as they were; and a resumed run's files are kept only while
// they are as recorded.
func TestReuseServesTheCacheAndKeepsResumedFiles(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	t.Cleanup(func() { mem.AssertSize(t, 0) })
	root := t.TempDir()
	store := runstore.Open(root)
	now := time.Now()
	first, err := store.Create(runstore.Manifest{RunID: runstore.NewRunID(now), StartedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	second, err := store.Create(runstore.Manifest{RunID: runstore.NewRunID(now.Add(time.Second)), StartedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	const stage = "evaluation.e"
	key, other := runstore.CacheInputs{Kind: "evaluation", Round: 1}.Key(), runstore.CacheInputs{Kind: "evaluation", Round: 2}.Key()
	f := writeIDs(t, first, runstore.OutputRel(stage, 1, "x"), mem, []int64{4, 5, 6})
	f.Round = 1

	a := &Activities{Root: root, Identity: "w", Mem: mem}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.Reuse)
	env.RegisterActivity(a.Remember)
	reuse := func(req ReuseRequest) (ReuseResponse, error) {
		t.Helper()
		v, err := env.ExecuteActivity(a.Reuse, req)
		if err != nil {
			return ReuseResponse{}, err
		}
		var resp ReuseResponse
		if err := v.Get(&resp); err != nil {
			t.Fatal(err)
		}
		return resp, nil
	}

	if resp, err := reuse(ReuseRequest{RunID: second.ID(), Stage: stage, Key: key}); err != nil || resp.Hit {
		t.Fatalf("before anything was remembered: %+v, %v", resp, err)
	}
	if _, err := env.ExecuteActivity(a.Remember, RememberRequest{RunID: first.ID(), Stage: stage, Key: key, Files: []runstore.OutputFile{f}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := reuse(ReuseRequest{RunID: first.ID(), Stage: stage, Key: key}); err != nil || resp.Hit {
		t.Errorf("a run served from its own outputs: %+v, %v", resp, err)
	}
	resp, err := reuse(ReuseRequest{RunID: second.ID(), Stage: stage, Key: key})
	if err != nil || !resp.Hit || resp.From != first.ID() || len(resp.Files) != 1 {
		t.Fatalf("another run: %+v, %v", resp, err)
	}
	if got := readIDs(t, second.Path(resp.Files[0].Path), mem); !cmp.Equal(got, []int64{4, 5, 6}) {
		t.Errorf("the served file holds %v", got)
	}
	if resp.Files[0].SHA256 != f.SHA256 {
		t.Errorf("served sha256 %s, remembered %s", resp.Files[0].SHA256, f.SHA256)
	}
	if resp, err := reuse(ReuseRequest{RunID: second.ID(), Stage: stage, Key: other}); err != nil || resp.Hit {
		t.Errorf("another address: %+v, %v", resp, err)
	}

	// Resumed: kept while intact, refused for good once changed.
	if resp, err := reuse(ReuseRequest{RunID: first.ID(), Stage: stage, Key: key, Keep: []runstore.OutputFile{f}}); err != nil || !resp.Hit || resp.From != first.ID() {
		t.Errorf("resumed, intact: %+v, %v", resp, err)
	}
	path := first.Path(f.Path)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = reuse(ReuseRequest{RunID: first.ID(), Stage: stage, Key: key, Keep: []runstore.OutputFile{f}})
	var app *temporal.ApplicationError
	if !errors.As(err, &app) || !app.NonRetryable() {
		t.Errorf("resumed, changed: %v, want an error not retried", err)
	}
}
