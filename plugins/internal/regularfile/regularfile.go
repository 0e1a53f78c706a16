// Package regularfile opens the files stages read as data (datasets,
// tables of runs, models or results) without trusting the path to name a
// regular file: a named pipe can block its reader forever, a device such
// as /dev/zero never ends, and a path checked before it is opened may
// name something else by the time it is. A file is refused before a byte
// of it is read unless it is a regular file, or the caller allows other
// kinds (and then bounds what it reads itself).
package regularfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// Kind names what a file of mode m is when it is not a regular file, in
// words that say why it is refused; "" for a regular file.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return ""
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO), which may block until something writes to it and never end"
	case m&fs.ModeCharDevice != 0:
		return "a character device, which may never end"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a regular file"
}

// NotRegularError refuses a file that is not a regular file.
type NotRegularError struct {
	Path string
	Kind string // what Kind says
}

func (e *NotRegularError) Error() string {
	if e.Kind == "a directory" {
		return e.Path + " is a directory; name a file"
	}
	return fmt.Sprintf("%s is %s; only regular files are read", e.Path, e.Kind)
}

// ErrNotRegular matches every *NotRegularError with errors.Is.
var ErrNotRegular = errors.New("not a regular file")

func (e *NotRegularError) Is(target error) bool { return target == ErrNotRegular }

// Open opens path for reading. Unless allowSpecial, anything but a
// regular file is refused with a *NotRegularError, and opening never
// waits: a pipe is opened without waiting for a writer and refused once
// open. A directory is refused even when allowSpecial. The check is made
// on the open file, so the file read is the file checked.
func Open(path string, allowSpecial bool) (*os.File, error) {
	flag := os.O_RDONLY
	if !allowSpecial {
		flag |= syscall.O_NONBLOCK
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		// A socket cannot be opened at all ("no such device or address"):
		// say what the path names instead.
		if fi, serr := os.Stat(path); serr == nil && Kind(fi.Mode()) != "" {
			return nil, &NotRegularError{Path: path, Kind: Kind(fi.Mode())}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if kind := Kind(fi.Mode()); kind != "" && (!allowSpecial || fi.IsDir()) {
		f.Close()
		return nil, &NotRegularError{Path: path, Kind: kind}
	}
	// O_NONBLOCK stays set on a regular file, where Linux ignores it:
	// reads of a regular file never wait.
	return f, nil
}
