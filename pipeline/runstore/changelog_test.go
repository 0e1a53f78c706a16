package runstore

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// stageN is the record the crash tests write for stage n: its content is
// a function of n alone, so a reader can tell a whole record from a torn
// or stale one. Sizes vary so that some changes outgrow the snapshot and
// compact the log.
func stageN(n int) *StageRecord {
	return &StageRecord{
		Addr:   fmt.Sprintf("passthrough.s%d", n),
		Kind:   "passthrough",
		Plugin: "testkit",
		Status: StatusSucceeded,
		Rounds: n,
		Error:  strings.Repeat("x", (n*7919)%3000),
		Outputs: []OutputFile{{
			Port: "output", Round: 0, Path: OutputRel(fmt.Sprintf("passthrough.s%d", n), 0, "output"),
			Rows: int64(n), SHA256: fmt.Sprintf("%064d", n),
		}},
	}
}

// Stage records go to the change log, not into the snapshot; a reader
// (a resume, `runs show`) sees them; the end of an attempt compacts them
// into the snapshot and removes the log.
func TestStageRecordsAreLoggedAndCompacted(t *testing.T) {
	s := Open(t.TempDir())
	run, err := s.Create(Manifest{RunID: "20261128-120000-abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	snapshot, err := os.ReadFile(run.Path(ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	for n := range 50 {
		if err := run.UpdateStage(stageN(n).Addr, func(r *StageRecord) { *r = *stageN(n) }); err != nil {
			t.Fatal(err)
		}
	}
	// Stage 3 changes twice more: the last record wins, in its place.
	if err := run.NoteStage(stageN(3).Addr, func(r *StageRecord) { r.Status = StatusRunning }); err != nil {
		t.Fatal(err)
	}
	if err := run.UpdateStage(stageN(3).Addr, func(r *StageRecord) { r.Status = StatusSucceeded }); err != nil {
		t.Fatal(err)
	}
	var want []*StageRecord
	for n := range 50 {
		want = append(want, stageN(n))
	}

	now, err := os.ReadFile(run.Path(ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(now) == string(snapshot) {
		// Not compacted: the records are in the log alone.
		if fi, err := os.Stat(run.Path(m.ChangeLog)); err != nil || fi.Size() == 0 {
			t.Fatalf("no change log %s holds the stage records: %v", m.ChangeLog, err)
		}
	}
	if diff := cmp.Diff(want, m.Stages); diff != "" {
		t.Fatalf("manifest read back (-want +got):\n%s", diff)
	}
	if _, err := run.End(nil); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(run.Path("manifest.*.log"))
	if len(logs) != 0 {
		t.Errorf("change logs left after the attempt ended: %v", logs)
	}
	m, err = readSnapshot(run.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, m.Stages); diff != "" {
		t.Errorf("snapshot after the end (-want +got):\n%s", diff)
	}
}

// A log whose last line was torn by a crash reads as the lines before it;
// the next attempt starts a new log rather than append after the tear. A
// damaged line with whole lines after it is an error naming the file and
// line.
func TestChangeLogTornTailAndDamage(t *testing.T) {
	s := Open(t.TempDir())
	run, err := s.Create(Manifest{RunID: "20261128-120000-abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	for n := range 3 {
		if err := run.UpdateStage(stageN(n).Addr, func(r *StageRecord) { *r = *stageN(n) }); err != nil {
			t.Fatal(err)
		}
	}
	logPath := run.Path(run.Manifest().ChangeLog)
	whole, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	line4, err := encodeLogLine(stageN(3))
	if err != nil {
		t.Fatal(err)
	}
	run.Unlock()

	// Torn: part of a fourth line.
	if err := os.WriteFile(logPath, append(append([]byte{}, whole...), line4[:len(line4)/2]...), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := ReadManifest(run.Dir)
	if err != nil {
		t.Fatalf("a torn last line: %v", err)
	}
	if diff := cmp.Diff([]*StageRecord{stageN(0), stageN(1), stageN(2)}, m.Stages); diff != "" {
		t.Errorf("read with a torn last line (-want +got):\n%s", diff)
	}
	// A whole last line with one byte changed reads as torn too.
	bad := append([]byte{}, line4...)
	bad[20] ^= 1
	if err := os.WriteFile(logPath, append(append([]byte{}, whole...), bad...), 0o600); err != nil {
		t.Fatal(err)
	}
	if m, err = ReadManifest(run.Dir); err != nil || len(m.Stages) != 3 {
		t.Errorf("a damaged last line: %d stages, %v; want 3 and no error", len(m.Stages), err)
	}

	// The next attempt appends to a log of its own.
	again, err := s.Load(run.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Begin("trace", ""); err != nil {
		t.Fatal(err)
	}
	if err := again.UpdateStage(stageN(3).Addr, func(r *StageRecord) { *r = *stageN(3) }); err != nil {
		t.Fatal(err)
	}
	if m, err = ReadManifest(run.Dir); err != nil || len(m.Stages) != 4 || m.ChangeLog == filepath.Base(logPath) {
		t.Errorf("after the resume's change: %d stages in log %s, %v; want 4 in a new log", len(m.Stages), m.ChangeLog, err)
	}
	again.Unlock()

	// Damage before whole lines is not a torn tail.
	current := run.Path(m.ChangeLog)
	data, err := os.ReadFile(current)
	if err != nil {
		t.Fatal(err)
	}
	data = append(append([]byte("0000000 {}\n"), data...), line4...)
	if err := os.WriteFile(current, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ReadManifest(run.Dir)
	var le *ChangeLogError
	if !errors.As(err, &le) || le.Line != 1 || !strings.Contains(err.Error(), current+":1") {
		t.Errorf("damage at line 1 of %s: got %v", current, err)
	}
}

// A manifest whose change_log names a file elsewhere is refused.
func TestChangeLogNameIsChecked(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"../x.log", "/etc/passwd", "manifest.01.log", "manifest..log", "manifest.1.log/.."} {
		src := fmt.Sprintf(`{"run_id": "20261128-120000-abcdef", "change_log": %q}`, name)
		if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadManifest(dir); err == nil || !strings.Contains(err.Error(), "change_log") {
			t.Errorf("change_log %q: got %v, want an error naming change_log", name, err)
		}
	}
}

// crashChildEnv makes the test binary the child of TestKilledWriterLosesNothingAcknowledged.
const crashChildEnv = "SWEETSPOT_RUNSTORE_CRASH_CHILD"

// TestCrashChild is the writer the crash test kills: it records stages
// 0, 1, 2, ... and prints each number once UpdateStage returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		return // run by TestKilledWriterLosesNothingAcknowledged only
	}
	run, err := Open(dir).Create(Manifest{RunID: "20261128-120000-abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(os.Stdout)
	for n := 0; ; n++ {
		if n%97 == 5 {
			// Snapshots happen mid-run too (a loop's decision).
			if err := run.Update(func(m *Manifest) { m.Attempts = n }); err != nil {
				t.Fatal(err)
			}
		}
		if err := run.UpdateStage(stageN(n).Addr, func(r *StageRecord) { *r = *stageN(n) }); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(w, n)
		w.Flush()
	}
}

// A writer killed (SIGKILL) at any moment loses no stage record that
// UpdateStage acknowledged, and what is read back is whole: every stage
// present holds exactly the record written for it, in order.
func TestKilledWriterLosesNothingAcknowledged(t *testing.T) {
	for i, after := range []time.Duration{30 * time.Millisecond, 170 * time.Millisecond, 400 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			root := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+root)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := -1
			lines := make(chan int)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if n, err := strconv.Atoi(sc.Text()); err == nil {
						lines <- n
					}
				}
			}()
			// The clock starts at the first acknowledged record.
			first, ok := <-lines
			if !ok {
				t.Fatal("the writer acknowledged nothing")
			}
			acked = first
			deadline := time.After(after)
		read:
			for {
				select {
				case n, ok := <-lines:
					if !ok {
						break read
					}
					acked = n
				case <-deadline:
					_ = cmd.Process.Signal(syscall.SIGKILL)
					deadline = nil
				}
			}
			_ = cmd.Wait()

			m, err := ReadManifest(filepath.Join(root, "20261128-120000-abcdef"))
			if err != nil {
				t.Fatalf("after the kill: %v", err)
			}
			if len(m.Stages) < acked+1 {
				t.Fatalf("%d stage records after the kill, but %d were acknowledged", len(m.Stages), acked+1)
			}
			for n, s := range m.Stages {
				if diff := cmp.Diff(stageN(n), s); diff != "" {
					t.Fatalf("stage record %d after the kill (-want +got):\n%s", n, diff)
				}
			}
			t.Logf("killed after %d acknowledged records; %d read back", acked+1, len(m.Stages))
		})
	}
}
