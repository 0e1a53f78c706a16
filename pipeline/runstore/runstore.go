// Package runstore keeps what a run leaves behind under
// .sweetspot/runs/<run-id>/: a manifest (a snapshot and a change log of
// stage records, see changelog.go), each stage's output ports as Arrow IPC
// files, span files and logs. Every file but the change log is written to
// a temporary name, synced and renamed into place, and the change log is
// only appended to in whole, checksummed lines, so a crash never leaves a
// half-written record that is read as whole, and what was written before
// stays readable.
package runstore

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultRoot is where runs live, relative to the working directory.
const DefaultRoot = ".sweetspot/runs"

// Run status values.
const (
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCanceled  = "canceled"
	// StatusSkipped is a stage that never ran because a stage it depends
	// on failed; its Error names that stage.
	StatusSkipped = "skipped"
)

// Manifest describes a run. It is stored as a snapshot, rewritten
// atomically by Update, and a change log of the stage records changed
// since (UpdateStage, NoteStage); ReadManifest reads both.
type Manifest struct {
	// Check is the snapshot's own CRC-32C ("crc32c:" and 8 hex digits),
	// written and verified by the store (snapshotcheck.go); first, so
	// that it sits at a known place in the file.
	Check        string            `json:"check,omitempty"`
	RunID        string            `json:"run_id"`
	Pipeline     []string          `json:"pipeline"`
	PipelineHash string            `json:"pipeline_hash"`
	Vars         map[string]string `json:"vars"`
	Status       string            `json:"status"`
	Error        string            `json:"error,omitempty"`
	TraceID      string            `json:"trace_id"`
	StartedAt    time.Time         `json:"started_at"`
	FinishedAt   *time.Time        `json:"finished_at,omitempty"`
	Stages       []*StageRecord    `json:"stages"`
	// Decision is the last decision of the pipeline's loop, when it has one.
	Decision *Decision `json:"decision,omitempty"`
	// Attempts counts the runs of this pipeline into this directory: 1, plus
	// one per --resume.
	Attempts int `json:"attempts,omitempty"`
	// TraceIDs holds each attempt's trace, oldest first.
	TraceIDs []string `json:"trace_ids,omitempty"`
	// NoCache records that the run was asked not to use the cache.
	NoCache bool `json:"no_cache,omitempty"`
	// Engine is "temporal" for a run spread over Temporal workers (the
	// workflow id is the run id); empty for a local run.
	Engine string `json:"engine,omitempty"`
	// Digest names the hash that output files are verified with before
	// they are read: DigestBLAKE3 (each file's BLAKE3) in runs created
	// since it was recorded; empty in older manifests, whose files are
	// verified with their sha256. A file recorded without a BLAKE3 is
	// verified with its sha256 in any run.
	Digest string `json:"digest,omitempty"`
	// ChangeLog is the file in the run directory that holds the stage
	// records changed since this snapshot was written, when there are
	// any. A manifest returned by ReadManifest or Run.Manifest has them
	// applied.
	ChangeLog string `json:"change_log,omitempty"`
}

// StageRecord is one stage's part of a run.
type StageRecord struct {
	Addr          string       `json:"addr"`
	Kind          string       `json:"kind"`
	Plugin        string       `json:"plugin"`
	PluginVersion string       `json:"plugin_version"`
	Pid           int          `json:"pid,omitempty"`
	Status        string       `json:"status"`
	Error         string       `json:"error,omitempty"`
	Rounds        int          `json:"rounds,omitempty"`
	StartedAt     *time.Time   `json:"started_at,omitempty"`
	FinishedAt    *time.Time   `json:"finished_at,omitempty"`
	Outputs       []OutputFile `json:"outputs,omitempty"`
	// Executions records each round's run of the stage: what went in (for
	// the cache and `explain`) and where its outputs came from.
	Executions []Execution `json:"executions,omitempty"`
	// Worker is the identity of the Temporal worker that ran the stage's
	// latest execution; empty in a local run.
	Worker string `json:"worker,omitempty"`
}

