//go:build linux

package exec

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/stagetest"
)

// daemon is shell text that starts a process which detaches from the
// trial as a daemon does (its own session, its parent gone at once), with
// env-prefix before it (e.g. "env -i" to drop the environment), writes the
// process's pid to $OUT/NAME.pid, and waits until the file is there. Its
// output goes to /dev/null, so the trial's pipes do not wait for it.
func daemon(name, envPrefix string) string {
	inner := fmt.Sprintf(`echo $$ > "$OUT/%[1]s.tmp"; mv "$OUT/%[1]s.tmp" "$OUT/%[1]s.pid"; exec sleep 300`, name)
	return fmt.Sprintf(`( %s setsid /bin/sh -c '%s' </dev/null >/dev/null 2>&1 & ) ; while [ ! -s "$OUT/%s.pid" ]; do sleep 0.01; done; `, envPrefix, inner, name)
}

// setsidChild starts a child that calls setsid but keeps its parent (the
// trial's shell) while the trial runs.
func setsidChild(name string) string {
	return fmt.Sprintf(`setsid /bin/sh -c 'echo $$ > "$1/%[1]s.tmp"; mv "$1/%[1]s.tmp" "$1/%[1]s.pid"; exec sleep 300' sh "$OUT" </dev/null >/dev/null 2>&1 & while [ ! -s "$OUT/%[1]s.pid" ]; do sleep 0.01; done; `, name)
}

// Every process a trial starts dies with it, however it detached: a setsid
// child, a double-forked daemon in its own session, one that also dropped
// its environment; whether the command exits, times out or is canceled.
// The processes must be gone from /proc (not left as zombies).
func TestDetachedProcessesDieWithTheirTrial(t *testing.T) {
	detach := setsidChild("setsid") + daemon("daemon", "") + daemon("bare", `env -i OUT="$OUT" PATH="$PATH"`)
	for _, tc := range []struct {
		name, script string
		timeout      time.Duration
		cancel       bool
		wantStatus   string
	}{
		{"exit", detach + `echo '{"accuracy": 0.5}'`, 30 * time.Second, false, "ok"},
		{"failure", detach + `exit 3`, 30 * time.Second, false, "failed"},
		{"timeout", detach + `sleep 300`, 2 * time.Second, false, "failed"},
		{"cancel", detach + `touch "$OUT/ready"; sleep 300`, 30 * time.Second, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := checked(t)
			out := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancel {
				go func() {
					for ctx.Err() == nil {
						if _, err := os.Stat(filepath.Join(out, "ready")); err == nil {
							cancel()
							return
						}
						time.Sleep(10 * time.Millisecond)
					}
				}()
			}
			rs, err := run(t, ctx, Config{Command: sh(tc.script), TrialTimeout: ptr(tc.timeout), Env: map[string]string{"OUT": out}},
				stagetest.Inputs{InputPort: candidates(t, mem, cand(4, 3, 1, 8))})
			switch {
			case tc.cancel:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("got %v, want context.Canceled", err)
				}
			case err != nil:
				t.Fatal(err)
			case rs[0].Status != tc.wantStatus:
				t.Errorf("trial %s %q, want %s", rs[0].Status, rs[0].Error, tc.wantStatus)
			}
			for _, name := range []string{"setsid", "daemon", "bare"} {
				pid := readPid(t, filepath.Join(out, name+".pid"))
				if s := processState(pid); s != "" {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					t.Errorf("the %s process %d is still there after its trial (state %s)", name, pid, s)
				}
			}
		})
	}
}

// With trials running at once, one trial's end kills its own processes
// and none of the other's: the second trial waits until the first one's
// daemon is gone, then reports whether its own daemon still runs.
func TestOneTrialsEndSparesAnother(t *testing.T) {
	mem := checked(t)
	out := t.TempDir()
	script := `if [ "$SWEETSPOT_WIDTH" = 8 ]; then ` + daemon("first", "") + `echo '{"accuracy": 0.5}'; exit 0; fi
` + daemon("second", "") + `while [ ! -s "$OUT/first.pid" ]; do sleep 0.01; done
while kill -0 "$(cat "$OUT/first.pid")" 2>/dev/null; do sleep 0.01; done
if kill -0 "$(cat "$OUT/second.pid")"; then echo '{"accuracy": 1}'; else echo '{"accuracy": 0}'; fi`
	c1, c2 := cand(4, 3, 1, 8), cand(4, 3, 1, 16)
	rs, err := run(t, context.Background(), Config{Command: sh(script), Parallelism: ptr(2), TrialTimeout: ptr(30 * time.Second), Env: map[string]string{"OUT": out}},
		stagetest.Inputs{InputPort: candidates(t, mem, c1, c2)})
	if err != nil {
		t.Fatal(err)
	}
	got := byID(rs)
	if r := got[c1.ID]; r.Status != "ok" {
		t.Errorf("first trial %s %q", r.Status, r.Error)
	}
	if r := got[c2.ID]; r.Status != "ok" || r.Accuracy != 1 {
		t.Errorf("second trial %s %q accuracy %g, want ok and 1 (its daemon still running once the first trial ended)", r.Status, r.Error, r.Accuracy)
	}
	for _, name := range []string{"first", "second"} {
		if pid := readPid(t, filepath.Join(out, name+".pid")); processState(pid) != "" {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the %s daemon %d is still there after its trial", name, pid)
		}
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// processState is pid's state letter as /proc says it (Z for a zombie),
// "" when there is no such process.
func processState(pid int) string {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return ""
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// The sweep walks down the plugin's own tree through the kernel's children
// lists; what it finds must be exactly the processes whose parent chain in
// the whole of /proc leads to the plugin.
func TestScanTreeFindsTheWholeSubtree(t *testing.T) {
	cmd := osexec.Command("/bin/sh", "-c", "sleep 30 & sleep 30 & (sleep 30 & wait) & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	self := os.Getpid()
	var tree, all map[int]procInfo
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if tree, err = scanTree(self); err != nil {
			t.Fatal(err)
		}
		if all, err = scanProcs(); err != nil {
			t.Fatal(err)
		}
		if len(tree) >= 6 || time.Now().After(deadline) { // us, sh, 2 sleeps, the subshell and its sleep
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := map[int]bool{}
	for pid := range all {
		for p, hops := pid, 0; p > 0 && hops < 64; p, hops = all[p].ppid, hops+1 {
			if p == self {
				want[pid] = true
				break
			}
		}
	}
	got := map[int]bool{}
	for pid := range tree {
		got[pid] = true
	}
	if len(want) < 6 || !cmp.Equal(want, got) {
		t.Errorf("scanTree found %v, the parent chains in /proc say %v (want at least 6)", got, want)
	}
}

// BenchmarkTrialEndSweep is what each trial's end costs when the command
// left nothing behind: one walk down the plugin's process tree.
// machine_procs is how many processes the machine had (not all are read).
func BenchmarkTrialEndSweep(b *testing.B) {
	m := markTrial(&osexec.Cmd{})
	defer m.release()
	procs, err := scanProcs()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		m.sweep(-1, true)
	}
	b.ReportMetric(float64(len(procs)), "machine_procs")
}
