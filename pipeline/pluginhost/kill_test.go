package pluginhost

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// A frozen plugin (stopped, or stuck in the kernel) never answers the
// request to stop. Kill must not wait for it forever, and Abort (a second
// Ctrl-C) not at all.
func TestKillAndAbortDoNotWaitForAFrozenPlugin(t *testing.T) {
	h, _ := newHost(t)
	freeze := func(c *Client) {
		t.Helper()
		if err := syscall.Kill(c.Pid(), syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = syscall.Kill(c.Pid(), syscall.SIGKILL) })
	}

	frozen := start(t, h, "test")
	freeze(frozen)
	killed := make(chan struct{})
	go func() {
		frozen.Kill()
		close(killed)
	}()
	select {
	case <-killed:
	case <-time.After(killGrace + 30*time.Second):
		t.Fatal("Kill of a frozen plugin never returned")
	}
	waitGone(t, frozen.Pid())

	running, stopped := start(t, h, "test"), start(t, h, "test")
	freeze(stopped)
	h.Abort()
	waitGone(t, running.Pid())
	waitGone(t, stopped.Pid())
	if _, err := h.Start(context.Background(), "test"); err == nil {
		t.Error("Start after Abort succeeded")
	}
}
