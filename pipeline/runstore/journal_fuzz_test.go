package runstore

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzReadJournal feeds damaged journals to ReadJournal: whatever a disk
// left, resuming reads what it can and never crashes the host.
func FuzzReadJournal(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, "seed.arrow")
	mem := memory.NewGoAllocator()
	pw := NewPortWriter(path, nil, mem)
	pw.Journal(0)
	for i := int64(0); i < 3; i++ {
		b := batch(f, mem, i*4, 4)
		if err := pw.Write(b); err != nil {
			f.Fatal(err)
		}
		b.Release()
	}
	pw.Abort()
	data, err := os.ReadFile(JournalPath(path))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(data[:9])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		// Not a checked allocator: arrow-go keeps what it allocated for a
		// message it fails to decode (Go memory, collected), so a damaged
		// journal can leave a few bytes unreleased. Leaks on whole journals
		// are checked in journal_test.go.
		mem := memory.NewGoAllocator()
		path := filepath.Join(t.TempDir(), "j.journal.arrows")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, batches, err := ReadJournal(path, mem)
		if err != nil {
			t.Fatal(err)
		}
		// What a resumed stage does with the rows: every value is read.
		for _, b := range batches {
			for _, col := range b.Columns() {
				for i := 0; i < col.Len(); i++ {
					_ = col.ValueStr(i)
				}
			}
			b.Release()
		}
	})
}

// FuzzReadCheckedJournal damages a journal whose sums file is intact:
// whatever the bytes, every row handed back is a row as it was journalled
// (its accuracy is its trial's), and nothing panics.
func FuzzReadCheckedJournal(f *testing.F) {
	mem := memory.NewGoAllocator()
	seedPort := filepath.Join(f.TempDir(), "results.arrow")
	journalTrials(f, seedPort, mem, 4)
	data, err := os.ReadFile(JournalPath(seedPort))
	if err != nil {
		f.Fatal(err)
	}
	sums, err := os.ReadFile(JournalSumsPath(JournalPath(seedPort)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(append(append(append([]byte{}, data[:len(data)/2]...), 0xff, 0xff, 0xff, 0xff, 1, 2, 3), data[len(data)/2:]...))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memory.NewGoAllocator()
		path := filepath.Join(t.TempDir(), "j.journal.arrows")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(JournalSumsPath(path), sums, 0o644); err != nil {
			t.Fatal(err)
		}
		_, batches, report, err := ReadJournalReport(path, mem)
		if err != nil {
			t.Fatal(err)
		}
		_ = report.String()
		for _, b := range batches {
			ids := b.Column(0).(*array.String)
			acc := b.Column(1).(*array.Float64)
			for i := 0; i < ids.Len(); i++ {
				n, err := strconv.Atoi(strings.TrimPrefix(ids.Value(i), "mlp-"))
				if err != nil || acc.Value(i) != accuracyOf(n) {
					t.Fatalf("row %q with accuracy %g handed back", ids.Value(i), acc.Value(i))
				}
			}
			b.Release()
		}
	})
}

// FuzzChangeLog feeds damaged manifest change logs to ReadManifest: a
// resume reads the whole lines before any damage, reports damage that
// whole lines follow, and never crashes the host.
func FuzzChangeLog(f *testing.F) {
	var seed []byte
	for n := range 3 {
		line, err := encodeLogLine(stageN(n))
		if err != nil {
			f.Fatal(err)
		}
		seed = append(seed, line...)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Add([]byte("00000000 {}\n"))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		snapshot := `{"run_id": "20261128-120000-abcdef", "change_log": "manifest.0.log"}`
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(snapshot), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifest.0.log"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := ReadManifest(dir)
		if err != nil {
			return
		}
		// Every record read back came from a whole line, checksum and all.
		for _, s := range m.Stages {
			if s == nil || s.Addr == "" {
				t.Fatalf("a record without a stage: %+v", s)
			}
		}
	})
}