// Execution is one run of a stage in one round.
type Execution struct {
	Round  int    `json:"round"`
	Status string `json:"status"`
	// Key is the content address of the execution: a hash of Inputs.
	Key    string        `json:"key"`
	Inputs CacheInputs   `json:"inputs"`
	Source string        `json:"source"` // "ran", "cache", "resumed"
	From   string        `json:"from,omitempty"`
	Note   string        `json:"note,omitempty"`
	Files  []OutputFile  `json:"files,omitempty"`
	Took   time.Duration `json:"took_ns,omitempty"`
	// PeakRSS is the most resident memory, in bytes, that the plugin
	// process (with its children) held by the end of the execution: the
	// kernel's high-water mark (VmHWM), or the host's samples when they
	// saw more. 0 when the plugin did not run here (cache, resume).
	PeakRSS int64 `json:"peak_rss_bytes,omitempty"`
	// Worker is the Temporal worker that ran the execution and Attempt
	// Temporal's try that succeeded (1 unless a worker died or the plugin
	// failed); both empty in a local run.
	Worker  string `json:"worker,omitempty"`
	Attempt int    `json:"attempt,omitempty"`
	// Trials says where each trial of a stage spread over workers ran
	// (one activity per trial), in the order of the stage's input rows.
	Trials []TrialRecord `json:"trials,omitempty"`
}

// TrialRecord is one trial of a stage whose trials ran as separate
// Temporal activities.
type TrialRecord struct {
	Index   int           `json:"index"`
	Worker  string        `json:"worker"`
	Attempt int           `json:"attempt"`
	Pid     int           `json:"pid,omitempty"`
	Took    time.Duration `json:"took_ns,omitempty"`
}

// CacheInputs is everything an execution's outputs depend on.
type CacheInputs struct {
	Plugin        string `json:"plugin"`
	PluginVersion string `json:"plugin_version"`
	// PluginSHA256 is the plugin executable's hash, so a rebuilt plugin
	// with an unchanged version is not mistaken for the old one.
	PluginSHA256 string `json:"plugin_sha256"`
	Kind         string `json:"kind"`
	Round        int    `json:"round"`
	// Config is the constant config value as JSON.
	Config json.RawMessage `json:"config"`
	// Ports maps each input port to the sha256 of each file it read.
	Ports map[string][]string `json:"ports"`
	// Files maps config attributes that name input files (path, *_path)
	// to the sha256 of the file's contents.
	Files map[string]string `json:"files,omitempty"`
}

// Execution returns the stage's execution of a round, if recorded.
func (s *StageRecord) Execution(round int) (*Execution, bool) {
	for i := range s.Executions {
		if s.Executions[i].Round == round {
			return &s.Executions[i], true
		}
	}
	return nil, false
}

// OutputFile is one output port of one round of a stage, as an Arrow IPC file.
type OutputFile struct {
	Port   string `json:"port"`
	Round  int    `json:"round"`
	Path   string `json:"path"` // relative to the run directory
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	// BLAKE3 is the hash the file is verified with before it is read
	// (Manifest.Digest); the sha256 names it in cache addresses and to
	// the Temporal engine's bucket.
	BLAKE3 string `json:"blake3,omitempty"`
	// URI is where the file is in object storage, when the run's
	// workers exchange files through a bucket rather than a shared
	// directory (pipeline/blobstore).
	URI string `json:"uri,omitempty"`
}

