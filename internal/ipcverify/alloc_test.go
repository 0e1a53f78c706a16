package ipcverify

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

// panicOf returns what f panics with, or nil.
func panicOf(f func()) (v any) {
	defer func() { v = recover() }()
	f()
	return nil
}

func TestCappedAllocator(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	a := NewCappedAllocator(mem, 100)

	b := a.Allocate(60)
	if v := panicOf(func() { a.Allocate(41) }); v == nil {
		t.Fatal("101 bytes held, and no panic")
	} else if le, ok := v.(*LimitError); !ok || le.Limit != 100 {
		t.Fatalf("panicked with %#v, want a *LimitError of 100", v)
	}
	// The refused bytes were not counted.
	c := a.Allocate(40)
	if v := panicOf(func() { b = a.Reallocate(61, b) }); v == nil {
		t.Fatal("grew to 101 bytes held, and no panic")
	}
	b = a.Reallocate(20, b) // shrinking always goes through
	c = a.Reallocate(80, c)
	a.Free(b)
	a.Free(c)
	if got := a.held.Load(); got != 0 {
		t.Errorf("%d bytes held after freeing all", got)
	}
}

// A concurrent allocation may push the count over the limit for a moment;
// a shrink or free meanwhile must not be refused.
func TestCappedAllocatorShrinksOverTheLimit(t *testing.T) {
	a := NewCappedAllocator(memory.NewGoAllocator(), 100)
	b := a.Allocate(50)
	a.held.Add(200) // another goroutine's allocation, before it backs out
	if v := panicOf(func() { b = a.Reallocate(10, b) }); v != nil {
		t.Errorf("a shrink panicked: %v", v)
	}
	if v := panicOf(func() { a.Free(b) }); v != nil {
		t.Errorf("a free panicked: %v", v)
	}
}

func TestCappedAllocatorConcurrent(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	a := NewCappedAllocator(mem, 1<<20)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				b := a.Allocate(1 << 10)
				b = a.Reallocate(4<<10, b)
				a.Free(b)
			}
		})
	}
	wg.Wait()
	if got := a.held.Load(); got != 0 {
		t.Errorf("%d bytes held after freeing all", got)
	}
}

func TestLimitErrorText(t *testing.T) {
	for limit, want := range map[int64]string{
		512:       "more than 512 bytes at once",
		256 << 20: "more than 256 MiB at once",
	} {
		if got := (&LimitError{Limit: limit}).Error(); !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
}

// A stream whose batches need more than the cap is refused by a panic its
// reader's caller recovers; under a cap it fits, it reads, and gives back
// all it held.
func TestCappedAllocatorBoundsAReader(t *testing.T) {
	src := memory.NewGoAllocator()
	recs := arrowBatches(t, src)
	defer release(recs)
	data := writeStream(t, recs)
	read := func(a *CappedAllocator) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = v.(error)
			}
		}()
		r, err := NewStreamReader(bytes.NewReader(data), int64(len(data)), a)
		if err != nil {
			return err
		}
		defer r.Release()
		for r.Next() {
		}
		return r.Err()
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	small := NewCappedAllocator(mem, 256)
	// arrow-go recovers some panics itself, keeping only their text.
	if err := read(small); err == nil || !strings.Contains(err.Error(), (&LimitError{Limit: 256}).Error()) {
		t.Errorf("under a 256-byte cap: %v, want a *LimitError", err)
	}
	big := NewCappedAllocator(mem, 1<<20)
	if err := read(big); err != nil {
		t.Fatal(err)
	}
	if got := big.held.Load(); got != 0 {
		t.Errorf("%d bytes held after the reader was released", got)
	}
}
