package runstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// LockFile is the file in a run directory that the process running the
// run (a first attempt or a --resume) holds an exclusive flock on, and in
// which it writes who it is.
const LockFile = "lock"

// LockHolder is what the holder of a run's lock writes in its lock file.
type LockHolder struct {
	Pid int `json:"pid"`
	// Since is when the holder took the lock: when its attempt started.
	Since time.Time `json:"since"`
	// Started is when the holding process started, to tell it from a
	// later process with the same pid; zero where unknown.
	Started time.Time `json:"process_started,omitzero"`
	Host    string    `json:"host,omitempty"`
}

// LockedError is a run whose lock another process holds: it is being run
// or resumed there, and nothing else may write to it.
type LockedError struct {
	Run    string
	Holder LockHolder // zero when the holder wrote nothing readable yet
}

func (e *LockedError) Error() string {
	h := e.Holder
	if h.Pid == 0 {
		return fmt.Sprintf("run %s is in use by another process (its lock file %s is held): wait for it to end, or stop it, and try again", e.Run, LockFile)
	}
	who := fmt.Sprintf("process %d", h.Pid)
	if h.Host != "" {
		who += " on " + h.Host
	}
	var when []string
	if !h.Started.IsZero() {
		when = append(when, "started "+h.Started.Local().Format("2006-01-02 15:04:05"))
	}
	when = append(when, "holding it since "+h.Since.Local().Format("2006-01-02 15:04:05"))
	return fmt.Sprintf("run %s is in use by %s (%s): wait for it to end, or stop it, and try again", e.Run, who, strings.Join(when, ", "))
}

// Locked reports whether this Run holds the run's lock.
func (r *Run) Locked() bool {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	return r.lock != nil
}

// Lock takes the run's exclusive lock (an flock on RUN/lock) without
// waiting, and writes this process's pid and start time in the lock file.
// While another process holds it, Lock fails at once with a *LockedError
// that says who. The kernel releases the lock when the holder exits, even
// by kill -9, so a crashed run never stays locked. Taking a lock this Run
// already holds does nothing.
func (r *Run) Lock() error {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	if r.lock != nil {
		return nil
	}
	path := filepath.Join(r.Dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock run %s: %w", r.ID(), err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return &LockedError{Run: r.ID(), Holder: readHolder(path)}
		}
		return fmt.Errorf("lock run %s: %w", r.ID(), err)
	}
	host, _ := os.Hostname()
	h := LockHolder{Pid: os.Getpid(), Since: time.Now().UTC(), Started: processStarted, Host: host}
	data, _ := json.Marshal(h)
	data = append(data, '\n')
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(data, 0)
		_ = f.Sync()
	}
	r.lock = f
	return nil
}

// Unlock releases the run's lock if this Run holds it.
func (r *Run) Unlock() {
	r.lockMu.Lock()
	defer r.lockMu.Unlock()
	if r.lock == nil {
		return
	}
	// Emptied first, so that nobody reads a released lock's holder.
	_ = r.lock.Truncate(0)
	_ = r.lock.Close() // closing the last descriptor releases the flock
	r.lock = nil
}

// readHolder reads who holds the lock at path. The holder writes it just
// after taking the lock, so a reader that comes in between waits a little.
func readHolder(path string) LockHolder {
	var h LockHolder
	for range 20 {
		data, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(data, &h) == nil && h.Pid != 0 {
			return h
		}
		time.Sleep(10 * time.Millisecond)
	}
	return LockHolder{}
}

// processStarted is when this process started, near enough: when the
// package was initialised.
var processStarted = time.Now().UTC()
