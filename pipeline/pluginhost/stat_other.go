//go:build !linux

package pluginhost

import (
	"os"
	"syscall"
)

// fileID is not memoized off Linux: every check reads the file.
type fileID struct{}

func idOf(os.FileInfo) (fileID, bool) { return fileID{}, false }

func ownerOf(fi os.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
