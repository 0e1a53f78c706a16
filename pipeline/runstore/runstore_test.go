package runstore

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
)

func batch(t testing.TB, mem memory.Allocator, from, n int64) arrow.RecordBatch {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.Int64Builder).Append(i)
	}
	return b.NewRecordBatch()
}

func TestPortFilesRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()

	var paths []string
	var next int64
	for round := 1; round <= 2; round++ {
		path := filepath.Join(dir, OutputRel("evaluation.train", round, "results"))
		pw := NewPortWriter(path, nil, mem)
		for i := 0; i < 3; i++ {
			b := batch(t, mem, next, 10)
			next += 10
			if err := pw.Write(b); err != nil {
				t.Fatal(err)
			}
			b.Release()
		}
		rows, size, sum, err := pw.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if rows != 30 || size == 0 || len(sum) != 64 {
			t.Fatalf("commit: rows=%d size=%d sum=%q", rows, size, sum)
		}
		st, err := os.Stat(path)
		if err != nil || st.Size() != size {
			t.Fatalf("file size %v, reported %d (err %v)", st, size, err)
		}
		paths = append(paths, path)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "stages", "*", "*", ".*tmp*"))
	if len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	r, err := OpenFiles(paths, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	var got []int64
	for r.Next() {
		col := r.RecordBatch().Column(0).(*array.Int64)
		got = append(got, col.Int64Values()...)
	}
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if len(got) != 60 || got[0] != 0 || got[59] != 59 {
		t.Fatalf("read back %d rows: %v", len(got), got)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	pw := NewPortWriter(filepath.Join(dir, "p.arrow"), nil, mem)
	b := batch(t, mem, 0, 5)
	defer b.Release()
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	pw.Abort()
	pw.Abort()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("abort left %v", entries)
	}
}

func TestManifestSavedAndLoadedByPrefix(t *testing.T) {
	s := Open(t.TempDir())
	r, err := s.Create(Manifest{RunID: "20261128-120000-abcdef", Pipeline: []string{"p.hcl"}, StartedAt: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.UpdateStage("dataset.d", func(st *StageRecord) { st.Status = "succeeded"; st.Pid = 42 }); err != nil {
		t.Fatal(err)
	}
	got, err := s.Load("20261128-1200")
	if err != nil {
		t.Fatal(err)
	}
	want := r.Manifest()
	if diff := cmp.Diff(want, got.Manifest()); diff != "" {
		t.Fatalf("manifest (-want +got):\n%s", diff)
	}
	if _, err := s.Load("nope"); err == nil {
		t.Fatal("loading a missing run succeeded")
	}
}

// TestDamagedPortFileIsAnError: a committed file damaged on disk (cut
// short, or any one byte changed) is read to an error or to valid batches,
// never to a crash of the host.
func TestDamagedPortFileIsAnError(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	path := filepath.Join(dir, OutputRel("emit.a", 0, "table"))
	pw := NewPortWriter(path, nil, mem)
	b := batch(t, mem, 0, 5)
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	b.Release()
	if _, _, _, err := pw.Commit(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// arrow-go keeps a message's buffers when it fails to decode it (Go
	// memory, collected), so damaged reads go through an unchecked allocator.
	unchecked := memory.NewGoAllocator()
	readAll := func(data []byte) error {
		os.Remove(path) // committed files are read-only
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := OpenFiles([]string{path}, unchecked)
		if err != nil {
			return err
		}
		defer r.Release()
		for r.Next() {
		}
		return r.Err()
	}
	if err := readAll(good[:len(good)-20]); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("a file cut short: error %v, want one naming %s", err, path)
	}
	for i := range good {
		for _, flip := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(good)
			bad[i] ^= flip
			_ = readAll(bad) // an error or valid batches; a panic fails the test
		}
	}
}
