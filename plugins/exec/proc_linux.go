package exec

import "syscall"

// setDeathSignal has the kernel kill the command if the plugin dies
// before it could: the command runs in its own process group, out of reach
// of the terminal's interrupt.
func setDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
