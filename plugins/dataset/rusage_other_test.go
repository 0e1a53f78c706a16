//go:build !linux

package dataset

import "syscall"

// rusageThread falls back to the whole process where no thread's own
// usage is kept; the benchmark then counts the runtime's threads too.
const rusageThread = syscall.RUSAGE_SELF
