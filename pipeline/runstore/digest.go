package runstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zeebo/blake3"
)

// Digest algorithms a manifest can name (Manifest.Digest).
const (
	// DigestBLAKE3 verifies each output file with its OutputFile.BLAKE3.
	DigestBLAKE3 = "blake3"
	// DigestSHA256 is what manifests written before Manifest.Digest
	// existed are verified with: each file's OutputFile.SHA256.
	DigestSHA256 = "sha256"
)

// Why two hashes. Every committed file is checked against its manifest
// before it is read (OpenFiles, the cache, a resume), so the hash that
// checks it is paid on every first read. BenchmarkVerifyHash weighs it
// against reading the file. On the development machine (2 vCPU, SHA-NI,
// AVX-512, shared with other work) reading a results-shaped file (many
// small batches) cost BLAKE3 (zeebo/blake3, 1.1 to 1.4 GB/s) 4 to 7% and
// sha256 (0.4 to 0.8 GB/s) 7 to 15%: only BLAKE3 stays under the 10% the
// check may cost, so the check uses it. (A file of a few large batches
// reads at nearly the speed of a copy: there BLAKE3 cost 23 to 56% and
// sha256 38 to 79%; no hash is cheap next to a copy, and the check is
// made once per process.) The sha256 stays in the manifest as before:
// cache addresses, `explain`, the Temporal engine and the bucket
// (blobstore) name files by it. A file is therefore hashed with both as it
// is written, BLAKE3 on a second core for large writes (digester):
// BenchmarkCommitDigest measured that at 0.95 to 1.6 times the sha256
// alone.

// digester computes the sha256 and BLAKE3 of what is written to it.
type digester struct {
	sha hash.Hash
	b3  *blake3.Hasher
}

func newDigester() *digester { return &digester{sha: sha256.New(), b3: blake3.New()} }

// parallelMin is the write from which BLAKE3 runs beside sha256 rather
// than after it: below it, handing the slice to another goroutine costs
// more than it saves.
const parallelMin = 256 << 10

func (d *digester) Write(p []byte) (int, error) {
	if len(p) < parallelMin {
		d.sha.Write(p)
		d.b3.Write(p)
		return len(p), nil
	}
	done := make(chan struct{})
	go func() {
		d.b3.Write(p)
		close(done)
	}()
	d.sha.Write(p)
	<-done // p is the caller's again only once both are done with it
	return len(p), nil
}

func (d *digester) sums() (sha, b3 string) {
	return hex.EncodeToString(d.sha.Sum(nil)), hex.EncodeToString(d.b3.Sum(nil))
}

// digest is the algorithm and recorded sum that f is verified with: its
// BLAKE3 when recorded, else its sha256 (older manifests, and files that
// other writers recorded with a sha256 only).
func (f OutputFile) digest() (alg, sum string) {
	if f.BLAKE3 != "" {
		return DigestBLAKE3, f.BLAKE3
	}
	return DigestSHA256, f.SHA256
}

