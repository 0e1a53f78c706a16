package stagerpc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// FileReader reads one input port from the Arrow IPC files the host named
// (RunStart.input_files), mapped read-only into memory: the batches it
// gives point into the mapping, so no byte of their bodies is copied, and
// the host sends nothing but the paths. The files are committed ones,
// which nobody changes.
//
// A file is checked before arrow-go reads it, as a streamed message is:
// its size against the one the host recorded, its footer and every
// message's metadata (ipcverify.VerifyFile), and each batch it gives
// (ipcverify.ValidateBatch), with arrow-go's decoding under recover and
// what it allocates capped at the file's size. A damaged file ends the
// port's stream with a *DamagedError.
//
// The mappings live until the reader's last Release. A batch it gave,
// even one the stage retained, must not be read after that: the memory
// behind it is gone. The sdk releases a stage's input readers when the
// stage's Run returns. A file cut short while mapped (which a committed
// file never is) faults where it is read past its end; the sdk runs each
// stage with debug.SetPanicOnFault, so that in the stage's goroutine the
// fault is a panic it recovers rather than the death of the process.
type FileReader struct {
	port  string
	refs  atomic.Int64
	files []*mappedFile
	mem   memory.Allocator

	schema *arrow.Schema
	file   int // index of the file being read
	batch  int // index of the next batch in it
	cur    arrow.RecordBatch
	err    error
}

type mappedFile struct {
	path string
	data []byte
	r    *ipc.FileReader
}

// liveMappings counts the files mapped by FileReaders not yet released.
var liveMappings atomic.Int64

// LiveMappings is the number of input files currently mapped by
// FileReaders; tests use it to prove every mapping is released.
func LiveMappings() int64 { return liveMappings.Load() }

// ErrFilesUnsupported is returned by OpenFiles where files cannot be
// mapped; a plugin there does not offer FEATURE_INPUT_FILES.
var ErrFilesUnsupported = errors.New("reading input ports from files is not supported on this platform")

// OpenFiles maps and checks the files of an input port, in order, as one
// stream. Every file must hold the first one's schema. No file yields an
// empty stream without columns. mem serves what arrow-go allocates
// (dictionaries); the batches' buffers are the mapping's.
func OpenFiles(port string, files []*stagepb.InputFile, mem memory.Allocator) (_ *FileReader, err error) {
	if !FilesSupported {
		return nil, ErrFilesUnsupported
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	r := &FileReader{port: port, mem: mem}
	r.refs.Store(1)
	defer func() {
		if err != nil {
			r.unmap()
		}
	}()
	for _, f := range files {
		mf, err := r.open(f)
		if err != nil {
			return nil, err
		}
		r.files = append(r.files, mf)
		s := mf.r.Schema()
		switch {
		case r.schema == nil:
			r.schema = s
		case !r.schema.Equal(s):
			return nil, fmt.Errorf("input file %s: schema %s differs from %s in %s", mf.path, s, r.schema, r.files[0].path)
		}
	}
	if r.schema == nil {
		r.schema = arrow.NewSchema(nil, nil)
	}
	return r, nil
}

func (r *FileReader) open(f *stagepb.InputFile) (_ *mappedFile, err error) {
	path := f.GetPath()
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening input file: %w", err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening input file: %w", err)
	}
	size := fi.Size()
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("input file %s is not a regular file", path)
	case f.GetSize() > 0 && size != f.GetSize():
		return nil, &DamagedError{Port: r.port, Err: fmt.Errorf("input file %s holds %d bytes, but its producer committed %d: the file was cut short or changed", path, size, f.GetSize())}
	case size == 0:
		return nil, &DamagedError{Port: r.port, Err: fmt.Errorf("input file %s is empty, not an Arrow IPC file", path)}
	}
	data, err := mapFile(fh, size)
	if err != nil {
		return nil, fmt.Errorf("mapping input file %s: %w", path, err)
	}
	liveMappings.Add(1)
	mf := &mappedFile{path: path, data: data}
	defer func() {
		if err != nil {
			mf.unmap()
		}
	}()
	if err := ipcverify.VerifyFile(bytes.NewReader(data), size); err != nil {
		return nil, &DamagedError{Port: r.port, Err: fmt.Errorf("input file %s: %w", path, err)}
	}
	defer func() {
		if p := recover(); p != nil {
			err = &DamagedError{Port: r.port, Err: fmt.Errorf("input file %s: decoding the Arrow schema: %v", path, p)}
		}
	}()
	// Nothing of an uncompressed file is allocated but dictionaries, which
	// the file holds: a claim of more is damage.
	fr, err := ipc.NewMappedFileReader(data, ipc.WithAllocator(ipcverify.NewCappedAllocator(r.mem, size)))
	if err != nil {
		return nil, &DamagedError{Port: r.port, Err: fmt.Errorf("input file %s: %w", path, err)}
	}
	mf.r = fr
	return mf, nil
}

func (mf *mappedFile) unmap() {
	if mf.r != nil {
		_ = mf.r.Close()
		mf.r = nil
	}
	if mf.data != nil {
		// An unmap fails only on a bad address, which this one is not.
		_ = unmapFile(mf.data)
		mf.data = nil
		liveMappings.Add(-1)
	}
}

func (r *FileReader) unmap() {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for _, mf := range r.files {
		mf.unmap()
	}
	r.files = nil
}

// Retain implements array.RecordReader.
func (r *FileReader) Retain() { r.refs.Add(1) }

// Release implements array.RecordReader; the last one unmaps the files.
func (r *FileReader) Release() {
	if r.refs.Add(-1) == 0 {
		r.unmap()
	}
}

// Schema implements array.RecordReader.
func (r *FileReader) Schema() *arrow.Schema { return r.schema }

// Next moves to the next batch. The batch before it is released.
func (r *FileReader) Next() (ok bool) {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil {
		return false
	}
	defer func() {
		if p := recover(); p != nil {
			r.err, ok = r.damaged(fmt.Errorf("decoding an Arrow batch: %v", p)), false
		}
	}()
	for r.file < len(r.files) {
		mf := r.files[r.file]
		if r.batch >= mf.r.NumRecords() {
			r.file, r.batch = r.file+1, 0
			continue
		}
		b, err := mf.r.RecordBatchAt(r.batch)
		r.batch++
		if err != nil {
			r.err = r.damaged(err)
			return false
		}
		if err := ipcverify.ValidateBatch(b); err != nil {
			b.Release()
			r.err = r.damaged(fmt.Errorf("damaged Arrow batch: %w", err))
			return false
		}
		r.cur = b
		return true
	}
	return false
}

func (r *FileReader) damaged(err error) error {
	path := ""
	if r.file < len(r.files) {
		path = r.files[r.file].path
	}
	return &DamagedError{Port: r.port, Err: fmt.Errorf("input file %s: %w", path, err)}
}

// RecordBatch is the current batch, valid until the next call to Next.
func (r *FileReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch under its deprecated name, for array.RecordReader.
func (r *FileReader) Record() arrow.RecordBatch { return r.cur }

// Err is the error that ended the stream, if any.
func (r *FileReader) Err() error { return r.err }
