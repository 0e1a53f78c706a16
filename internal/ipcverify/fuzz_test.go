package ipcverify

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// FuzzReaders reads arbitrary bytes as an Arrow IPC file or stream the
// way the plugins do. The checks themselves must never panic; what they
// let through may make arrow-go fail, even by panicking, but never by
// exhausting memory or the stack, which would kill the fuzzer's worker.
// A read that succeeds gives back every byte it held. The seeds in
// testdata/fuzz/FuzzReaders/dataset-* are inputs that killed the dataset
// plugin before the checks existed.
func FuzzReaders(f *testing.F) {
	recs := arrowBatches(f, memory.NewGoAllocator())
	f.Add(writeStream(f, recs), false)
	f.Add(writeFile(f, recs), true)
	release(recs)
	batch := [][2][]byte{{intBatchMessage(2), intBody(4, 5)}}
	f.Add(ipcFile(intSchemaMessage(), batch, nil), true)
	for _, d := range damagedMessages(f) {
		f.Add(stream(frame(intSchemaMessage(), nil), frame(d.meta, nil)), false)
		f.Add(stream(frame(d.meta, nil)), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, asFile bool) {
		size := int64(len(data))
		if asFile {
			_ = VerifyFile(bytes.NewReader(data), size)
		} else {
			_, _ = io.Copy(io.Discard, &verifiedStream{r: bytes.NewReader(data), maxMeta: max(min(size, MaxMetadataBytes), 1), maxBody: size})
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		if err := readAll(data, asFile, NewCappedAllocator(mem, 64<<20)); err == nil {
			mem.AssertSize(t, 0)
		}
	})
}

// readAll reads every batch, as the plugins do: under recover.
func readAll(data []byte, asFile bool, mem memory.Allocator) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	if asFile {
		r, err := NewFileReader(bytes.NewReader(data), mem)
		if err != nil {
			return err
		}
		defer r.Close()
		for i := range r.NumRecords() {
			if _, err := r.RecordBatch(i); err != nil {
				return err
			}
		}
		return nil
	}
	r, err := NewStreamReader(bytes.NewReader(data), int64(len(data)), mem)
	if err != nil {
		return err
	}
	defer r.Release()
	for r.Next() {
	}
	return r.Err()
}
