package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// swapScene is a locked plugin reached through a symbolic link in the
// plugin directory, and a script that must never run: it writes its marker,
// then serves as the test plugin does, so a start of it would succeed.
type swapScene struct {
	link, good, evil       string
	goodMarker, evilMarker string
	lock                   string
}

func newSwapScene(t *testing.T, name string) swapScene {
	t.Helper()
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	var s swapScene
	s.good, s.goodMarker = markedPlugin(t, dir, name)
	s.evilMarker = filepath.Join(dir, "evil.runs")
	s.evil = filepath.Join(dir, "evil")
	script := fmt.Sprintf("#!/bin/sh\necho run >> %s\nexec %s \"$@\"\n", s.evilMarker, filepath.Join(pluginDir, sdk.PluginPrefix+"test"))
	if err := os.WriteFile(s.evil, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s.link = filepath.Join(plugins, sdk.PluginPrefix+name)
	s.point(t, s.good)
	s.lock = filepath.Join(dir, lockfile.FileName)
	writeLock(t, s.lock, map[string]string{name: s.good})
	return s
}

// point makes the plugin's link point to target, atomically.
func (s swapScene) point(t testing.TB, target string) {
	tmp := s.link + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		t.Error(err)
		return
	}
	if err := os.Rename(tmp, s.link); err != nil {
		t.Error(err)
	}
}

// TestSwapAfterTheCheckRunsTheCheckedBytes: the link is pointed at another
// script right after the host checked the locked one (a test hook, so it
// happens every time, exactly there). What starts, and what describes
// itself, is still the checked script.
func TestSwapAfterTheCheckRunsTheCheckedBytes(t *testing.T) {
	s := newSwapScene(t, "swapped")
	for i := 0; i < 5; i++ {
		s.point(t, s.good)
		h, _ := newHost(t, WithSearchPaths(filepath.Dir(s.link)), WithLockFile(s.lock))
		h.afterCheck = func(string) { s.point(t, s.evil) }
		if i%2 == 0 {
			c := start(t, h, "swapped")
			if res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.s", Config: emitConfig(2, 2)}); err != nil || res.RowsOut["table"] != 2 {
				t.Fatalf("Run = %v, %v", res, err)
			}
			want, _ := lockfile.HashFile(s.good)
			checkCopy(t, c, s.link, want)
		} else if _, err := h.Resolve("emit", "swapped"); err != nil {
			t.Fatal(err)
		}
		if n := runs(s.evilMarker); n != 0 {
			t.Fatalf("the script swapped in after the check ran %d times", n)
		}
	}
	if n := runs(s.goodMarker); n != 5 {
		t.Errorf("the checked script ran %d times, want 5", n)
	}
	// The swapped-in script itself is refused.
	h, _ := newHost(t, WithSearchPaths(filepath.Dir(s.link)), WithLockFile(s.lock))
	if _, err := h.Start(context.Background(), "swapped"); !errors.As(err, new(*ChecksumError)) {
		t.Fatalf("Start of the swapped-in script = %v, want a *ChecksumError", err)
	}
	if n := runs(s.evilMarker); n != 0 {
		t.Fatalf("the refused script ran %d times", n)
	}
}

// TestSwapRace is the attack as it was made: while the host starts and
// describes a locked plugin over and over, another goroutine points the
// plugin's link back and forth between the locked script and another one,
// at random moments. A start may be refused (the host read the other
// script), but the other script must never run.
func TestSwapRace(t *testing.T) {
	s := newSwapScene(t, "raced")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				s.point(t, s.evil)
			} else {
				s.point(t, s.good)
			}
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		}
	}()
	const rounds = 60
	started, described, refused := 0, 0, 0
	for i := 0; i < rounds; i++ {
		// A new host each time: nothing is memoized from the round before.
		h, _ := newHost(t, WithSearchPaths(filepath.Dir(s.link)), WithLockFile(s.lock))
		var err error
		if i%2 == 0 {
			var c *Client
			if c, err = h.Start(context.Background(), "raced"); err == nil {
				started++
				c.Kill()
			}
		} else if _, err = h.Resolve("emit", "raced"); err == nil {
			described++
		}
		if err != nil {
			if !errors.As(err, new(*ChecksumError)) && !strings.Contains(err.Error(), "changed while it was being checked") {
				t.Errorf("round %d: %v", i, err)
			}
			refused++
		}
		h.Close()
	}
	close(stop)
	wg.Wait()
	t.Logf("%d starts, %d describes, %d refused", started, described, refused)
	if n := runs(s.evilMarker); n != 0 {
		t.Fatalf("a script that was not checked ran %d times", n)
	}
	if started == 0 || described == 0 {
		t.Fatalf("the checked plugin never started (%d) or described (%d): the test proved nothing", started, described)
	}
}

