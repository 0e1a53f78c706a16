package dataset

import "syscall"

// rusageThread asks getrusage for the calling thread alone.
const rusageThread = syscall.RUSAGE_THREAD
