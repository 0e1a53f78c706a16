package ipcverify

import (
	"fmt"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// CappedAllocator refuses, by panicking with a *LimitError, to hold more
// than a set number of bytes at once. Arrow and Parquet readers size
// buffers by lengths written in the file, so a damaged length asks for
// terabytes, which Go cannot refuse gracefully (it dies of "out of
// memory"); through this allocator the request becomes a panic the
// reader's caller recovers. It is safe for concurrent use.
type CappedAllocator struct {
	mem   memory.Allocator
	limit int64
	held  atomic.Int64
}

var _ memory.Allocator = (*CappedAllocator)(nil)

// NewCappedAllocator returns an allocator that serves from mem (nil:
// memory.DefaultAllocator) while it holds at most limit bytes.
func NewCappedAllocator(mem memory.Allocator, limit int64) *CappedAllocator {
	return &CappedAllocator{mem: orDefault(mem), limit: limit}
}

// LimitError is the panic value of a CappedAllocator asked for more than
// its limit. arrow-go recovers some panics itself (while it reads a
// stream's message, say) and returns an error with their text alone, so a
// caller may meet this as a panic or as words in an error.
type LimitError struct {
	Limit int64 // bytes
}

func (e *LimitError) Error() string {
	held := fmt.Sprintf("%d MiB", e.Limit>>20)
	if e.Limit < 1<<20 {
		held = fmt.Sprintf("%d bytes", e.Limit)
	}
	return "reading it would hold more than " + held + " at once: the file is damaged, or holds batches or row groups too large to read"
}

// take counts n more bytes held. Only growth is refused: a shrink or a
// free must always go through, even while a concurrent allocation has
// briefly pushed the count over the limit.
func (a *CappedAllocator) take(n int64) {
	if a.held.Add(n) > a.limit && n > 0 {
		a.held.Add(-n)
		panic(&LimitError{Limit: a.limit})
	}
}

// Allocate implements memory.Allocator.
func (a *CappedAllocator) Allocate(size int) []byte {
	a.take(int64(size))
	return a.mem.Allocate(size)
}

// Reallocate implements memory.Allocator.
func (a *CappedAllocator) Reallocate(size int, b []byte) []byte {
	a.take(int64(size - len(b)))
	return a.mem.Reallocate(size, b)
}

// Free implements memory.Allocator.
func (a *CappedAllocator) Free(b []byte) {
	a.held.Add(-int64(len(b)))
	a.mem.Free(b)
}
