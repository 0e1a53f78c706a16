//go:build unix && !linux

package exec

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
