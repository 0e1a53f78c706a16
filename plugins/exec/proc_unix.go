//go:build unix

package exec

import (
	"os"
	osexec "os/exec"
	"runtime"
	"syscall"
)

// setProcessGroup starts the command as the leader of a new process group,
// so that killing the group reaches every process it starts that stays in
// the group (trialProcesses finds the others).
func setProcessGroup(cmd *osexec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
}

// killProcessGroup kills the command's process group. The group outlives
// its leader while any member lives, so this also reaches what an exited
// command left behind; a group already gone is no error.
func killProcessGroup(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}

// peakRSS is the command's peak resident set size in bytes (its largest
// process), or -1 when the system does not say.
func peakRSS(ps *os.ProcessState) int64 {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil || ru.Maxrss <= 0 {
		return -1
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) // bytes there
	}
	return int64(ru.Maxrss) * 1024 // KiB elsewhere
}
