package dataset

import (
	"syscall"
	"unsafe"
)

// madvPopulateWrite is madvise(2)'s MADV_POPULATE_WRITE (Linux 5.14),
// which the syscall package does not name.
const madvPopulateWrite = 23

// populate makes the pages of s resident in one call, ahead of the parser
// that writes them: cheaper than a fault per page. The columns are not
// also advised to huge pages: once they are populated in one call, huge
// pages cost more than they save (BenchmarkCSVIngest, four runs each on
// the 2-core machine: 303 to 325 MB per CPU second without the advice,
// 252 to 290 with it, and a peak resident memory of 1.24 times the kept
// columns against 1.43).
func populate[T any](s []T) { advise(s, madvPopulateWrite) }

// advise gives the kernel advice on the whole pages within s. Advice only:
// a kernel without it says no, and nothing changes.
func advise[T any](s []T, advice int) {
	var zero T
	n := uintptr(len(s)) * unsafe.Sizeof(zero)
	if n < 64<<10 {
		return
	}
	base := unsafe.Pointer(unsafe.SliceData(s))
	const page = 4096
	skip := (page - uintptr(base)%page) % page
	if n <= skip+page {
		return
	}
	length := (n - skip) &^ (page - 1)
	_ = syscall.Madvise(unsafe.Slice((*byte)(unsafe.Add(base, skip)), length), advice)
}
