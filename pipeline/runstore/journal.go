package runstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
)

// JournalPath is where the batches of an output port are journalled while
// its stage runs: an Arrow IPC stream beside the port's file.
func JournalPath(portFile string) string {
	return strings.TrimSuffix(portFile, ".arrow") + ".journal.arrows"
}

// journal appends batches to an Arrow IPC stream file and syncs after each
// one, so every batch written before a crash (even kill -9) can be read back.
//
// A journal left by an interrupted attempt holds rows that the resumed
// stage is handed back and writes again before anything new (carried
// rows). The new journal is written under a temporary name and takes the
// old one's place only once it holds as many rows, so a crash at any
// moment leaves one journal with every row journalled so far.
type journal struct {
	path    string // JournalPath of the port
	f       *os.File
	w       *ipc.Writer
	rows    int64
	carried int64
	inPlace bool
}

func openJournal(path string, schema *arrow.Schema, mem memory.Allocator, carried int64) (*journal, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{path: path, f: f, carried: carried, w: ipc.NewWriter(f, ipc.WithSchema(schema), ipc.WithAllocator(mem))}, nil
}

func (j *journal) append(batch arrow.RecordBatch) error {
	if err := j.w.Write(batch); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	j.rows += batch.NumRows()
	if !j.inPlace && j.rows >= j.carried {
		if err := os.Rename(j.f.Name(), j.path); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		syncDir(filepath.Dir(j.path))
		j.inPlace = true
	}
	return nil
}

// close ends the stream. A journal that never took its place is removed:
// the one it was to replace holds every row it has.
func (j *journal) close() error {
	err := errors.Join(j.w.Close(), j.f.Close())
	if !j.inPlace {
		err = errors.Join(err, os.Remove(j.f.Name()))
	}
	return err
}

// RemoveJournal deletes the journal of the port file at portFile, once a
// record of the file (the run's manifest) makes it useless: until then a
// resumed run needs it. No journal is not an error.
func RemoveJournal(portFile string) error {
	err := os.Remove(JournalPath(portFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// ReadJournal returns the batches journalled at path, up to the last one
// that was written whole; a batch torn by a crash, and anything after a
// damaged message, is dropped. Each message is checked before arrow-go
// decodes it (ipcverify), so a damaged journal cannot crash the host. A
// missing journal is no batches. The caller releases the batches.
func ReadJournal(path string, mem memory.Allocator) (schema *arrow.Schema, batches []arrow.RecordBatch, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	r, err := ipcverify.NewStreamReader(f, fi.Size(), mem)
	if err != nil {
		// Not even the schema made it to disk whole: nothing to resume from.
		return nil, nil, nil
	}
	defer r.Release()
	defer func() {
		// ipcverify leaves batch bodies to arrow-go, which may panic on a
		// damaged one; the batches before it are good.
		_ = recover()
	}()
	schema = r.Schema()
	for r.Next() {
		b := r.RecordBatch()
		if ipcverify.ValidateBatch(b) != nil {
			// A damaged batch ends what can be trusted, as a torn tail does.
			break
		}
		b.Retain()
		batches = append(batches, b)
	}
	return schema, batches, nil
}
