package pluginhost

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// A run records the plugin's peak resident memory; a run over its memory
// limit is killed, with its children, and says by how much.
func TestMemoryLimitAndPeakRSS(t *testing.T) {
	h, _ := newHost(t)
	c := start(t, h, "test")
	if _, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.e", Config: emitConfig(10, 10),
		Outputs: map[string]func(arrow.RecordBatch) error{"table": func(arrow.RecordBatch) error { return nil }},
	}, WithMemoryLimit(1<<30)); err != nil {
		t.Fatal(err)
	}
	// A Go plugin process holds a few MiB at the least, and this one far
	// less than the limit it kept to.
	if p := c.PeakRSS(); p < 1<<20 || p > 1<<30 {
		t.Errorf("peak RSS %d bytes: not a plausible measure", p)
	}

	for _, child := range []bool{false, true} {
		c := start(t, h, "test")
		pid := c.Pid()
		const limit = 64 << 20
		_, err := c.Run(context.Background(), RunRequest{Kind: "leak", Stage: "leak.l",
			Config: cty.ObjectVal(map[string]cty.Value{"stop_mib": cty.NumberIntVal(1024), "child": cty.BoolVal(child)}),
		}, WithMemoryLimit(limit))
		var mle *MemoryLimitError
		if !errors.As(err, &mle) {
			t.Fatalf("child %v: error = %v, want a MemoryLimitError", child, err)
		}
		if mle.Stage != "leak.l" || mle.Pid != pid || mle.Limit != limit || mle.Used <= limit {
			t.Errorf("child %v: %+v", child, mle)
		}
		if c.PeakRSS() < mle.Used {
			t.Errorf("child %v: peak RSS %d is below the %d that went over the limit", child, c.PeakRSS(), mle.Used)
		}
		waitGone(t, pid)
	}
}

// What a plugin writes to stdout stops its run and is quoted.
func TestStdoutStopsTheRun(t *testing.T) {
	h, _ := newHost(t)
	c := start(t, h, "test")
	pid := c.Pid()
	_, err := c.Run(context.Background(), RunRequest{Kind: "stdout", Stage: "stdout.s"})
	var se *StdoutError
	if !errors.As(err, &se) {
		t.Fatalf("error = %v, want a StdoutError", err)
	}
	if se.Head != "DEBUG rows=42 \x00\x01 not for the host" || se.Stage != "stdout.s" || se.Plugin != "test" {
		t.Errorf("%+v", se)
	}
	waitGone(t, pid)
}

func TestProcessTree(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		testenv.Missing(t, "cannot start sleep: %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	tree := processTree(os.Getpid())
	if tree[0] != os.Getpid() || !slices.Contains(tree, cmd.Process.Pid) {
		t.Errorf("tree of %d = %v, want it and its child %d", os.Getpid(), tree, cmd.Process.Pid)
	}
	if residentBytes(cmd.Process.Pid) <= 0 || statusBytes(os.Getpid(), "VmHWM:") <= 0 {
		t.Error("no resident memory read from /proc")
	}
	if residentBytes(-1) != 0 || statusBytes(0, "VmHWM:") != 0 {
		t.Error("a process that is not there uses memory")
	}
}

func TestMemoryLimitErrorSaysOver(t *testing.T) {
	for _, c := range []struct {
		used, limit int64
		want        string
	}{
		{used: 97 << 20, limit: 96 << 20, want: "stage a.b used 97 MiB, over its memory_limit of 96 MiB; the plugin process p (pid 7) and its children were killed"},
		// Both round up to 97: the decimals show it went over.
		{used: 96<<20 + 1<<18, limit: 96<<20 + 1<<16, want: "stage a.b used 96.2 MiB, over its memory_limit of 96.1 MiB; the plugin process p (pid 7) and its children were killed"},
	} {
		if got := (&MemoryLimitError{Stage: "a.b", Plugin: "p", Pid: 7, Used: c.used, Limit: c.limit}).Error(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

// A plugin that fails the handshake is reported as it failed, and its
// process does not stay behind.
func TestHandshakeFailures(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(pluginDir, sdk.PluginPrefix+"test"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"test-exits", "test-garbage"} {
		if err := os.WriteFile(filepath.Join(dir, sdk.PluginPrefix+name), src, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := newHost(t, WithSearchPaths(dir))
	for name, want := range map[string]string{
		"test-exits":   "plugin test-exits exited (exit status 2) during the go-plugin handshake, before it served; plugin output: testkit: giving up before the handshake",
		"test-garbage": `plugin test-garbage printed "Welcome to testkit! Loading models..." on stdout where the go-plugin handshake line belongs: it is not a sweetspot plugin, or it writes to stdout before serving (a plugin logs to stderr); the process was killed`,
	} {
		c, err := h.Start(context.Background(), name)
		if err == nil {
			c.Kill()
			t.Fatalf("%s started", name)
		}
		if err.Error() != want {
			t.Errorf("%s:\n got %s\nwant %s", name, err, want)
		}
	}
	h.mu.Lock()
	left := len(h.clients)
	h.mu.Unlock()
	if left != 0 {
		t.Errorf("%d clients left registered", left)
	}
}
