package temporal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/sweetspot-ml/sweetspot/pipeline/blobstore"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// storageWorker is a worker whose run directory (its cache) is its own,
// exchanging files with the others only through the bucket.
func storageWorker(t *testing.T, name string, bucket *blobstore.Store, mem memory.Allocator) (*testsuite.TestActivityEnvironment, *Activities) {
	t.Helper()
	a := &Activities{Root: filepath.Join(t.TempDir(), name), Storage: bucket, Identity: name, Mem: mem}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(quietLogger)
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a.SplitTrials)
	env.RegisterActivity(a.GatherTrials)
	return env, a
}

func openBucket(t *testing.T) (*blobstore.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bucket")
	b, err := blobstore.Open(context.Background(), "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, dir
}

// A producer splits a stage's input on its machine; a consumer whose run
// directory is elsewhere gathers the pieces, and the client downloads
// the result into its own run directory: the data travel only through
// the bucket, and arrive intact.
func TestFilesTravelThroughTheBucket(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bucket, bucketDir := openBucket(t)
	producerEnv, producer := storageWorker(t, "producer", bucket, mem)
	consumerEnv, consumer := storageWorker(t, "consumer", bucket, mem)

	// The input, as an earlier stage on the producer left it.
	prun, err := runstore.Open(producer.Root).Create(runstore.Manifest{RunID: "run-1", StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	in := []runstore.OutputFile{writeIDs(t, prun, "stages/src/out.arrow", mem, []int64{0, 1, 2}, []int64{3, 4})}
	if err := producer.publish(ctx, "run-1", prun.Path(), in); err != nil {
		t.Fatal(err)
	}

	val, err := producerEnv.ExecuteActivity(producer.SplitTrials, SplitRequest{RunID: "run-1", Stage: "evaluation.e", Round: 1, Files: in, MaxActivities: 2})
	if err != nil {
		t.Fatal(err)
	}
	var split SplitResponse
	if err := val.Get(&split); err != nil {
		t.Fatal(err)
	}
	var trials [][]runstore.OutputFile
	for _, f := range split.Trials {
		if want := bucket.URI(objectKey("run-1", f.Path)); f.URI != want {
			t.Errorf("trial descriptor uri %q, want %q", f.URI, want)
		}
		if _, err := os.Stat(filepath.Join(bucketDir, "run-1", f.Path)); err != nil {
			t.Errorf("trial file not in the bucket: %v", err)
		}
		if _, err := os.Stat(filepath.Join(consumer.Root, "run-1", f.Path)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the consumer sees the producer's file before any download (%v): the test shares a directory", err)
		}
		trials = append(trials, []runstore.OutputFile{f})
	}

	greq := GatherRequest{RunID: "run-1", Stage: "evaluation.e", Round: 1, Outputs: []describe.PortDescription{{Name: sdk.PrimaryInput}}, Trials: trials}
	val, err = consumerEnv.ExecuteActivity(consumer.GatherTrials, greq)
	if err != nil {
		t.Fatal(err)
	}
	var out []runstore.OutputFile
	if err := val.Get(&out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].URI != bucket.URI(objectKey("run-1", out[0].Path)) {
		t.Fatalf("gathered %+v", out)
	}
	if diff := cmp.Diff([]int64{0, 1, 2, 3, 4}, readIDs(t, filepath.Join(consumer.Root, "run-1", out[0].Path), mem)); diff != "" {
		t.Errorf("gathered rows on the consumer (-want +got):\n%s", diff)
	}

	// The client's run directory is a third one.
	crun, err := runstore.Open(t.TempDir()).Create(runstore.Manifest{RunID: "run-1", StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := crun.Update(func(m *runstore.Manifest) {
		m.Stages = []*runstore.StageRecord{{Addr: "evaluation.e", Outputs: out}}
	}); err != nil {
		t.Fatal(err)
	}
	if err := (&Runner{Storage: bucket}).fetchOutputs(ctx, crun); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{0, 1, 2, 3, 4}, readIDs(t, crun.Path(out[0].Path), mem)); diff != "" {
		t.Errorf("rows in the client's run directory (-want +got):\n%s", diff)
	}
}

// An object changed in the bucket after its producer uploaded it is
// refused by the consumer, for good (downloading again cannot help), and
// nothing of it is left in the consumer's cache.
func TestCorruptedObjectIsRefused(t *testing.T) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	bucket, bucketDir := openBucket(t)
	_, producer := storageWorker(t, "producer", bucket, mem)
	consumerEnv, consumer := storageWorker(t, "consumer", bucket, mem)
	prun, err := runstore.Open(producer.Root).Create(runstore.Manifest{RunID: "run-1", StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	f := writeIDs(t, prun, "trial.arrow", mem, []int64{1, 2, 3})
	f.Port = "results"
	files := []runstore.OutputFile{f}
	if err := producer.publish(ctx, "run-1", prun.Path(), files); err != nil {
		t.Fatal(err)
	}
	obj := filepath.Join(bucketDir, "run-1", "trial.arrow")
	data, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(obj, data, 0o644); err != nil {
		t.Fatal(err)
	}

	req := GatherRequest{RunID: "run-1", Stage: "evaluation.e", Round: 1, Outputs: []describe.PortDescription{{Name: "results"}}, Trials: [][]runstore.OutputFile{files}}
	_, err = consumerEnv.ExecuteActivity(consumer.GatherTrials, req)
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		t.Fatalf("error %v, want an application error", err)
	}
	if app.Type() != "storage_checksum" || !app.NonRetryable() {
		t.Errorf("error type %q (non-retryable %v), want a non-retryable storage_checksum: %v", app.Type(), app.NonRetryable(), app)
	}
	if _, err := os.Stat(filepath.Join(consumer.Root, "run-1", "trial.arrow")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused object is in the consumer's cache (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(consumer.Root, "run-1", runstore.OutputRel("evaluation.e", 1, "results"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused gather left an output (%v)", err)
	}
}

// Workers that do not agree on the storage say so rather than read a
// file that is not the one recorded.
func TestStorageMismatchIsReported(t *testing.T) {
	bucket, _ := openBucket(t)
	other, _ := openBucket(t)
	f := runstore.OutputFile{Port: "results", Path: "trial.arrow", Rows: 1, SHA256: "00"}
	withURI := f
	withURI.URI = other.URI(objectKey("run-1", f.Path))
	for _, tc := range []struct {
		name    string
		storage *blobstore.Store
		file    runstore.OutputFile
	}{
		{"bucket file, shared-directory worker", nil, withURI},
		{"shared-directory file, bucket worker", bucket, f},
		{"another bucket's file", bucket, withURI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &Activities{Root: t.TempDir(), Storage: tc.storage}
			err := a.fetch(context.Background(), a.Root, tc.file)
			var app *temporal.ApplicationError
			if !errors.As(err, &app) || app.Type() != "storage_mismatch" || !app.NonRetryable() {
				t.Errorf("fetch = %v, want a non-retryable storage_mismatch", err)
			}
		})
	}
}
