package runstore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
)

// PortWriter writes one output port to an Arrow IPC file. Batches go to a
// temporary file that Commit syncs, makes read-only and renames into place;
// Abort removes it. The schema is fixed by the first batch, or by the
// declared schema when the port stays empty.
type PortWriter struct {
	path     string
	declared *arrow.Schema
	mem      memory.Allocator
	f        *os.File
	d        *digester
	b3       string // the committed file's BLAKE3
	w        *ipc.FileWriter
	rows     int64
	counting *countingWriter
	journal  bool
	carried  int64
	j        *journal
}

// Journal makes the writer also append each batch to a synced journal
// (JournalPath), which survives a crash. carried is the number of rows of
// the journal an interrupted attempt left that the stage writes again
// first (0 when none): that journal is replaced only once the new one holds
// as many rows. Commit keeps the journal; RemoveJournal deletes it once the
// file is recorded.
func (pw *PortWriter) Journal(carried int64) { pw.journal, pw.carried = true, carried }

// NewPortWriter prepares a writer for path. declared may be nil.
func NewPortWriter(path string, declared *arrow.Schema, mem memory.Allocator) *PortWriter {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &PortWriter{path: path, declared: declared, mem: mem}
}

func (pw *PortWriter) open(schema *arrow.Schema) error {
	if err := os.MkdirAll(filepath.Dir(pw.path), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", pw.path, err)
	}
	f, err := os.CreateTemp(filepath.Dir(pw.path), "."+filepath.Base(pw.path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create %s: %w", pw.path, err)
	}
	pw.f = f
	pw.d = newDigester()
	pw.counting = &countingWriter{w: io.MultiWriter(f, pw.d)}
	w, err := ipc.NewFileWriter(pw.counting, ipc.WithSchema(schema), ipc.WithAllocator(pw.mem))
	if err != nil {
		pw.Abort()
		return fmt.Errorf("create %s: %w", pw.path, err)
	}
	pw.w = w
	return nil
}

// Write appends a batch. It does not take ownership of the batch.
func (pw *PortWriter) Write(batch arrow.RecordBatch) error {
	if pw.w == nil {
		if err := pw.open(batch.Schema()); err != nil {
			return err
		}
		if pw.journal {
			j, err := openJournal(JournalPath(pw.path), batch.Schema(), pw.mem, pw.carried)
			if err != nil {
				return err
			}
			pw.j = j
		}
	}
	if err := pw.w.Write(batch); err != nil {
		return fmt.Errorf("write %s: %w", pw.path, err)
	}
	if pw.j != nil {
		if err := pw.j.append(batch); err != nil {
			return fmt.Errorf("write %s: %w", pw.path, err)
		}
	}
	pw.rows += batch.NumRows()
	return nil
}

// Rows is the number of rows written so far.
func (pw *PortWriter) Rows() int64 { return pw.rows }

// Commit finishes the file, makes it read-only (its write bits cleared:
// committed files are never written again, and a cache hit in a later run
// shares the inode) and renames it into place. It returns the file's sha256; BLAKE3 returns
// the digest it is verified with. An empty port with no declared schema is
// written with an empty schema.
func (pw *PortWriter) Commit() (rows, size int64, sum string, err error) {
	if pw.w == nil {
		schema := pw.declared
		if schema == nil {
			schema = arrow.NewSchema(nil, nil)
		}
		if err := pw.open(schema); err != nil {
			return 0, 0, "", err
		}
	}
	cerr := pw.w.Close()
	pw.w = nil
	if cerr == nil {
		cerr = pw.f.Sync()
	}
	if cerr == nil {
		cerr = readOnly(pw.f)
	}
	if err := errors.Join(cerr, pw.f.Close()); err != nil {
		os.Remove(pw.f.Name())
		return 0, 0, "", fmt.Errorf("finish %s: %w", pw.path, err)
	}
	if err := os.Rename(pw.f.Name(), pw.path); err != nil {
		os.Remove(pw.f.Name())
		return 0, 0, "", fmt.Errorf("finish %s: %w", pw.path, err)
	}
	syncDir(filepath.Dir(pw.path))
	if pw.j != nil {
		// The journal stays until the file is recorded (RemoveJournal): a
		// crash before that resumes from it instead of starting over.
		_ = pw.j.close()
		pw.j = nil
	}
	sha, b3 := pw.d.sums()
	pw.b3 = b3
	return pw.rows, pw.counting.n.Load(), sha, nil
}

// BLAKE3 is the committed file's BLAKE3 (OutputFile.BLAKE3), once Commit
// succeeded.
func (pw *PortWriter) BLAKE3() string { return pw.b3 }

// Abort drops the temporary file and keeps the journal, from which a
// resumed run continues. Safe after Commit and safe to repeat.
func (pw *PortWriter) Abort() {
	if pw.j != nil {
		_ = pw.j.close()
		pw.j = nil
	}
	if pw.w != nil {
		_ = pw.w.Close()
		pw.w = nil
	}
	if pw.f != nil {
		pw.f.Close()
		os.Remove(pw.f.Name())
		pw.f = nil
	}
}

type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// readOnly clears f's write bits, keeping its read bits as they are (a
// temporary file is its owner's alone: 0400, not 0444, so that committing
// a file does not open it to other users).
func readOnly(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return f.Chmod(fi.Mode().Perm() &^ 0o222)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// FilesReader reads the batches of several Arrow IPC files with one schema
// as one stream (the rounds of a loop, for instance). It implements
// array.RecordReader; the batch from RecordBatch is valid until Next.
type FilesReader struct {
	refs   atomic.Int64
	paths  []string
	mem    memory.Allocator
	schema *arrow.Schema

	fileIdx  int
	f        *os.File
	r        *ipc.FileReader
	batchIdx int
	cur      arrow.RecordBatch
	err      error
}

var _ array.RecordReader = (*FilesReader)(nil)

// OpenFiles opens paths for reading. The schema is the first file's; every
// other file must have an equal schema.
//
// A path that a run's manifest records (RUN/stages/..., listed in
// RUN/manifest.json) is first checked against the manifest's digest of it,
// once per process while the file is unchanged: a file changed, cut short
// or removed since its run committed it is a *DamagedFileError naming the
// run, stage, port and file, and none of its batches is read.
func OpenFiles(paths []string, mem memory.Allocator) (*FilesReader, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	fr := &FilesReader{paths: paths, mem: mem, fileIdx: -1}
	fr.refs.Store(1)
	if len(paths) == 0 {
		fr.schema = arrow.NewSchema(nil, nil)
		return fr, nil
	}
	memo := map[string]map[string]fileRecord{}
	for _, p := range paths {
		if err := verifyCommitted(p, memo); err != nil {
			return nil, err
		}
		s, err := readSchema(p, mem)
		if err != nil {
			return nil, err
		}
		if fr.schema == nil {
			fr.schema = s
		} else if !fr.schema.Equal(s) {
			return nil, fmt.Errorf("%s: schema %s differs from %s in %s", p, s, fr.schema, paths[0])
		}
	}
	return fr, nil
}

func readSchema(path string, mem memory.Allocator) (*arrow.Schema, error) {
	f, r, err := openArrowFile(path, mem, true)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	defer r.Close()
	return r.Schema(), nil
}

// openArrowFile opens a committed Arrow IPC file, with verify after checking
// its footer and every message's metadata: a file damaged on disk would
// otherwise reach arrow-go's decoder, which can overflow its stack or
// allocate what a damaged length claims, and neither can be recovered from.
func openArrowFile(path string, mem memory.Allocator, verify bool) (_ *os.File, _ *ipc.FileReader, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read %s: damaged Arrow file: %v", path, p)
		}
		if err != nil {
			f.Close()
		}
	}()
	if verify {
		fi, err := f.Stat()
		if err != nil {
			return nil, nil, err
		}
		if err := ipcverify.VerifyFile(f, fi.Size()); err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
	r, err := ipc.NewFileReader(f, ipc.WithAllocator(mem))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, r, nil
}

// batchAt reads one batch and checks that its values read safely.
func batchAt(r *ipc.FileReader, i int) (b arrow.RecordBatch, err error) {
	defer func() {
		if p := recover(); p != nil {
			b, err = nil, fmt.Errorf("damaged Arrow batch %d: %v", i, p)
		}
	}()
	b, err = r.RecordBatchAt(i)
	if err != nil {
		return nil, err
	}
	if err := ipcverify.ValidateBatch(b); err != nil {
		b.Release()
		return nil, fmt.Errorf("batch %d: %w", i, err)
	}
	return b, nil
}

func (fr *FilesReader) Retain() { fr.refs.Add(1) }

func (fr *FilesReader) Release() {
	if fr.refs.Add(-1) == 0 {
		fr.closeFile()
		if fr.cur != nil {
			fr.cur.Release()
			fr.cur = nil
		}
	}
}

func (fr *FilesReader) Schema() *arrow.Schema { return fr.schema }

func (fr *FilesReader) closeFile() {
	if fr.r != nil {
		fr.r.Close()
		fr.r = nil
	}
	if fr.f != nil {
		fr.f.Close()
		fr.f = nil
	}
}

func (fr *FilesReader) Next() bool {
	if fr.cur != nil {
		fr.cur.Release()
		fr.cur = nil
	}
	if fr.err != nil {
		return false
	}
	for {
		if fr.r != nil && fr.batchIdx < fr.r.NumRecords() {
			b, err := batchAt(fr.r, fr.batchIdx)
			if err != nil {
				fr.err = fmt.Errorf("read %s: %w", fr.paths[fr.fileIdx], err)
				return false
			}
			fr.batchIdx++
			fr.cur = b
			return true
		}
		fr.closeFile()
		fr.fileIdx++
		if fr.fileIdx >= len(fr.paths) {
			return false
		}
		// OpenFiles verified every file, and committed files never change.
		f, r, err := openArrowFile(fr.paths[fr.fileIdx], fr.mem, false)
		if err != nil {
			fr.err = err
			return false
		}
		fr.f, fr.r, fr.batchIdx = f, r, 0
	}
}

func (fr *FilesReader) RecordBatch() arrow.RecordBatch { return fr.cur }

// Record is RecordBatch under its deprecated name, for array.RecordReader.
func (fr *FilesReader) Record() arrow.RecordBatch { return fr.cur }

func (fr *FilesReader) Err() error { return fr.err }
