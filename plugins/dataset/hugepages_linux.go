package dataset

import (
	"syscall"
	"unsafe"
)

// Advice values of madvise(2) that the syscall package does not name.
const (
	madvHugePage      = 14
	madvPopulateWrite = 23 // Linux 5.14
)

// adviseHugePages asks the kernel to back a large reserved column with
// huge pages: the parsers write every page of it once, and on virtual
// machines a fault per 4 KiB page costs more than the parsing.
func adviseHugePages[T any](s []T) { advise(s[:cap(s)], madvHugePage) }

// populate makes the pages of s resident in one call, ahead of the parser
// that writes them: cheaper than a fault per page.
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
