//go:build unix

package stagerpc

import (
	"os"

	"golang.org/x/sys/unix"
)

// FilesSupported says whether this platform can map input files, and so
// whether a plugin offers FEATURE_INPUT_FILES.
const FilesSupported = true

func mapFile(f *os.File, size int64) ([]byte, error) {
	// Shared and read-only: the pages are the page cache's, which the
	// host's own reads of the file share too.
	return unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
}

func unmapFile(b []byte) error { return unix.Munmap(b) }
