package runstore

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
)

// journalled reads back the values a journal holds.
func journalled(t *testing.T, path string, mem memory.Allocator) []int64 {
	t.Helper()
	_, batches, err := ReadJournal(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, b := range batches {
		got = append(got, b.Column(0).(*array.Int64).Int64Values()...)
		b.Release()
	}
	return got
}

func write(t *testing.T, pw *PortWriter, mem memory.Allocator, from, n int64) {
	t.Helper()
	b := batch(t, mem, from, n)
	defer b.Release()
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// A kill can stop the host anywhere in a journal write: whatever prefix of
// the file reached the disk, reading it gives back exactly the batches
// written whole, and never fails or panics.
func TestJournalTornAtEveryByteGivesBackTheWholeBatches(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	path := filepath.Join(dir, "results.arrow")

	pw := NewPortWriter(path, nil, mem)
	pw.Journal(0)
	var ends []int64 // the journal's size after each batch
	for i := int64(0); i < 4; i++ {
		write(t, pw, mem, i*3, 3)
		fi, err := os.Stat(JournalPath(path))
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, fi.Size())
	}
	data, err := os.ReadFile(JournalPath(path))
	if err != nil {
		t.Fatal(err)
	}
	pw.Abort()

	torn := filepath.Join(dir, "torn.journal.arrows")
	for n := 0; n <= len(data); n++ {
		if err := os.WriteFile(torn, data[:n], 0o644); err != nil {
			t.Fatal(err)
		}
		whole := int64(0)
		for _, end := range ends {
			if int64(n) >= end {
				whole++
			}
		}
		if got, want := journalled(t, torn, mem), seq(0, whole*3); !cmp.Equal(got, want) {
			t.Fatalf("journal cut at byte %d of %d: got %v, want %v", n, len(data), got, want)
		}
	}
}

// A resumed stage first writes again the rows it was handed back. Until its
// journal holds as many, the old journal stays in place: a kill in between
// loses nothing.
func TestResumedJournalReplacesTheOldOneOnlyWhenCaughtUp(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	path := filepath.Join(dir, "results.arrow")

	first := NewPortWriter(path, nil, mem)
	first.Journal(0)
	write(t, first, mem, 0, 4)
	write(t, first, mem, 4, 2)
	first.Abort()
	if got := journalled(t, JournalPath(path), mem); !cmp.Equal(got, seq(0, 6)) {
		t.Fatalf("first attempt journalled %v", got)
	}

	second := NewPortWriter(path, nil, mem)
	second.Journal(6)
	write(t, second, mem, 0, 4)
	if got := journalled(t, JournalPath(path), mem); !cmp.Equal(got, seq(0, 6)) {
		t.Fatalf("with 4 of 6 rows written again, the journal holds %v; want the old one whole", got)
	}
	write(t, second, mem, 4, 2)
	write(t, second, mem, 6, 1)
	if got := journalled(t, JournalPath(path), mem); !cmp.Equal(got, seq(0, 7)) {
		t.Fatalf("caught up, the journal holds %v", got)
	}
	second.Abort()

	// An attempt that stops before it catches up leaves the journal as it
	// found it, and no temporary file.
	third := NewPortWriter(path, nil, mem)
	third.Journal(7)
	write(t, third, mem, 0, 3)
	third.Abort()
	if got := journalled(t, JournalPath(path), mem); !cmp.Equal(got, seq(0, 7)) {
		t.Fatalf("after an attempt that did not catch up, the journal holds %v", got)
	}

	// Commit keeps the journal until the file is recorded.
	fourth := NewPortWriter(path, nil, mem)
	fourth.Journal(7)
	write(t, fourth, mem, 0, 7)
	write(t, fourth, mem, 7, 1)
	if _, _, _, err := fourth.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := journalled(t, JournalPath(path), mem); !cmp.Equal(got, seq(0, 8)) {
		t.Fatalf("after commit, the journal holds %v", got)
	}
	if err := RemoveJournal(path); err != nil {
		t.Fatal(err)
	}
	if err := RemoveJournal(path); err != nil {
		t.Fatalf("removing a journal twice: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !cmp.Equal(names, []string{"results.arrow"}) {
		t.Errorf("left in the directory: %v", names)
	}
}

func TestRemoveLeftoversKeepsWhatAResumeNeeds(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s := Open(t.TempDir())
	run, err := s.Create(Manifest{RunID: "20261128-120000-abcdef", StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// Round 1 finished and was recorded; round 2 was killed mid-stage.
	done, killed := OutputRel("evaluation.e", 1, "results"), OutputRel("evaluation.e", 2, "results")
	for _, rel := range []string{done, killed} {
		pw := NewPortWriter(run.Path(rel), nil, mem)
		pw.Journal(0)
		write(t, pw, mem, 0, 2)
		if rel == done {
			rows, size, sum, err := pw.Commit()
			if err != nil {
				t.Fatal(err)
			}
			f := OutputFile{Port: "results", Round: 1, Path: rel, Rows: rows, Bytes: size, SHA256: sum}
			err = run.UpdateStage("evaluation.e", func(s *StageRecord) {
				s.Outputs = append(s.Outputs, f)
				s.Executions = append(s.Executions, Execution{Round: 1, Status: StatusSucceeded, Files: []OutputFile{f}})
			})
			if err != nil {
				t.Fatal(err)
			}
		} else {
			// A kill leaves the port's temporary file behind.
			defer pw.Abort()
		}
	}
	// A compaction killed after its snapshot was in place leaves the log
	// it replaced, which no snapshot names.
	stale := "manifest.5.log"
	for _, rel := range []string{".manifest.json.tmp-123", filepath.Join(filepath.Dir(killed), ".results.journal.arrows.tmp-9"), stale} {
		if err := os.WriteFile(run.Path(rel), []byte("torn"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if err := run.RemoveLeftovers(); err != nil {
		t.Fatal(err)
	}
	var left []string
	_ = filepath.WalkDir(run.Dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(run.Dir, path)
			left = append(left, rel)
		}
		return err
	})
	// The change log the snapshot names holds round 1's record: kept.
	current := run.Manifest().ChangeLog
	if current == stale {
		t.Fatalf("the run's change log is %s, the name the test gave a stale one", current)
	}
	want := []string{LockFile, current, "manifest.json", done, JournalPath(killed), JournalSumsPath(JournalPath(killed))}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("files after cleaning (-want +got):\n%s", diff)
	}
}
