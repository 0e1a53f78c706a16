package runstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
)

// These tests play an outside attack on a run directory: one byte changed
// in a committed file or in a journal, bytes cut off or put in.

var resultsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "candidate_id", Type: arrow.BinaryTypes.String},
	{Name: "accuracy", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// accuracyOf is trial i's accuracy: distinct values whose bytes occur
// once in a file.
func accuracyOf(i int) float64 { return 0.953125 - float64(i)/1024 }

func resultRows(t testing.TB, mem memory.Allocator, from, n int) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, resultsSchema)
	defer b.Release()
	for i := from; i < from+n; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("mlp-%d", i))
		b.Field(1).(*array.Float64Builder).Append(accuracyOf(i))
	}
	return b.NewRecordBatch()
}

// flipFloat changes one byte of the one place the file at path holds v:
// the low bit of its exponent's top byte, as a bit flipped on disk would.
// It writes in place, to the inode every link to the file shares, as a
// writer that forced its way past the file's read-only mode would.
func flipFloat(t testing.TB, path string, v float64) {
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
	writeAt(t, path, at+7, []byte{data[at+7] ^ 0x01})
}

func writeAt(t testing.TB, path string, at int, b []byte) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, int64(at)); err != nil {
		t.Fatal(err)
	}
}

// commitResults writes trials [0, n) as stage's results of round 1 in run
// and records the file as the runner does.
func commitResults(t testing.TB, run *Run, mem memory.Allocator, stage string, n int) OutputFile {
	t.Helper()
	rel := OutputRel(stage, 1, "results")
	pw := NewPortWriter(run.Path(rel), resultsSchema, mem)
	b := resultRows(t, mem, 0, n)
	defer b.Release()
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	rows, size, sum, err := pw.Commit()
	if err != nil {
		t.Fatal(err)
	}
	f := OutputFile{Port: "results", Round: 1, Path: rel, Rows: rows, Bytes: size, SHA256: sum, BLAKE3: pw.BLAKE3()}
	err = run.UpdateStage(stage, func(s *StageRecord) {
		s.Status = StatusSucceeded
		s.Outputs = append(s.Outputs, f)
		s.Executions = append(s.Executions, Execution{Round: 1, Status: StatusSucceeded, Source: "ran", Files: []OutputFile{f}})
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readAccuracies(path string, mem memory.Allocator) ([]float64, error) {
	rd, err := OpenFiles([]string{path}, mem)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	var out []float64
	for rd.Next() {
		out = append(out, rd.RecordBatch().Column(1).(*array.Float64).Float64Values()...)
	}
	return out, rd.Err()
}

// assertNamesTheFile checks that err refuses the file and names the run,
// stage, port and file.
func assertNamesTheFile(t *testing.T, err error, run, stage, port, file string) {
	t.Helper()
	if err == nil {
		t.Fatal("a damaged committed file was read without an error")
	}
	for _, want := range []string{"run " + run, "stage " + stage, "port " + port, file, "damaged"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Defect 1: a committed file with one float changed was read as if it
// were the one committed; a truncated one failed later with an error that
// named neither the run nor the stage.
func TestCommittedFileChangedAfterCommitIsRefused(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for _, damage := range []string{"one float", "cut short", "removed"} {
		t.Run(damage, func(t *testing.T) {
			s := Open(t.TempDir())
			run, err := s.Create(Manifest{RunID: "20261205-100000-a1b2c3"})
			if err != nil {
				t.Fatal(err)
			}
			f := commitResults(t, run, mem, "evaluation.e", 6)
			path := run.Path(f.Path)
			if got, err := readAccuracies(path, mem); err != nil || len(got) != 6 {
				t.Fatalf("the intact file: %v, %v", got, err)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm()&0o222 != 0 {
				t.Errorf("a committed file has mode %v, want read-only", fi.Mode().Perm())
			}
			switch damage {
			case "one float":
				flipFloat(t, path, accuracyOf(3))
			case "cut short":
				if err := os.Truncate(path, f.Bytes-16); err != nil {
					t.Fatal(err)
				}
			case "removed":
				os.Remove(path)
			}
			// A separate process reads it as show, export and report do.
			got, err := readAccuracies(path, mem)
			assertNamesTheFile(t, err, run.ID(), "evaluation.e", "results", f.Path)
			if got != nil {
				t.Errorf("values of a damaged file were handed out: %v", got)
			}
			var de *DamagedFileError
			if !errors.As(err, &de) || de.Stage != "evaluation.e" || de.Round != 1 {
				t.Errorf("error %#v, want a *DamagedFileError", err)
			}
			if err := run.VerifyOutput("evaluation.e", f); err == nil {
				t.Error("VerifyOutput accepted the damaged file")
			}
		})
	}
}

// A file is hashed once per process while it is unchanged, and a change
// after that check is still seen.
func TestVerifiedFileIsHashedOnceAndAChangeIsStillSeen(t *testing.T) {
	mem := memory.NewGoAllocator()
	s := Open(t.TempDir())
	run, err := s.Create(Manifest{RunID: "20261205-100000-a1b2c3"})
	if err != nil {
		t.Fatal(err)
	}
	f := commitResults(t, run, mem, "evaluation.e", 6)
	path := run.Path(f.Path)
	time.Sleep(racyWindow + 10*time.Millisecond) // past its commit, as a later command reads it
	if _, err := readAccuracies(path, mem); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(path)
	if _, ok := verified.Load(abs); !ok {
		t.Fatal("a verified file was not remembered")
	}
	flipFloat(t, path, accuracyOf(2))
	if _, err := readAccuracies(path, mem); err == nil {
		t.Fatal("a file changed after it was verified was read")
	}
}

// Defect 2: a cache hit is a hard link, so damage to the earlier run's
// file was damage to the later run's, read silently by both. Now the
// shared inode is read-only, a damaged source is not linked, and damage
// done to the shared inode anyway is refused in each run, naming it.
func TestCacheHitSharesNoWritableInodeAndDamageIsRefusedInEveryRun(t *testing.T) {
	mem := memory.NewGoAllocator()
	s := Open(t.TempDir())
	first, err := s.Create(Manifest{RunID: "20261205-100000-aaaaaa"})
	if err != nil {
		t.Fatal(err)
	}
	f := commitResults(t, first, mem, "evaluation.e", 6)
	const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if err := s.Remember(key, first.ID(), "evaluation.e", []OutputFile{f}); err != nil {
		t.Fatal(err)
	}
	second, err := s.Create(Manifest{RunID: "20261205-100001-bbbbbb"})
	if err != nil {
		t.Fatal(err)
	}
	hit, ok, err := s.Recall(key, second, "evaluation.e")
	if err != nil || !ok {
		t.Fatalf("recall: %v, %v", ok, err)
	}
	if err := second.UpdateStage("evaluation.e", func(st *StageRecord) {
		st.Outputs = hit.Files
		st.Executions = []Execution{{Round: 1, Status: StatusSucceeded, Source: "cache", From: first.ID(), Files: hit.Files}}
	}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{first.Path(f.Path), second.Path(hit.Files[0].Path)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o222 != 0 {
			t.Errorf("%s is writable (%v) and shared by two runs", p, fi.Mode().Perm())
		}
	}

	flipFloat(t, first.Path(f.Path), accuracyOf(4))
	_, err = readAccuracies(first.Path(f.Path), mem)
	assertNamesTheFile(t, err, first.ID(), "evaluation.e", "results", f.Path)
	_, err = readAccuracies(second.Path(hit.Files[0].Path), mem)
	assertNamesTheFile(t, err, second.ID(), "evaluation.e", "results", hit.Files[0].Path)

	// A later run is not served the damaged file: a miss that says why.
	third, err := s.Create(Manifest{RunID: "20261205-100002-cccccc"})
	if err != nil {
		t.Fatal(err)
	}
	_, ok, err = s.Recall(key, third, "evaluation.e")
	if ok {
		t.Fatal("a damaged file was served from the cache")
	}
	assertNamesTheFile(t, err, first.ID(), "evaluation.e", "results", f.Path)
	if _, serr := os.Stat(third.Path(OutputRel("evaluation.e", 1, "results"))); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("a refused cache hit left a file in the run (%v)", serr)
	}
}

// journalTrials journals trials [0, n) of a stage, one batch each as the
// evaluation stage writes them, and leaves the journal as a kill would.
func journalTrials(t testing.TB, portFile string, mem memory.Allocator, n int) {
	t.Helper()
	pw := NewPortWriter(portFile, resultsSchema, mem)
	pw.Journal(0)
	for i := 0; i < n; i++ {
		b := resultRows(t, mem, i, 1)
		if err := pw.Write(b); err != nil {
			t.Fatal(err)
		}
		b.Release()
	}
	pw.Abort()
}

func readJournalled(t *testing.T, path string, mem memory.Allocator) (ids []string, acc []float64, report *JournalReport) {
	t.Helper()
	_, batches, report, err := ReadJournalReport(path, mem)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		c := b.Column(0).(*array.String)
		for i := 0; i < c.Len(); i++ {
			ids = append(ids, c.Value(i))
		}
		acc = append(acc, b.Column(1).(*array.Float64).Float64Values()...)
		b.Release()
	}
	return ids, acc, report
}

func trialIDs(idx ...int) []string {
	var out []string
	for _, i := range idx {
		out = append(out, "mlp-"+strconv.Itoa(i))
	}
	return out
}

// Defect 3: a damaged journal. Framing alone let a flipped value through
// (an accuracy of 1e-5 in a "succeeded" run) and dropped every trial after
// garbage put in the middle, without a word. Each batch's digest catches
// the first: that trial alone is dropped, to be trained again. The
// second: the batches after the garbage are found again. Both are
// reported, naming what was kept.
func TestDamagedJournalDropsOnlyTheDamagedTrialsAndSaysSo(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	cases := []struct {
		name     string
		damage   func(t *testing.T, path string, data []byte)
		wantIDs  []string
		dropped  string // in the report
		damaged  bool
		wantTail int64
	}{
		{
			name:    "intact",
			damage:  func(*testing.T, string, []byte) {},
			wantIDs: trialIDs(0, 1, 2, 3, 4, 5),
		},
		{
			name:    "one float flipped",
			damage:  func(t *testing.T, path string, _ []byte) { flipFloat(t, path, accuracyOf(2)) },
			wantIDs: trialIDs(0, 1, 3, 4, 5),
			dropped: "batch 3 (1 row(s)): its bytes do not match its checksum",
			damaged: true,
		},
		{
			name: "garbage put in the middle",
			damage: func(t *testing.T, path string, data []byte) {
				at := batchStart(t, path, 2)
				garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 10)
				out := append(append(append([]byte{}, data[:at]...), garbage...), data[at:]...)
				if err := os.WriteFile(path, out, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			wantIDs: trialIDs(0, 1, 2, 3, 4, 5),
			dropped: "which no checksum vouches for",
			damaged: true,
		},
		{
			name: "garbage written over the middle",
			damage: func(t *testing.T, path string, data []byte) {
				writeAt(t, path, int(batchStart(t, path, 2))+4, bytes.Repeat([]byte{0xde, 0xad}, 6))
			},
			wantIDs: trialIDs(0, 1, 3, 4, 5),
			dropped: "batch 3 (1 row(s))",
			damaged: true,
		},
		{
			name: "cut short",
			damage: func(t *testing.T, path string, data []byte) {
				if err := os.Truncate(path, batchStart(t, path, 4)+10); err != nil {
					t.Fatal(err)
				}
			},
			wantIDs: trialIDs(0, 1, 2, 3),
			dropped: "batch 5 (1 row(s)): the journal was cut short",
			damaged: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			portFile := filepath.Join(t.TempDir(), OutputRel("evaluation.e", 1, "results"))
			journalTrials(t, portFile, mem, 6)
			path := JournalPath(portFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path, data)
			ids, acc, report := readJournalled(t, path, mem)
			if diff := cmp.Diff(tc.wantIDs, ids); diff != "" {
				t.Errorf("trials handed back (-want +got):\n%s", diff)
			}
			for i, a := range acc {
				n, _ := strconv.Atoi(strings.TrimPrefix(ids[i], "mlp-"))
				if a != accuracyOf(n) {
					t.Errorf("trial %s handed back with accuracy %g, journalled %g", ids[i], a, accuracyOf(n))
				}
			}
			if report.Damaged() != tc.damaged {
				t.Errorf("damaged = %v, want %v: %s", report.Damaged(), tc.damaged, report)
			}
			msg := report.String()
			if tc.damaged && (!strings.Contains(msg, tc.dropped) || !strings.Contains(msg, strings.Join(tc.wantIDs, ", "))) {
				t.Errorf("report %q does not name what was kept (%v) and dropped (%q)", msg, tc.wantIDs, tc.dropped)
			}
			// ReadJournal, which resume tools and tests use, hands back the
			// same trusted rows.
			_, bs, err := ReadJournal(path, mem)
			if err != nil || len(bs) != len(tc.wantIDs) {
				t.Errorf("ReadJournal: %d batches, %v", len(bs), err)
			}
			for _, b := range bs {
				b.Release()
			}
		})
	}
}

// batchStart is where the journal's i-th batch (0-based) starts, from its
// sums file.
func batchStart(t *testing.T, journal string, i int) int64 {
	t.Helper()
	data, err := os.ReadFile(JournalSumsPath(journal))
	if err != nil {
		t.Fatal(err)
	}
	secs := parseSums(data)
	if len(secs) != 1 || len(secs[0].batches) <= i {
		t.Fatalf("sums file: %q", data)
	}
	return secs[0].batches[i].start
}

// A kill between a batch reaching the journal and its digest reaching the
// sums file leaves a batch without a line: not handed back (its trial runs
// again) and not damage.
func TestJournalBatchWithoutItsDigestIsATornTailNotDamage(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	portFile := filepath.Join(t.TempDir(), "results.arrow")
	journalTrials(t, portFile, mem, 4)
	sums := JournalSumsPath(JournalPath(portFile))
	data, err := os.ReadFile(sums)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	// The last batch's line lost, and half of it written.
	torn := strings.Join(lines[:len(lines)-2], "") + lines[len(lines)-2][:20]
	if err := os.WriteFile(sums, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	ids, _, report := readJournalled(t, JournalPath(portFile), mem)
	if diff := cmp.Diff(trialIDs(0, 1, 2), ids); diff != "" {
		t.Errorf("trials handed back (-want +got):\n%s", diff)
	}
	if report.Damaged() || report.TailBytes == 0 {
		t.Errorf("a torn tail: damaged %v, tail %d bytes: %s", report.Damaged(), report.TailBytes, report)
	}
}

// A resumed attempt's journal takes the old one's place with its own
// digests; at no point do the old journal's rows go unchecked or the new
// journal's digests vouch for the old one wrongly.
func TestResumedJournalKeepsItsDigestsAcrossTheSwap(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	portFile := filepath.Join(t.TempDir(), "results.arrow")
	journalTrials(t, portFile, mem, 3)
	pw := NewPortWriter(portFile, resultsSchema, mem)
	pw.Journal(3)
	// Written again in other batches than the first attempt's.
	b := resultRows(t, mem, 0, 2)
	if err := pw.Write(b); err != nil {
		t.Fatal(err)
	}
	b.Release()
	ids, _, report := readJournalled(t, JournalPath(portFile), mem)
	if diff := cmp.Diff(trialIDs(0, 1, 2), ids); diff != "" || report.Damaged() {
		t.Errorf("before the swap (-want +got):\n%s%s", diff, report)
	}
	for _, from := range []int{2, 3} {
		b := resultRows(t, mem, from, 1)
		if err := pw.Write(b); err != nil {
			t.Fatal(err)
		}
		b.Release()
	}
	pw.Abort()
	ids, _, report = readJournalled(t, JournalPath(portFile), mem)
	if diff := cmp.Diff(trialIDs(0, 1, 2, 3), ids); diff != "" || report.Damaged() {
		t.Errorf("after the swap (-want +got):\n%s%s", diff, report)
	}
	data, _ := os.ReadFile(JournalSumsPath(JournalPath(portFile)))
	if n := len(parseSums(data)); n != 1 {
		t.Errorf("the sums file holds %d sections after the swap, want the journal's own", n)
	}
}

// Defect 4: two attempts at one run both went ahead. The run's lock is
// taken by Create (and by Begin on resume) and says who holds it; the
// kernel drops it when its process ends.
func TestSecondAttemptAtARunFailsAtOnceNamingTheHolder(t *testing.T) {
	s := Open(t.TempDir())
	first, err := s.Create(Manifest{RunID: "20261205-100000-a1b2c3"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Load(first.ID())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = second.Begin("trace", "")
	if err == nil {
		t.Fatal("a second attempt began while the first held the run")
	}
	if time.Since(start) > time.Second {
		t.Errorf("the second attempt waited %s", time.Since(start))
	}
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.Pid != os.Getpid() {
		t.Fatalf("error %#v, want a *LockedError naming this process", err)
	}
	for _, want := range []string{"run " + first.ID(), "in use", fmt.Sprintf("process %d", os.Getpid()), "since"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := second.Update(func(m *Manifest) { m.Status = "hijacked" }); err == nil {
		t.Error("a Run without the lock wrote the manifest")
	}
	if err := second.RemoveLeftovers(); err == nil {
		t.Error("a Run without the lock cleaned the run directory")
	}
	if st := first.Manifest().Status; st != StatusRunning {
		t.Errorf("status %q", st)
	}

	if _, err := first.End(nil); err != nil {
		t.Fatal(err)
	}
	if err := second.Begin("trace-2", ""); err != nil {
		t.Fatalf("resume after the first attempt ended: %v", err)
	}
	defer second.Unlock()
	data, err := os.ReadFile(second.Path(LockFile))
	if err != nil || !strings.Contains(string(data), fmt.Sprintf(`"pid":%d`, os.Getpid())) || !strings.Contains(string(data), `"since"`) {
		t.Errorf("lock file %q (%v) does not hold the pid and start time", data, err)
	}
}