// TestUnlockedPluginsRunOnlyWhenNamed: with a lock file, an executable in a
// plugin directory that the lock file does not list is run by nothing but
// a stage that names it: not to list plugins, not to collect stage kinds,
// not to find who provides a kind.
func TestUnlockedPluginsRunOnlyWhenNamed(t *testing.T) {
	dir := t.TempDir()
	locked, lockedRuns := markedPlugin(t, dir, "locked")
	_, spyRuns := markedPlugin(t, dir, "spy")
	lock := filepath.Join(dir, lockfile.FileName)
	writeLock(t, lock, map[string]string{"locked": locked})
	var logs syncBuffer
	h, _ := newHost(t,
		WithSearchPaths(dir),
		WithLockFile(lock),
		WithBuiltin(stages.NewSet("builtin"), []string{filepath.Join(pluginDir, sdk.PluginPrefix+"test")}),
		WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: &logs})),
	)
	// What loading a pipeline of built-in stages asks, and `plugins list`.
	kinds := h.Kinds()
	if d, err := h.Resolve("emit", ""); err != nil || d.Name != "builtin" {
		t.Fatalf("Resolve(emit) = %v, %v", d, err)
	}
	infos, err := h.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range infos {
		switch p.Name {
		case "spy":
			if !p.NotRun || p.Description != nil || p.Checksum != ChecksumUnlocked || p.Err != nil {
				t.Errorf("spy: %+v", p)
			}
		case "locked":
			if p.NotRun || p.Description == nil || p.Checksum != ChecksumOK {
				t.Errorf("locked: %+v", p)
			}
		}
	}
	if p, err := h.Find("spy"); err != nil || !p.NotRun || p.Path != filepath.Join(dir, sdk.PluginPrefix+"spy") {
		t.Errorf("Find(spy) = %+v, %v", p, err)
	}
	// A kind nobody may be asked about: the unlocked plugin is named, not run.
	_, err = h.Resolve("nosuch", "")
	var ue *UnlockedError
	if !errors.As(err, &ue) || !errors.Is(err, config.ErrPluginRefused) || !strings.Contains(err.Error(), `"spy"`) || !strings.Contains(err.Error(), lock) {
		t.Errorf("Resolve(nosuch) = %v, want an *UnlockedError naming spy and the lock file", err)
	}
	if n := runs(spyRuns); n != 0 {
		t.Fatalf("the unlocked plugin ran %d times though nothing named it", n)
	}
	if n := runs(lockedRuns); n != 1 {
		t.Errorf("the locked plugin ran %d times, want 1 (described once)", n)
	}
	if !strings.Contains(strings.Join(kinds, ","), "emit") {
		t.Errorf("Kinds = %v", kinds)
	}

	// Named, it runs, with a warning; then its kinds are known.
	if _, err := h.Resolve("emit", "spy"); err != nil {
		t.Fatalf("Resolve(emit, spy): %v", err)
	}
	if n := runs(spyRuns); n != 1 {
		t.Errorf("the named plugin ran %d times, want 1", n)
	}
	if !strings.Contains(logs.String(), "plugin is not in the lock file") {
		t.Errorf("no warning about the unlocked plugin:\n%s", logs.String())
	}
}

// TestCopiesAreMadeOnce: the checked copy is made on the first check of a
// build and found by later ones, in this host and in the next; a rebuilt
// plugin gets a copy of its own.
func TestCopiesAreMadeOnce(t *testing.T) {
	cache := t.TempDir()
	t.Setenv(EnvExecCache, cache)
	dir := t.TempDir()
	exe, _ := markedPlugin(t, dir, "once")
	lock := filepath.Join(dir, lockfile.FileName)
	writeLock(t, lock, map[string]string{"once": exe})
	sum, _ := lockfile.HashFile(exe)

	var copies []string
	for i := 0; i < 2; i++ {
		h, _ := newHost(t, WithSearchPaths(dir), WithLockFile(lock))
		for j := 0; j < 2; j++ {
			c := start(t, h, "once")
			checkCopy(t, c, exe, sum)
			copies = append(copies, c.cmd.Path)
			fi, _ := os.Stat(c.cmd.Path)
			if j == 0 && i == 0 {
				// Later starts must not write it again.
				past := fi.ModTime().Add(-time.Minute)
				_ = os.Chtimes(c.cmd.Path, past, past)
			} else if !fi.ModTime().Before(time.Now().Add(-30 * time.Second)) {
				t.Errorf("start %d.%d copied the plugin again", i, j)
			}
			c.Kill()
		}
	}
	entries, _ := os.ReadDir(cache)
	if len(entries) != 1 {
		t.Errorf("the cache holds %d entries, want 1", len(entries))
	}
	// A copy that is not whole is made again.
	if err := os.Chmod(filepath.Dir(copies[0]), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(copies[0]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copies[0], []byte("#!/bin/sh\nexit 3\n"), 0o500); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, WithSearchPaths(dir), WithLockFile(lock))
	c := start(t, h, "once")
	checkCopy(t, c, exe, sum)
}
