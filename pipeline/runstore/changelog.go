package runstore

// A run's manifest is a snapshot (manifest.json) and a change log: the
// stage records changed since the snapshot was written, appended one a
// line to the file the snapshot names (Manifest.ChangeLog). Recording a
// stage therefore costs the same in a run of 2000 stages as in a run of
// two; rewriting the whole manifest on every change made a run's writes
// grow with the square of its stages, one fsync at a time.
//
// A line is the CRC-32C of its JSON in 8 hex digits, a space, the JSON of
// a logEntry and a newline. A line is whole or not there: a process killed
// while it appends leaves at most a last line without its newline or with
// a wrong checksum, which readers take as not written. A damaged line with
// whole lines after it is damage, reported with the file and line.
//
// The snapshot is rewritten (the log compacted into it and a new log
// begun) by every Update: when an attempt begins and ends, when a loop
// decides, and when the log outgrows the snapshot. A new snapshot names a
// log that does not exist yet; the log it replaces is removed once the
// snapshot is in place.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// ManifestFile is the snapshot of a run's manifest in its directory.
const ManifestFile = "manifest.json"

// logEntry is one line of a change log: a stage's whole record, which
// replaces the one before it (or is added after the others).
type logEntry struct {
	Stage *StageRecord `json:"stage"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// changeLogName names the change log of a snapshot's generation gen.
func changeLogName(gen int) string { return fmt.Sprintf("manifest.%d.log", gen) }

// changeLogGen is the generation of a change log's name; ok is false for
// a name that is not one changeLogName gives (a manifest's field is
// outside input: it must not name a file elsewhere).
func changeLogGen(name string) (gen int, ok bool) {
	s, found := strings.CutPrefix(name, "manifest.")
	if !found {
		return 0, false
	}
	s, found = strings.CutSuffix(s, ".log")
	if !found || s == "" || strings.TrimLeft(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	gen, err := strconv.Atoi(s)
	return gen, err == nil
}

// ChangeLogError is a change log line that is damaged while lines after it
// are whole: something other than an interrupted append changed the file.
type ChangeLogError struct {
	Path string
	Line int
	Err  error
}

func (e *ChangeLogError) Error() string {
	return fmt.Sprintf("run manifest change log %s:%d: %v; the run's record after this line cannot be trusted", e.Path, e.Line, e.Err)
}

func (e *ChangeLogError) Unwrap() error { return e.Err }

// encodeLogLine is one change log line recording s.
func encodeLogLine(s *StageRecord) ([]byte, error) {
	data, err := json.Marshal(logEntry{Stage: s})
	if err != nil {
		return nil, err
	}
	line := make([]byte, 0, len(data)+10)
	line = fmt.Appendf(line, "%08x ", crc32.Checksum(data, castagnoli))
	line = append(line, data...)
	return append(line, '\n'), nil
}

// decodeLogLine reads one whole line (without its newline).
func decodeLogLine(line []byte) (*StageRecord, error) {
	if len(line) < 10 || line[8] != ' ' {
		return nil, errors.New("not a change log line")
	}
	var sum [4]byte
	if _, err := hex.Decode(sum[:], line[:8]); err != nil {
		return nil, errors.New("not a change log line")
	}
	data := line[9:]
	want := uint32(sum[0])<<24 | uint32(sum[1])<<16 | uint32(sum[2])<<8 | uint32(sum[3])
	if crc32.Checksum(data, castagnoli) != want {
		return nil, errors.New("checksum mismatch")
	}
	var e logEntry
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("entry: %w", err)
	}
	if e.Stage == nil || e.Stage.Addr == "" {
		return nil, errors.New("entry names no stage")
	}
	return e.Stage, nil
}

// logPosition is how far a change log has been read: the offset after its
// last whole line, and that line's number.
type logPosition struct {
	Offset int64
	Line   int
}

// readChangeLog applies the whole lines of the log at path from pos on,
// in order, and returns the position after the last one. A missing log is
// fs.ErrNotExist.
func readChangeLog(path string, pos logPosition, apply func(*StageRecord)) (logPosition, error) {
	f, err := os.Open(path)
	if err != nil {
		return pos, err
	}
	defer f.Close()
	if _, err := f.Seek(pos.Offset, io.SeekStart); err != nil {
		return pos, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return pos, nil // nothing more, or a last line still (or never) being written
		}
		if err != nil {
			return pos, err
		}
		s, derr := decodeLogLine(line[:len(line)-1])
		if derr != nil {
			if _, perr := br.Peek(1); errors.Is(perr, io.EOF) {
				return pos, nil // the last line, torn by an interrupted append
			}
			return pos, &ChangeLogError{Path: path, Line: pos.Line + 1, Err: derr}
		}
		apply(s)
		pos.Offset += int64(len(line))
		pos.Line++
	}
}

// applyStage replaces the record of s.Addr in m, or adds it.
func applyStage(m *Manifest, s *StageRecord) {
	for i, old := range m.Stages {
		if old.Addr == s.Addr {
			m.Stages[i] = s
			return
		}
	}
	m.Stages = append(m.Stages, s)
}

// readSnapshot reads and parses a run's manifest.json.
func readSnapshot(dir string) (Manifest, error) {
	path := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Manifest{}, fmt.Errorf("read run manifest: %w", err)
	}
	if err := checkSnapshot(path, data); err != nil {
		return Manifest{}, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Manifest{}, fmt.Errorf("run manifest %s: %w", path, err)
	}
	if m.Check != "" && !sealed(data) {
		return Manifest{}, fmt.Errorf("run manifest %s is damaged: its check field is not where it belongs", path)
	}
	m.Check = "" // verified above; the next snapshot gets its own
	if m.ChangeLog != "" {
		if _, ok := changeLogGen(m.ChangeLog); !ok {
			return Manifest{}, fmt.Errorf("run manifest %s: change_log %q is not a change log's name", path, m.ChangeLog)
		}
	}
	return m, nil
}

// ReadManifest reads the manifest of the run in dir as its writer last
// recorded it: the snapshot with its change log applied. It may be read
// while the run is written: a snapshot replaced between the two reads is
// read again.
func ReadManifest(dir string) (Manifest, error) {
	m, _, err := readManifest(dir)
	return m, err
}

// readManifest is ReadManifest, with the position the change log was read
// to.
func readManifest(dir string) (Manifest, logPosition, error) {
	m, err := readSnapshot(dir)
	for attempt := 0; ; attempt++ {
		if err != nil || m.ChangeLog == "" {
			return m, logPosition{}, err
		}
		var pos logPosition
		pos, err = readChangeLog(filepath.Join(dir, m.ChangeLog), logPosition{}, func(s *StageRecord) { applyStage(&m, s) })
		if !errors.Is(err, fs.ErrNotExist) {
			return m, pos, err
		}
		// No log: none was begun since the snapshot, or a newer snapshot
		// took it in and removed it after the snapshot was read.
		again, aerr := readSnapshot(dir)
		if aerr != nil || again.ChangeLog == m.ChangeLog {
			return again, logPosition{}, aerr
		}
		if attempt == 10 {
			return Manifest{}, logPosition{}, fmt.Errorf("run manifest in %s: rewritten faster than it could be read", dir)
		}
		// The log was compacted into the newer snapshot: read its own log,
		// the ENOENT of the old one answered.
		m, err = again, nil
	}
}

// changeLog is the log a Run appends its stage records to, with its
// group commit: a change waits for an fsync that covers it, and changes
// that wait at once share one.
type changeLog struct {
	f    *os.File
	size int64 // bytes appended

	mu      sync.Mutex
	cond    *sync.Cond
	written uint64 // lines appended
	synced  uint64 // lines known to be on disk
	syncing bool
	closed  bool
}

func newChangeLog(f *os.File) *changeLog {
	l := &changeLog{f: f}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// append writes one line and returns its number. The caller serialises
// appends (the Run's mutex).
func (l *changeLog) append(line []byte) (uint64, error) {
	if _, err := l.f.Write(line); err != nil {
		return 0, err
	}
	l.size += int64(len(line))
	l.mu.Lock()
	defer l.mu.Unlock()
	l.written++
	return l.written, nil
}

// syncTo returns once line seq is on disk. A log closed meanwhile was
// compacted into a snapshot, which is synced: its lines need no more.
func (l *changeLog) syncTo(seq uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.synced < seq && !l.closed {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.syncing = true
		target := l.written
		l.mu.Unlock()
		err := l.f.Sync()
		l.mu.Lock()
		l.syncing = false
		l.cond.Broadcast()
		if err != nil {
			return fmt.Errorf("sync run manifest change log: %w", err)
		}
		l.synced = max(l.synced, target)
	}
	return nil
}

// close waits for a sync in flight and closes the file.
func (l *changeLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.syncing {
		l.cond.Wait()
	}
	if !l.closed {
		l.closed = true
		l.f.Close()
		l.cond.Broadcast()
	}
}
