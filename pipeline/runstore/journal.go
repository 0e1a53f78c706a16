package runstore

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// JournalPath is where the batches of an output port are journalled while
// its stage runs: an Arrow IPC stream beside the port's file.
func JournalPath(portFile string) string {
	return strings.TrimSuffix(portFile, ".arrow") + ".journal.arrows"
}

// journal appends batches to an Arrow IPC stream file and syncs after each
// one, so every batch written before a crash (even kill -9) can be read back.
type journal struct {
	f *os.File
	w *ipc.Writer
}

func openJournal(path string, schema *arrow.Schema, mem memory.Allocator) (*journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return &journal{f: f, w: ipc.NewWriter(f, ipc.WithSchema(schema), ipc.WithAllocator(mem))}, nil
}

func (j *journal) append(batch arrow.RecordBatch) error {
	if err := j.w.Write(batch); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// close ends the stream; remove deletes the file too (the port's file now
// holds everything).
func (j *journal) close(remove bool) error {
	err := errors.Join(j.w.Close(), j.f.Close())
	if remove {
		err = errors.Join(err, os.Remove(j.f.Name()))
	}
	return err
}

// ReadJournal returns the batches journalled at path, up to the last one
// that was written whole; a batch torn by a crash is dropped. A missing
// journal is no batches. The caller releases the batches.
func ReadJournal(path string, mem memory.Allocator) (*arrow.Schema, []arrow.RecordBatch, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r, err := ipc.NewReader(f, ipc.WithAllocator(mem))
	if err != nil {
		// Not even the schema made it to disk: nothing to resume from.
		return nil, nil, nil
	}
	defer r.Release()
	var batches []arrow.RecordBatch
	for r.Next() {
		b := r.RecordBatch()
		b.Retain()
		batches = append(batches, b)
	}
	return r.Schema(), batches, nil
}