// Decision summarises how a loop ended.
type Decision struct {
	Stage  string `json:"stage"`
	Rounds int    `json:"rounds"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	Chosen string `json:"chosen,omitempty"`
	// ChosenName is the chosen model's name (the decision's chosen_name),
	// which people read; Chosen is its candidate id, which tables join on.
	ChosenName string `json:"chosen_name,omitempty"`
}

// Store is a directory of runs.
type Store struct {
	Root string
}

// Open returns the store rooted at root (created on first use).
func Open(root string) *Store { return &Store{Root: root} }

// Run is one run directory and its manifest. Its methods are safe for
// concurrent use.
type Run struct {
	Dir string
	mu  sync.Mutex
	m   Manifest
	// index finds a stage's record in m by address; rebuilt after every
	// Update, which may change m.Stages at will.
	index map[string]*StageRecord
	// own is set once this Run wrote the snapshot that names
	// m.ChangeLog: only then may it append to that log (a loaded run's log
	// may end in a line torn by a crash).
	own bool
	// log is the change log being appended to; nil until the first
	// change after a snapshot.
	log *changeLog
	// snapshotSize is the size of the last snapshot written: the log is
	// compacted into a new one when it grows past twice that.
	snapshotSize int

	lockMu sync.Mutex
	lock   *os.File // the run's lock file while this Run holds it (Lock)
}

// NewRunID returns a sortable, unique run id: UTC time then random hex.
func NewRunID(now time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%x", now.UTC().Format("20060102-150405"), b)
}

// Create makes a new run directory, takes the run's lock (Lock) and writes
// its first manifest. The lock is held until Unlock or End, or until the
// process exits: a --resume of the run cannot start while it is made.
func (s *Store) Create(m Manifest) (*Run, error) {
	if m.RunID == "" {
		m.RunID = NewRunID(time.Now())
	}
	// Ids chosen by the caller (a workflow's, a test's) need not be of
	// NewRunID's format, but must name one directory inside the store.
	if m.RunID != filepath.Base(m.RunID) || strings.HasPrefix(m.RunID, ".") {
		return nil, &InvalidRunIDError{ID: m.RunID}
	}
	dir := filepath.Join(s.Root, m.RunID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create run directory: %w", err)
	}
	if m.Status == "" {
		m.Status = StatusRunning
	}
	if m.Digest == "" {
		m.Digest = DigestBLAKE3
	}
	r := &Run{Dir: dir, m: m}
	if err := r.Lock(); err != nil {
		return nil, err
	}
	if err := r.save(); err != nil {
		r.Unlock()
		return nil, err
	}
	return r, nil
}

// Load reads the run with the given id (or a unique prefix of one). An id
// that is not of NewRunID's format (or a prefix of one) is refused with an
// *InvalidRunIDError before anything is read.
func (s *Store) Load(id string) (*Run, error) {
	if err := CheckRunID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.Root, id)
	if _, err := os.Stat(filepath.Join(dir, ManifestFile)); err != nil {
		ids, lerr := s.IDs()
		if lerr != nil {
			return nil, lerr
		}
		var match []string
		for _, cand := range ids {
			if strings.HasPrefix(cand, id) {
				match = append(match, cand)
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("no run %q in %s", id, s.Root)
		case 1:
			dir = filepath.Join(s.Root, match[0])
		default:
			return nil, fmt.Errorf("run id %q is ambiguous: it matches %s", id, strings.Join(match, ", "))
		}
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	return &Run{Dir: dir, m: m}, nil
}

// IDs lists the run ids in the store, oldest first: the directories named
// as NewRunID names them that hold a manifest.
func (s *Store) IDs() ([]string, error) {
	entries, err := os.ReadDir(s.Root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && isRunID(e.Name()) {
			if _, err := os.Stat(filepath.Join(s.Root, e.Name(), ManifestFile)); err == nil {
				ids = append(ids, e.Name())
			}
		}
	}
	sort.Strings(ids)
	s.orderWithinSeconds(ids)
	return ids, nil
}

// orderWithinSeconds puts runs whose ids name the same second (their
// random suffixes sort in no order of time) in the order they started, as
// their manifests record it; a manifest that cannot be read keeps its
// place by id, after the ones that can.
func (s *Store) orderWithinSeconds(ids []string) {
	const second = len("20261128-231726")
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j][:second] == ids[i][:second] {
			j++
		}
		if j-i > 1 {
			started := map[string]time.Time{}
			for _, id := range ids[i:j] {
				if m, err := readSnapshot(filepath.Join(s.Root, id)); err == nil && !m.StartedAt.IsZero() {
					started[id] = m.StartedAt
				}
			}
			slices.SortStableFunc(ids[i:j], func(a, b string) int {
				ta, oka := started[a]
				tb, okb := started[b]
				switch {
				case oka && okb:
					return ta.Compare(tb)
				case oka:
					return -1
				case okb:
					return 1
				}
				return 0
			})
		}
		i = j
	}
}

// ID is the run id.
func (r *Run) ID() string { return r.m.RunID }

// Manifest returns a deep copy of the manifest.
func (r *Run) Manifest() Manifest {
	r.mu.Lock()
	defer r.mu.Unlock()
	data, _ := json.Marshal(r.m)
	var m Manifest
	_ = json.Unmarshal(data, &m)
	return m
}

// Stage returns a copy of one stage's record, if the manifest has it.
func (r *Run) Stage(addr string) (StageRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stage(addr)
	if s == nil {
		return StageRecord{}, false
	}
	data, _ := json.Marshal(s)
	var out StageRecord
	_ = json.Unmarshal(data, &out)
	return out, true
}

// stage finds a stage's record; r.mu is held.
func (r *Run) stage(addr string) *StageRecord {
	if r.index == nil {
		r.index = make(map[string]*StageRecord, len(r.m.Stages))
		for _, s := range r.m.Stages {
			r.index[s.Addr] = s
		}
	}
	return r.index[addr]
}

// Update changes the manifest and writes it whole (a new snapshot, into
// which the change log is compacted); it returns once the snapshot is on
// disk. Only the holder of the run's lock writes its manifest: a Run that
// does not hold it takes it for the save, and fails with a *LockedError,
// changing nothing, while another process holds it.
func (r *Run) Update(change func(m *Manifest)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Under r.mu, so that no other Update saves once this one lets go of
	// a lock it took for itself.
	if !r.Locked() {
		if err := r.Lock(); err != nil {
			return err
		}
		defer r.Unlock()
	}
	change(&r.m)
	r.index = nil
	return r.save()
}

// UpdateStage changes one stage's record, creating it if needed, and
// returns once the change is on disk (an fsync that changes recorded at
// the same time share). Use it for what a resume depends on: a finished
// execution, before anything that only the record makes safe to delete.
func (r *Run) UpdateStage(addr string, change func(s *StageRecord)) error {
	l, seq, err := r.changeStage(addr, change)
	if err != nil || l == nil {
		return err
	}
	return l.syncTo(seq)
}

// NoteStage changes one stage's record like UpdateStage, but returns once
// the change is written, before it is synced: it outlives this process
// (a kill) but not the machine (a power cut) unless a later UpdateStage or
// Update follows. For what a resume does not depend on: a stage started,
// the process it runs in.
func (r *Run) NoteStage(addr string, change func(s *StageRecord)) error {
	_, _, err := r.changeStage(addr, change)
	return err
}

// changeStage applies change to a stage's record and appends the record
// to the change log; l is nil when the change was saved in a snapshot
// instead (which is synced).
func (r *Run) changeStage(addr string, change func(s *StageRecord)) (l *changeLog, seq uint64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stage(addr)
	if s == nil {
		s = &StageRecord{Addr: addr}
		r.m.Stages = append(r.m.Stages, s)
		r.index[addr] = s
	}
	change(s)
	if !r.Locked() || !r.own {
		// Not this process's run to append to (Update takes the lock for
		// the save), or a log it did not begin: a snapshot takes the change.
		if !r.Locked() {
			if err := r.Lock(); err != nil {
				return nil, 0, err
			}
			defer r.Unlock()
		}
		return nil, 0, r.save()
	}
	line, err := encodeLogLine(s)
	if err != nil {
		return nil, 0, fmt.Errorf("encode run manifest change: %w", err)
	}
	if r.log == nil {
		if r.log, err = r.beginLog(); err != nil {
			return nil, 0, err
		}
	}
	l = r.log
	if seq, err = l.append(line); err != nil {
		// The log may end in part of the line: nothing more goes to it,
		// and the next change starts a new snapshot (and with it a log).
		l.close()
		r.log, r.own = nil, false
		return nil, 0, fmt.Errorf("write run manifest change: %w", err)
	}
	if l.size > max(1<<20, 2*int64(r.snapshotSize)) {
		// Compacting now keeps a long run's log (and every read of it)
		// within a few times the manifest's size.
		return nil, 0, r.save()
	}
	return l, seq, nil
}

// beginLog creates the change log the last snapshot names. A file of that
// name can only be left by a snapshot that failed to be written (no
// snapshot names it): it is replaced.
func (r *Run) beginLog() (*changeLog, error) {
	path := r.Path(r.m.ChangeLog)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("begin run manifest change log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("begin run manifest change log: %w", err)
	}
	// The log's name (and the snapshot's rename before it) must outlive
	// a power cut for the synced lines in it to.
	syncDir(r.Dir)
	return newChangeLog(f), nil
}

// save writes the whole manifest as a new snapshot naming a new (not yet
// created) change log, then removes the log it replaces; r.mu is held.
func (r *Run) save() error {
	gen := 0
	if g, ok := changeLogGen(r.m.ChangeLog); ok {
		gen = g + 1
	}
	m := r.m
	m.ChangeLog = changeLogName(gen)
	m.Check = "crc32c:" + snapshotCheckPlaceholder
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode run manifest: %w", err)
	}
	if err := sealSnapshot(data); err != nil {
		return err
	}
	if err := WriteFileAtomic(r.Path(ManifestFile), data); err != nil {
		return err
	}
	old := r.m.ChangeLog
	r.m.ChangeLog, r.own, r.snapshotSize = m.ChangeLog, true, len(data)
	if r.log != nil {
		r.log.close()
		r.log = nil
	}
	if old != "" {
		// Its lines are in the snapshot now; a crash before this leaves a
		// file no snapshot names, which RemoveLeftovers deletes.
		if err := os.Remove(r.Path(old)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove compacted run manifest change log: %w", err)
		}
	}
	return nil
}

// Path returns an absolute-or-store-relative path inside the run directory.
func (r *Run) Path(rel ...string) string {
	return filepath.Join(append([]string{r.Dir}, rel...)...)
}

// OutputRel is where a stage's port output of a round is stored, relative to
// the run directory.
func OutputRel(stage string, round int, port string) string {
	return filepath.Join("stages", stage, fmt.Sprintf("round-%03d", round), port+".arrow")
}

// WriteFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, so readers see the old file or the new one, never a
// torn one.
func WriteFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Begin marks the start of an attempt at the run (the first, or one more
// after --resume) traced as traceID, on engine ("" for local). It takes
// the run's lock, held until End: while another process holds it, Begin
// fails with a *LockedError and changes nothing.
func (r *Run) Begin(traceID, engine string) error {
	if err := r.Lock(); err != nil {
		return err
	}
	return r.Update(func(m *Manifest) {
		m.TraceID = traceID
		m.TraceIDs = append(m.TraceIDs, traceID)
		m.Attempts++
		m.Status = StatusRunning
		m.Engine = engine
		m.Error = ""
		m.FinishedAt = nil
	})
}

// StatusOf is the run status that an attempt ending with err leaves.
func StatusOf(err error) string {
	switch {
	case err == nil:
		return StatusSucceeded
	case errors.Is(err, context.Canceled):
		return StatusCanceled
	default:
		return StatusFailed
	}
}

// End records how an attempt ended, releases the run's lock and returns
// the attempt's status. A failure to record is returned as err when the
// attempt itself succeeded.
func (r *Run) End(runErr error) (status string, err error) {
	status = StatusOf(runErr)
	now := time.Now().UTC()
	err = r.Update(func(m *Manifest) {
		m.Status = status
		m.FinishedAt = &now
		if runErr != nil {
			m.Error = runErr.Error()
		}
	})
	r.Unlock()
	if runErr != nil {
		return status, runErr
	}
	return status, err
}

// isTemp reports whether name is a temporary file of this package
// (WriteFileAtomic, PortWriter, journal): a file never renamed into place.
func isTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// RemoveLeftovers deletes what attempts killed in the middle of a write
// left in the run directory: temporary files that were never renamed into
// place, and the journals of outputs the manifest records (their files
// hold every row). Call it before resuming the run: it takes the run's
// lock (or fails with a *LockedError) so that it never removes what a
// live attempt is writing.
func (r *Run) RemoveLeftovers() error {
	if !r.Locked() {
		if err := r.Lock(); err != nil {
			return err
		}
		defer r.Unlock()
	}
	var errs []error
	remove := func(path string) {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		return fmt.Errorf("clean run directory: %w", err)
	}
	current := r.Manifest().ChangeLog
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if _, isLog := changeLogGen(e.Name()); isTemp(e.Name()) || isLog && e.Name() != current {
			remove(r.Path(e.Name()))
		}
	}
	err = filepath.WalkDir(r.Path("stages"), func(path string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !d.IsDir() && isTemp(d.Name()) {
			remove(path)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	m := r.Manifest()
	for _, s := range m.Stages {
		for _, e := range s.Executions {
			if e.Status != StatusSucceeded {
				continue
			}
			for _, f := range e.Files {
				if err := RemoveJournal(r.Path(f.Path)); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean run directory: %w", err)
	}
	return nil
}
