package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// pluginWatch samples, from /proc, the plugin processes that this test
// process started (serving ones: not `describe`), and keeps the most seen
// alive at once.
type pluginWatch struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	most int
	seen map[int]bool
}

func watchPlugins(t *testing.T) *pluginWatch {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("no /proc to count processes in: %v", err)
	}
	w := &pluginWatch{done: make(chan struct{}), seen: map[int]bool{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for {
			alive := livePlugins()
			w.mu.Lock()
			w.most = max(w.most, len(alive))
			for _, pid := range alive {
				w.seen[pid] = true
			}
			w.mu.Unlock()
			select {
			case <-w.done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return w
}

// stop ends the sampling and returns the most plugin processes seen alive
// at once and how many were seen in all.
func (w *pluginWatch) stop() (most, all int) {
	close(w.done)
	w.wg.Wait()
	return w.most, len(w.seen)
}

// livePlugins lists the live (not zombie) children of this process that
// run the testkit plugin to serve.
func livePlugins() []int {
	self := os.Getpid()
	exe := filepath.Join(pluginDir, "sweetspot-plugin-testkit")
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[1] != strconv.Itoa(self) {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if args[0] == exe && len(args) == 1 {
			out = append(out, pid)
		}
	}
	return out
}

// wideAndLong is 8 independent emit stages and a chain of 6 passthroughs.
func wideAndLong() string {
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, "stage \"emit\" \"w%d\" {\n  plugin = \"testkit\"\n  rows   = 3\n}\n", i)
	}
	b.WriteString("stage \"emit\" \"c0\" {\n  plugin = \"testkit\"\n  rows   = 4\n}\n")
	prev := "stage.emit.c0"
	for i := 1; i <= 6; i++ {
		fmt.Fprintf(&b, "stage \"passthrough\" \"c%d\" {\n  plugin = \"testkit\"\n  input  = %s\n}\n", i, prev)
		prev = fmt.Sprintf("stage.passthrough.c%d", i)
	}
	return b.String()
}

func TestMaxPluginsBoundsTheProcessesAliveAtOnce(t *testing.T) {
	for _, limit := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("max=%d", limit), func(t *testing.T) {
			w := watchPlugins(t)
			h, err := runPipelineWith(t, context.Background(), wideAndLong(), func(r *runner.Runner) {
				r.MaxPlugins = limit
				r.Parallel = 8
			})
			most, _ := w.stop()
			if err != nil {
				t.Fatal(err)
			}
			if most > limit {
				t.Errorf("%d plugin processes were alive at once, want at most %d", most, limit)
			}
			// Every stage ran, each in a process of its own (the first in the
			// one that checked the configs), as the run's events say: the
			// sampling of /proc above may miss a process that lived for less
			// than a sample's interval.
			if n := h.stagesInOwnProcesses(t); n != 15 {
				t.Errorf("%d stages started in processes of their own, want all 15", n)
			}
			if got := h.readInt64s("passthrough.c6", 0, "output", "id"); !equalInts(got, []int64{0, 1, 2, 3}) {
				t.Errorf("passthrough.c6 wrote %v, want 0..3", got)
			}
			h.assertProcessesGone()
		})
	}
}

// A stage's process starts when its inputs are ready and stops when it is
// done: along a chain, a process at most overlaps the one before it as
// that one stops.
func TestChainStartsEachPluginWhenItsStageIsReady(t *testing.T) {
	var b strings.Builder
	b.WriteString("stage \"emit\" \"c0\" {\n  plugin = \"testkit\"\n  rows   = 4\n}\n")
	prev := "stage.emit.c0"
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "stage \"passthrough\" \"c%d\" {\n  plugin = \"testkit\"\n  input  = %s\n}\n", i, prev)
		prev = fmt.Sprintf("stage.passthrough.c%d", i)
	}
	w := watchPlugins(t)
	h, err := runPipelineWith(t, context.Background(), b.String(), func(r *runner.Runner) { r.MaxPlugins = 64 })
	most, _ := w.stop()
	if err != nil {
		t.Fatal(err)
	}
	if most > 2 {
		t.Errorf("%d plugin processes of an 8-stage chain were alive at once, want at most 2", most)
	}
	if n := h.stagesInOwnProcesses(t); n != 8 {
		t.Errorf("%d stages started in processes of their own, want all 8", n)
	}
	h.assertProcessesGone()
}

// A loop keeps its stages' processes from round to round while places are
// free, and still finishes when a single place must serve every stage.
func TestLoopKeepsItsProcessesBetweenRoundsWithinTheLimit(t *testing.T) {
	for _, limit := range []int{0, 1} {
		t.Run(fmt.Sprintf("max=%d", limit), func(t *testing.T) {
			w := watchPlugins(t)
			h, err := runPipelineWith(t, context.Background(), sprintf(loopPipeline, 10, 12), func(r *runner.Runner) { r.MaxPlugins = limit })
			most, _ := w.stop()
			if err != nil {
				t.Fatal(err)
			}
			if limit > 0 && most > limit {
				t.Errorf("%d plugin processes alive at once, want at most %d", most, limit)
			}
			if d := h.manifest().Decision; d == nil || d.Rounds != 3 {
				t.Fatalf("decision %+v, want the loop to converge in round 3", d)
			}
			pids := map[string]map[int]bool{}
			for _, e := range h.events {
				if e.Type == runner.EventStageStarted && e.Round > 0 {
					if pids[e.Stage] == nil {
						pids[e.Stage] = map[int]bool{}
					}
					pids[e.Stage][e.Pid] = true
				}
			}
			for _, stage := range []string{"double.d", "counter.c"} {
				if limit == 0 && len(pids[stage]) != 1 {
					t.Errorf("stage %s ran its rounds in processes %v, want one kept for every round", stage, pids[stage])
				}
				if limit == 1 && len(pids[stage]) != 3 {
					t.Errorf("stage %s ran its 3 rounds in processes %v, want a new one each round (one place for two stages)", stage, pids[stage])
				}
			}
			h.assertProcessesGone()
		})
	}
}

func TestDefaultStageTimeoutStopsAStageWithoutItsOwn(t *testing.T) {
	h, err := runPipelineWith(t, context.Background(), `
stage "block" "stuck" {
  plugin = "testkit"
}
`, func(r *runner.Runner) { r.StageTimeout = time.Second })
	if err == nil || !strings.Contains(err.Error(), "stage block.stuck exceeded its timeout of 1s") {
		t.Fatalf("error = %v, want block.stuck to exceed its timeout of 1s", err)
	}
	if m := h.manifest(); m.Status != runstore.StatusFailed {
		t.Errorf("run status %s, want failed", m.Status)
	}
	h.assertProcessesGone()
}

// stagesInOwnProcesses counts the stage starts the run's events record,
// each of which must be in a process of its own.
func (h *harness) stagesInOwnProcesses(t *testing.T) int {
	t.Helper()
	pids := map[int]bool{}
	for _, e := range h.events {
		if e.Type == runner.EventStageStarted {
			if e.Pid == 0 || pids[e.Pid] {
				t.Errorf("stage %s started in process %d, want one of its own", e.Stage, e.Pid)
			}
			pids[e.Pid] = true
		}
	}
	return len(pids)
}
