//go:build !unix

package exec

import (
	"os"
	osexec "os/exec"
)

// Without process groups, only the command itself is killed.
func setProcessGroup(*osexec.Cmd) {}

func killProcessGroup(p *os.Process) { _ = p.Kill() }

func peakRSS(*os.ProcessState) int64 { return -1 }
