package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sampleEvery is how often a running stage's memory and stdout are looked
// at. A plugin leaking at 1 GB/s overshoots its memory_limit by about 50 MB
// before it is killed.
const sampleEvery = 50 * time.Millisecond

// RunOption tunes one Run.
type RunOption func(*runOptions)

type runOptions struct {
	memoryLimit int64
}

// WithMemoryLimit kills the plugin process when it and its children hold
// more than bytes of resident memory together (0: no limit); the run then
// fails with a *MemoryLimitError.
func WithMemoryLimit(bytes int64) RunOption {
	return func(o *runOptions) { o.memoryLimit = bytes }
}

// MemoryLimitError is a stage whose plugin went over its memory_limit.
type MemoryLimitError struct {
	Stage, Plugin string
	Pid           int
	Used, Limit   int64 // bytes
}

func (e *MemoryLimitError) Error() string {
	used, limit := mib(e.Used), mib(e.Limit)
	if used == limit {
		// Rounding must not make "over" read as "equal".
		used, limit = fmt.Sprintf("%.1f", float64(e.Used)/(1<<20)), fmt.Sprintf("%.1f", float64(e.Limit)/(1<<20))
	}
	return fmt.Sprintf("stage %s used %s MiB, over its memory_limit of %s MiB; the plugin process %s (pid %d) and its children were killed",
		e.Stage, used, limit, e.Plugin, e.Pid)
}

func mib(n int64) string { return strconv.FormatInt((n+(1<<20)-1)>>20, 10) }

// StdoutError is a plugin that wrote to its stdout, which carries the
// go-plugin protocol: whatever it meant to say went nowhere, and a plugin
// that does so may corrupt the handshake of the next one built the same way.
type StdoutError struct {
	Stage, Plugin string
	Pid           int
	Bytes         int64
	Head          string // the first bytes written
}

func (e *StdoutError) Error() string {
	return fmt.Sprintf("stage %s: the plugin %s wrote %d byte(s) to stdout, which belongs to the plugin protocol (a plugin logs to stderr): %q; the plugin process (pid %d) was stopped",
		e.Stage, e.Plugin, e.Bytes, e.Head, e.Pid)
}

// stdoutWatch receives what the plugin writes to its stdout after the
// handshake (go-plugin forwards it).
type stdoutWatch struct {
	mu   sync.Mutex
	n    int64 // since mark
	head []byte
}

const stdoutHead = 120

func (w *stdoutWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n += int64(len(p))
	if room := stdoutHead - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// mark forgets what was written so far: a run answers for its own output.
func (w *stdoutWatch) mark() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n, w.head = 0, nil
}

// written reports what was written since mark.
func (w *stdoutWatch) written() (n int64, head string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, string(bytes.TrimRight(w.head, "\n"))
}

// runWatch follows the plugin process during one Run: its memory (for the
// limit and the peak) and its stdout.
type runWatch struct {
	c      *Client
	stage  string
	limit  int64
	cancel context.CancelCauseFunc

	done chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	peak  int64
	fault error
}

func (c *Client) watch(stage string, limit int64, cancel context.CancelCauseFunc) *runWatch {
	c.stdout.mark()
	w := &runWatch{c: c, stage: stage, limit: limit, cancel: cancel, done: make(chan struct{})}
	if c.pid <= 0 {
		return w
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			if w.check() {
				return
			}
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// check samples once; it returns true once it has stopped the run.
func (w *runWatch) check() bool {
	c := w.c
	pids := processTree(c.pid)
	var rss int64
	for _, p := range pids {
		rss += residentBytes(p)
	}
	w.mu.Lock()
	w.peak = max(w.peak, rss)
	w.mu.Unlock()
	var fault error
	if w.limit > 0 && rss > w.limit {
		fault = &MemoryLimitError{Stage: w.stage, Plugin: c.name, Pid: c.pid, Used: rss, Limit: w.limit}
		// At once and by force: a process that is growing this fast does
		// not get the seconds a graceful stop takes. Children first, so
		// none is left behind re-parented.
		for i := len(pids) - 1; i >= 0; i-- {
			_ = syscall.Kill(pids[i], syscall.SIGKILL)
		}
	} else if n, head := c.stdout.written(); n > 0 {
		fault = &StdoutError{Stage: w.stage, Plugin: c.name, Pid: c.pid, Bytes: n, Head: head}
	}
	if fault == nil {
		return false
	}
	w.mu.Lock()
	w.fault = fault
	w.mu.Unlock()
	w.cancel(fault)
	return true
}

// stop ends the watch and returns the run's peak resident memory and the
// fault that stopped it, if any. A plugin that wrote to stdout just before
// its run ended is caught here.
func (w *runWatch) stop() (peak int64, fault error) {
	close(w.done)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fault == nil {
		if n, head := w.c.stdout.written(); n > 0 {
			w.fault = &StdoutError{Stage: w.stage, Plugin: w.c.name, Pid: w.c.pid, Bytes: n, Head: head}
		}
	}
	// The kernel's high-water mark sees the peaks between samples; the
	// samples see the children.
	return max(w.peak, statusBytes(w.c.pid, "VmHWM:")), w.fault
}

// processTree lists pid and its descendants, parents before children.
func processTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out) && len(out) < 4096; i++ {
		out = append(out, children(out[i])...)
	}
	return out
}

// children lists a process's children, from each of its threads.
func children(pid int) []int {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

var pageSize = int64(os.Getpagesize())

// residentBytes is a process's resident memory now (0 when it is gone).
func residentBytes(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * pageSize
}

// statusBytes reads a "kB" field of /proc/PID/status (0 when unknown).
func statusBytes(pid int, field string) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	return 0
}