func newHash(alg string) hash.Hash {
	if alg == DigestBLAKE3 {
		return blake3.New()
	}
	return sha256.New()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// FileMismatchError is a file whose size or digest is not the one its
// producer recorded.
type FileMismatchError struct {
	Path string
	// Algorithm names the digest that differs; "" when the size differs.
	Algorithm string
	Got, Want string
	Size      int64
	WantSize  int64
}

func (e *FileMismatchError) Error() string {
	return e.Path + ": " + e.problem()
}

func (e *FileMismatchError) problem() string {
	if e.Algorithm == "" {
		return fmt.Sprintf("it is %d bytes, but %d were recorded", e.Size, e.WantSize)
	}
	return fmt.Sprintf("its %s is %s, but %s was recorded", e.Algorithm, e.Got, e.Want)
}

// DamagedFileError is a committed file of a run that is not what the run's
// manifest records: changed, cut short or gone since it was committed.
type DamagedFileError struct {
	Run   string
	Stage string
	Port  string
	Round int
	// File is the file's path relative to the run directory.
	File string
	Err  error // a *FileMismatchError, or why the file could not be read
}

func (e *DamagedFileError) Error() string {
	why := e.Err.Error()
	var mm *FileMismatchError
	if errors.As(e.Err, &mm) {
		why = mm.problem()
	} else if errors.Is(e.Err, os.ErrNotExist) {
		why = "it is missing"
	}
	return fmt.Sprintf("run %s, stage %s, port %s, round %d: committed file %s is damaged (%s); it is not used",
		e.Run, e.Stage, e.Port, e.Round, e.File, why)
}

func (e *DamagedFileError) Unwrap() error { return e.Err }

// verified remembers, by absolute path, the files this process has hashed
// and found as recorded: committed files never change, so a file that is
// still the same inode with the same size and times is not hashed again.
var verified sync.Map // string -> verifiedFile

type verifiedFile struct {
	id       fileID
	alg, sum string
}

// racyWindow is how long after a file's last change a check of it is not
// remembered (git's "racily clean" entries). A file's times come from the
// kernel's coarse clock, which moves once a tick (at most 10 ms), so a
// write in the same tick as the file's last change leaves its times as
// they were; a file checked more than a tick after its last change cannot
// hide a later write that way. A file read just after it was written or
// linked is therefore hashed again on its next read; one read later (every
// file that show, export, report, a resume or the cache read) only once.
// (This holds on local file systems; a network file system's times and
// attribute caching are not the kernel's to vouch for.)
const racyWindow = 100 * time.Millisecond

// VerifyFile checks that the file at path is the one f records: its size,
// and its BLAKE3 (or, for a file recorded without one, its sha256). A
// process hashes a file once: later checks of the unchanged file are free.
// A file that differs is a *FileMismatchError.
func VerifyFile(path string, f OutputFile) error {
	alg, want := f.digest()
	if want == "" {
		return fmt.Errorf("%s: no digest was recorded for it", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return err
	}
	if f.Bytes > 0 && fi.Size() != f.Bytes {
		return &FileMismatchError{Path: path, Size: fi.Size(), WantSize: f.Bytes}
	}
	if id, ok := idOf(fi); ok {
		if v, hit := verified.Load(abs); hit {
			if v := v.(verifiedFile); v.id == id && v.alg == alg && v.sum == want {
				return nil
			}
		}
	}
	start := time.Now()
	got, id, stable, err := hashFile(abs, alg)
	if err != nil {
		return err
	}
	if got != want {
		return &FileMismatchError{Path: path, Algorithm: alg, Got: got, Want: want}
	}
	if stable && id.changed().Before(start.Add(-racyWindow)) {
		verified.Store(abs, verifiedFile{id: id, alg: alg, sum: got})
	}
	return nil
}

// hashFile returns the hex digest of the file at path with alg, and the
// file's identity when it stayed the same while it was read (stable).
func hashFile(path, alg string) (sum string, id fileID, stable bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fileID{}, false, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return "", fileID{}, false, err
	}
	h := newHash(alg)
	buf := bufPool.Get().(*[]byte)
	defer bufPool.Put(buf)
	if _, err := io.CopyBuffer(h, onlyReader{f}, *buf); err != nil {
		return "", fileID{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	after, err := f.Stat()
	if err != nil {
		return "", fileID{}, false, err
	}
	id, ok := idOf(before)
	id2, ok2 := idOf(after)
	return hex.EncodeToString(h.Sum(nil)), id, ok && ok2 && id == id2, nil
}

// onlyReader hides *os.File's WriteTo, so io.CopyBuffer uses its buffer.
type onlyReader struct{ io.Reader }

// VerifyOutput checks a file of the run against f, its record in the
// manifest under stage. A file that differs is a *DamagedFileError naming
// the run, the stage, the port and the file.
func (r *Run) VerifyOutput(stage string, f OutputFile) error {
	if err := VerifyFile(r.Path(f.Path), f); err != nil {
		return &DamagedFileError{Run: r.ID(), Stage: stage, Port: f.Port, Round: f.Round, File: f.Path, Err: err}
	}
	return nil
}

// verifyCommitted checks the file at path against its run's manifest when
// path is a file a run recorded (RUN/stages/..., listed in RUN's
// manifest.json), so that every reader of committed files (runs show,
// export, report, a resumed or later stage) refuses one that changed. A
// path outside any run, or that its run does not (yet) record, is not
// checked here: a stage's own temporary and trial files, a Temporal
// worker's copies (which it checks against what the client sent).
func verifyCommitted(path string, memo map[string]map[string]fileRecord) error {
	rec, ok, err := recordOf(path, memo)
	if err != nil || !ok {
		return err
	}
	if _, want := rec.f.digest(); want == "" {
		return nil // recorded without a digest: nothing to check against
	}
	if err := VerifyFile(path, rec.f); err != nil {
		return &DamagedFileError{Run: rec.run, Stage: rec.stage, Port: rec.f.Port, Round: rec.f.Round, File: rec.f.Path, Err: err}
	}
	return nil
}

// fileRecord is where a manifest records a file.
type fileRecord struct {
	run, stage string
	f          OutputFile
}

// manifests caches the manifests verifyCommitted reads, by run directory:
// the snapshot's file identity (a snapshot is replaced by a rename, so a
// changed one is a new inode) and how far its change log was read. The
// change log is only appended to, so a cached manifest is brought up to
// date by reading the lines after that point.
var manifests struct {
	sync.Mutex
	byDir map[string]parsedManifest
}

type parsedManifest struct {
	id    fileID
	runID string
	log   string                // the change log the snapshot names
	pos   logPosition           // how far it was read
	files map[string]fileRecord // by path relative to the run directory; never changed once cached
}

// recordOf finds the run directory that holds path (the parent of a
// "stages" directory above it, with a manifest.json naming the run as the
// directory is named) and the manifest's record of the file. memo, when
// not nil, keeps the manifests read for the files of one OpenFiles.
func recordOf(path string, memo map[string]map[string]fileRecord) (fileRecord, bool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fileRecord{}, false, err
	}
	for dir := filepath.Dir(abs); ; {
		parent := filepath.Dir(dir)
		if parent == dir {
			return fileRecord{}, false, nil
		}
		if filepath.Base(dir) == "stages" {
			files, ok := memo[parent]
			if !ok {
				var err error
				if files, _, err = manifestFiles(parent); err != nil {
					return fileRecord{}, false, err
				}
				if memo != nil {
					memo[parent] = files
				}
			}
			ok = files != nil
			if ok {
				rel, err := filepath.Rel(parent, abs)
				if err != nil {
					return fileRecord{}, false, nil
				}
				rec, ok := files[rel]
				return rec, ok, nil
			}
		}
		dir = parent
	}
}

// manifestFiles indexes the files the manifest in runDir records (its
// snapshot and change log); ok is false when runDir is not a run
// directory.
func manifestFiles(runDir string) (map[string]fileRecord, bool, error) {
	path := filepath.Join(runDir, ManifestFile)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	start := time.Now()
	id, idOK := idOf(fi)
	manifests.Lock()
	p, hit := manifests.byDir[runDir]
	manifests.Unlock()
	if hit && idOK && p.id == id {
		if p.files == nil || p.log == "" {
			return p.files, p.files != nil, nil
		}
		// The same snapshot: only the log's new lines are read.
		var added []*StageRecord
		pos, err := readChangeLog(filepath.Join(runDir, p.log), p.pos, func(s *StageRecord) { added = append(added, s) })
		if err == nil || errors.Is(err, os.ErrNotExist) {
			if pos == p.pos {
				return p.files, true, nil
			}
			files := maps.Clone(p.files)
			for _, s := range added {
				addRecordFiles(files, p.runID, s)
			}
			p.pos, p.files = pos, files
			manifests.Lock()
			manifests.byDir[runDir] = p
			manifests.Unlock()
			return files, true, nil
		}
		// A damaged log: read whole below, which reports it.
	}
	m, pos, err := readManifest(runDir)
	if err != nil {
		// A snapshot replaced whole (WriteFileAtomic) that does not parse,
		// or a change log damaged before its end, is damaged: its files
		// cannot be checked.
		return nil, false, err
	}
	var files map[string]fileRecord
	if m.RunID == filepath.Base(runDir) {
		files = map[string]fileRecord{}
		for _, s := range m.Stages {
			addRecordFiles(files, m.RunID, s)
		}
	}
	// A snapshot replaced within a tick of the last one can reuse its
	// inode, size and times: only one that has not changed for a while is
	// known by its identity (see racyWindow). (Its change log is only
	// appended to: what was read of it stays read.)
	if idOK && id.changed().Before(start.Add(-racyWindow)) {
		// The snapshot read must be the one stat saw: read again otherwise.
		if again, err := os.Stat(path); err == nil {
			if aid, ok := idOf(again); ok && aid == id {
				manifests.Lock()
				if manifests.byDir == nil {
					manifests.byDir = map[string]parsedManifest{}
				}
				manifests.byDir[runDir] = parsedManifest{id: id, runID: m.RunID, log: m.ChangeLog, pos: pos, files: files}
				manifests.Unlock()
			}
		}
	}
	return files, files != nil, nil
}

// addRecordFiles indexes the files one stage record lists: its outputs,
// then its executions, whose record of a file is the latest (a stage run
// again on resume appends to Outputs but replaces its execution).
func addRecordFiles(files map[string]fileRecord, runID string, s *StageRecord) {
	for _, f := range s.Outputs {
		files[f.Path] = fileRecord{run: runID, stage: s.Addr, f: f}
	}
	for _, e := range s.Executions {
		if e.Status != StatusSucceeded {
			continue
		}
		for _, f := range e.Files {
			files[f.Path] = fileRecord{run: runID, stage: s.Addr, f: f}
		}
	}
}
