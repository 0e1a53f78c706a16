package stagerpc

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
)

// PeerAuthSupported says whether a Unix socket here reports the process at
// its other end, so that a host and its plugins can do without TLS.
const PeerAuthSupported = true

// peerCred is the process id and effective user id of the process at the
// other end of a Unix socket: the one that connected, or the one that
// listened, as the kernel recorded them then.
func peerCred(conn net.Conn) (pid, uid int, err error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, 0, errors.New("not a Unix socket")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if cerr != nil {
		return 0, 0, cerr
	}
	return int(cred.Pid), int(cred.Uid), nil
}

// maxDepth bounds the walk up the process tree: a wrapper script and the
// plugin it starts are a few levels, not dozens.
const maxDepth = 8

// descendsFrom reports whether process pid was started, directly or
// further down, by process ancestor.
func descendsFrom(pid, ancestor int) bool {
	for range maxDepth {
		ppid, ok := parentOf(pid)
		if !ok || ppid <= 1 {
			return false
		}
		if ppid == ancestor {
			return true
		}
		pid = ppid
	}
	return false
}

// parentOf reads a process's parent from /proc/PID/stat, whose fourth field
// follows the command name in parentheses (which may hold anything).
func parentOf(pid int) (int, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(string(f[1]))
	return ppid, err == nil
}
