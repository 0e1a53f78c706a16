//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package runstore

import (
	"os"
	"syscall"
)

// flock takes an exclusive flock on f without waiting; EWOULDBLOCK when
// another open file description holds it.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}
