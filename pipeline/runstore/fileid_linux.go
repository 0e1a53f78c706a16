package runstore

import (
	"os"
	"syscall"
	"time"
)

// fileID identifies a file's content as the kernel knows it: the same
// inode, size and modification and change times. The change time is set
// by the kernel on every write, chmod, link and rename, and a user cannot
// set it back.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func idOf(fi os.FileInfo) (fileID, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}, false
	}
	return fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, true
}

// changed is when the file last changed (its change time).
func (id fileID) changed() time.Time { return time.Unix(id.ctime.Unix()) }
