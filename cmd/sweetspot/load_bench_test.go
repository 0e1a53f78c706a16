package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// The load benchmarks run the real binary on generated pipelines of the
// test plugin's stages, which cost next to nothing, so what they measure is
// the host, the protocol and the run store. Each reports the run's wall
// time and the peak resident memory (VmHWM) of the host process and of its
// plugin processes, sampled from /proc while the run goes on. (The
// rusage wait4 returns cannot tell them apart: its ru_maxrss is the larger
// of the process's own and that of its largest reaped child.) They run
// only under -bench (`make load`).

// loadResult is what one measured run took.
type loadResult struct {
	wall time.Duration
	// host is the host's peak RSS; pluginMax the largest plugin's;
	// pluginSum the sum of every plugin's peak (an upper bound of what they
	// held at once). In bytes.
	host, pluginMax, pluginSum int64
	plugins                    int
	manifest                   runstore.Manifest
}

// runLoad runs `sweetspot run` on the pipeline in dir, watching the
// memory of the host and its descendants, and removes the run afterwards.
func runLoad(b *testing.B, dir string, args ...string) loadResult {
	b.Helper()
	cmd := exec.Command(binary, append([]string{"run", "-q", "--no-cache"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir, "NO_COLOR=1", "OTEL_TRACES_EXPORTER=none")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w := watchTree(cmd.Process.Pid, 20*time.Millisecond)
	err := cmd.Wait()
	wall := time.Since(t0)
	peaks := w.stop()
	if err != nil {
		b.Fatalf("run %v: %v\n%s", args, err, out.String())
	}
	root := filepath.Join(dir, runstore.DefaultRoot)
	store := runstore.Open(root)
	ids, err := store.IDs()
	if err != nil || len(ids) == 0 {
		b.Fatalf("no run recorded: %v", err)
	}
	r, err := store.Load(ids[len(ids)-1])
	if err != nil {
		b.Fatal(err)
	}
	res := loadResult{wall: wall, manifest: r.Manifest(), host: peaks[cmd.Process.Pid]}
	largest := 0
	for pid, p := range peaks {
		if pid == cmd.Process.Pid {
			continue
		}
		res.plugins++
		res.pluginSum += p
		if p > res.pluginMax {
			res.pluginMax, largest = p, pid
		}
	}
	for _, s := range res.manifest.Stages {
		if s.Pid == largest && largest != 0 {
			b.Logf("largest plugin: stage %s (pid %d), %.1f MiB", s.Addr, largest, mib(res.pluginMax))
		}
	}
	if res.host == 0 {
		b.Fatal("the host's memory was never sampled")
	}
	// Runs of gigabytes would fill the disk over b.N iterations.
	if err := os.RemoveAll(root); err != nil {
		b.Fatal(err)
	}
	return res
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// outputRows is the rows a stage wrote on a port, as the manifest says.
func outputRows(b *testing.B, m runstore.Manifest, addr, port string) int64 {
	b.Helper()
	for _, s := range m.Stages {
		if s.Addr != addr {
			continue
		}
		var n int64
		for _, f := range s.Outputs {
			if f.Port == port {
				n += f.Rows
			}
		}
		return n
	}
	b.Fatalf("stage %s is not in the manifest", addr)
	return 0
}

// BenchmarkLoadTrials runs 1000 trials of a trivial evaluation stage (one
// result batch per trial, journalled and synced by the host as the
// evaluation stage's are) and reports the wall time, trials per second and
// peak RSS of the host and the plugins.
func BenchmarkLoadTrials(b *testing.B) {
	const trials = 1000
	dir := b.TempDir()
	writeFile(b, dir, "p.hcl", fmt.Sprintf(`stage "emit" "candidates" {
  plugin     = "testkit"
  rows       = %d
  batch_rows = %d
}

stage "trivial_eval" "eval" {
  plugin = "testkit"
  input  = stage.emit.candidates
}
`, trials, trials))
	var last loadResult
	var wall time.Duration
	for i := 0; i < b.N; i++ {
		last = runLoad(b, dir, "p.hcl")
		wall += last.wall
		if n := outputRows(b, last.manifest, "trivial_eval.eval", "results"); n != trials {
			b.Fatalf("%d result rows, want %d", n, trials)
		}
	}
	s := wall.Seconds() / float64(b.N)
	b.ReportMetric(s, "wall-s")
	b.ReportMetric(trials/s, "trials/s")
	b.ReportMetric(mib(last.host), "host-peak-rss-MiB")
	b.ReportMetric(mib(last.pluginMax), "plugin-peak-rss-MiB")
}

// BenchmarkLoadStages runs a chain of 50 stages (emit, then 49
// passthroughs), each in its own plugin process, started when its stage is
// ready and stopped when it is done, and reports the wall time,
// the time per stage and the peak RSS of the host, of the largest plugin
// and of all plugins together.
func BenchmarkLoadStages(b *testing.B) {
	const n = 50
	dir := b.TempDir()
	var src strings.Builder
	src.WriteString("stage \"emit\" \"s0\" {\n  plugin = \"testkit\"\n  rows   = 10000\n}\n")
	prev := "stage.emit.s0"
	for i := 1; i < n; i++ {
		fmt.Fprintf(&src, "\nstage \"passthrough\" \"s%d\" {\n  plugin = \"testkit\"\n  input  = %s\n}\n", i, prev)
		prev = fmt.Sprintf("stage.passthrough.s%d", i)
	}
	writeFile(b, dir, "p.hcl", src.String())
	var last loadResult
	var wall time.Duration
	for i := 0; i < b.N; i++ {
		last = runLoad(b, dir, "p.hcl")
		wall += last.wall
		if got := outputRows(b, last.manifest, fmt.Sprintf("passthrough.s%d", n-1), "output"); got != 10000 {
			b.Fatalf("the last stage wrote %d rows, want 10000", got)
		}
		// Each stage ran in a process of its own. They live one after the
		// other, each only while its stage runs, so the sampling may miss
		// some: the manifest says which ran where.
		pids := map[int]bool{}
		for _, st := range last.manifest.Stages {
			if st.Pid != 0 {
				pids[st.Pid] = true
			}
		}
		if len(pids) != n {
			b.Fatalf("the %d stages ran in %d plugin processes, want one each", n, len(pids))
		}
	}
	s := wall.Seconds() / float64(b.N)
	b.ReportMetric(s, "wall-s")
	b.ReportMetric(s*1e3/n, "ms/stage")
	b.ReportMetric(mib(last.host), "host-peak-rss-MiB")
	b.ReportMetric(mib(last.pluginMax), "plugin-peak-rss-MiB")
	b.ReportMetric(mib(last.pluginSum), "plugins-total-rss-MiB")
}

// BenchmarkLoadDataset streams a dataset of float32 columns through three
// passthrough stages, once at 128 MiB and once at 1 GiB, and reports each
// size's wall time and throughput and the peak RSS of the host and of the
// largest plugin, and how much those peaks grew from the small to the large
// run (the data grew 8 times). Goal: memory stays bounded, that is it does
// not grow with the data beyond the batches in flight (rss ratios near 1).
func BenchmarkLoadDataset(b *testing.B) {
	sizes := []struct {
		name  string
		bytes int64
	}{{"128MiB", 128 << 20}, {"1GiB", 1 << 30}}
	const columns = 16
	dir := b.TempDir()
	runs := make([]loadResult, len(sizes))
	walls := make([]time.Duration, len(sizes))
	for i := 0; i < b.N; i++ {
		for k, size := range sizes {
			rows := size.bytes / (4 * columns)
			writeFile(b, dir, "p.hcl", fmt.Sprintf(`stage "floats" "data" {
  plugin  = "testkit"
  rows    = %d
  columns = %d
}

stage "passthrough" "a" {
  plugin = "testkit"
  input  = stage.floats.data
}

stage "passthrough" "b" {
  plugin = "testkit"
  input  = stage.passthrough.a
}

stage "passthrough" "c" {
  plugin = "testkit"
  input  = stage.passthrough.b
}
`, rows, columns))
			runs[k] = runLoad(b, dir, "p.hcl")
			walls[k] += runs[k].wall
			if got := outputRows(b, runs[k].manifest, "passthrough.c", "output"); got != rows {
				b.Fatalf("%s: the last stage wrote %d rows, want %d", size.name, got, rows)
			}
		}
	}
	for k, size := range sizes {
		s := walls[k].Seconds() / float64(b.N)
		b.ReportMetric(s, "wall-s-"+size.name)
		b.ReportMetric(float64(size.bytes)/s/1e6, "dataset-MB/s-"+size.name)
		b.ReportMetric(mib(runs[k].host), "host-peak-rss-MiB-"+size.name)
		b.ReportMetric(mib(runs[k].pluginMax), "plugin-peak-rss-MiB-"+size.name)
	}
	small, large := runs[0], runs[len(runs)-1]
	hostRatio := float64(large.host) / float64(small.host)
	pluginRatio := float64(large.pluginMax) / float64(small.pluginMax)
	b.ReportMetric(hostRatio, "host-rss-ratio")
	b.ReportMetric(pluginRatio, "plugin-rss-ratio")
	// Memory that grew with the data would have grown about 8 times; the
	// collector's timing alone moves a peak by a few tens of percent.
	if hostRatio > 2 || pluginRatio > 2 {
		b.Errorf("peak RSS grew with the data: host %.1f MiB to %.1f MiB, largest plugin %.1f MiB to %.1f MiB",
			mib(small.host), mib(large.host), mib(small.pluginMax), mib(large.pluginMax))
	}
}

// BenchmarkPipelineOverhead runs a 5-stage trivial pipeline (emit, then
// four passthroughs, 10,000 rows) with the binary, each stage in its own
// plugin process, and the same five stages called in this process on the
// same data, and reports the difference per stage (overhead-ms/stage).
// The binary's time is everything a user waits for: the host starting,
// loading the pipeline, describing the plugin, starting and configuring
// the plugins, streaming, writing the run store. To tell what each stage
// adds from what any run pays once, it also runs the emit stage alone:
// marginal-ms/stage is what each of the four further stages added beyond
// its in-process cost, fixed-ms the rest of the 1-stage run's overhead.
// Goal: plugin overhead under 50 ms per stage.
func BenchmarkPipelineOverhead(b *testing.B) {
	const n, rows = 5, 10000
	dir := b.TempDir()
	var src strings.Builder
	fmt.Fprintf(&src, "stage \"emit\" \"s0\" {\n  plugin = \"testkit\"\n  rows   = %d\n}\n", rows)
	writeFile(b, dir, "one.hcl", src.String())
	prev := "stage.emit.s0"
	for i := 1; i < n; i++ {
		fmt.Fprintf(&src, "\nstage \"passthrough\" \"s%d\" {\n  plugin = \"testkit\"\n  input  = %s\n}\n", i, prev)
		prev = fmt.Sprintf("stage.passthrough.s%d", i)
	}
	writeFile(b, dir, "p.hcl", src.String())
	set := stages.NewSet("testkit")
	var plugin, plugin1, local, local1 time.Duration
	for i := 0; i < b.N; i++ {
		plugin += runLoad(b, dir, "p.hcl").wall
		plugin1 += runLoad(b, dir, "one.hcl").wall
		t0 := time.Now()
		got := inProcessChain(b, set, n, rows)
		local += time.Since(t0)
		if got != rows {
			b.Fatalf("in process: %d rows, want %d", got, rows)
		}
		t0 = time.Now()
		inProcessChain(b, set, 1, rows)
		local1 += time.Since(t0)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(b.N) }
	pms, lms := ms(plugin), ms(local)
	over1 := ms(plugin1) - ms(local1)
	marginal := ((pms - lms) - over1) / (n - 1)
	b.ReportMetric(pms, "plugin-ms")
	b.ReportMetric(lms, "inprocess-ms")
	b.ReportMetric((pms-lms)/n, "overhead-ms/stage")
	b.ReportMetric(marginal, "marginal-ms/stage")
	b.ReportMetric(over1-marginal, "fixed-ms")
}

// inProcessChain runs emit and n-1 passthroughs one after the other in
// this process, each reading the batches the one before wrote, as the
// runner does through files, and returns the rows the last one wrote.
func inProcessChain(b *testing.B, set *sdk.Set, n int, rows int64) int64 {
	b.Helper()
	ctx := context.Background()
	var prev *memPort
	for i := 0; i < n; i++ {
		kind, cfg := "passthrough", cty.EmptyObjectVal
		if i == 0 {
			kind, cfg = "emit", cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(rows)})
		}
		st, diags := set.NewStage(kind, cfg)
		if diags.HasErrors() {
			b.Fatal(diags)
		}
		ports := memPorts{in: map[string]array.RecordReader{}, out: map[string]*memPort{}}
		if prev != nil {
			rd, err := array.NewRecordReader(prev.schema, prev.batches)
			if err != nil {
				b.Fatal(err)
			}
			ports.in["input"] = rd
		}
		if err := st.Run(ctx, ports, ports); err != nil {
			b.Fatal(err)
		}
		for _, rd := range ports.in {
			rd.Release()
		}
		if prev != nil {
			prev.release()
		}
		for _, p := range ports.out {
			prev = p
		}
	}
	defer prev.release()
	var got int64
	for _, rec := range prev.batches {
		got += rec.NumRows()
	}
	return got
}

// memPorts are a stage's ports in memory.
type memPorts struct {
	in  map[string]array.RecordReader
	out map[string]*memPort
}

func (p memPorts) Reader(port string) (array.RecordReader, error) {
	if r, ok := p.in[port]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("input port %q: not connected", port)
}

func (p memPorts) Writer(port string) (sdk.BatchWriter, error) {
	w := p.out[port]
	if w == nil {
		w = &memPort{}
		p.out[port] = w
	}
	return w, nil
}

// memPort keeps every batch written to it.
type memPort struct {
	schema  *arrow.Schema
	batches []arrow.RecordBatch
}

func (w *memPort) Write(rec arrow.RecordBatch) error {
	rec.Retain()
	w.schema = rec.Schema()
	w.batches = append(w.batches, rec)
	return nil
}

func (w *memPort) release() {
	for _, rec := range w.batches {
		rec.Release()
	}
	w.batches = nil
}

// treeWatch samples the peak RSS (VmHWM) of a process and of every
// process descended from it. VmHWM only grows, so sampling every few
// milliseconds misses only what a process gains in its last interval.
type treeWatch struct {
	root  int
	done  chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	peaks map[int]int64
	// skip holds the processes that are not plugins serving a stage: the
	// host describes each external plugin with a short-lived
	// `PLUGIN describe`.
	skip map[int]bool
}

func watchTree(root int, every time.Duration) *treeWatch {
	w := &treeWatch{root: root, done: make(chan struct{}), peaks: map[int]int64{}, skip: map[int]bool{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			w.sample()
			select {
			case <-w.done:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// stop ends the sampling and returns each process's peak RSS in bytes.
func (w *treeWatch) stop() map[int]int64 {
	close(w.done)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peaks
}

func (w *treeWatch) sample() {
	for _, pid := range descendants(w.root) {
		w.mu.Lock()
		_, seen := w.peaks[pid]
		if !seen && !w.skip[pid] && isDescribe(pid) {
			w.skip[pid] = true
		}
		skip := w.skip[pid]
		w.mu.Unlock()
		if skip {
			continue
		}
		hwm, err := vmHWM(pid)
		if err != nil {
			continue // gone between the listing and the read
		}
		w.mu.Lock()
		w.peaks[pid] = max(w.peaks[pid], hwm)
		w.mu.Unlock()
	}
}

// descendants lists root and every live process below it.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	out := []int{root}
	for k := 0; k < len(out); k++ {
		out = append(out, children[out[k]]...)
	}
	return out
}

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM (a zombie)")
}

func isDescribe(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	return len(args) > 1 && args[len(args)-1] == "describe"
}

// BenchmarkLoadCSV runs the dataset stage alone on a 1 GiB CSV (20 float
// features and a class column) and reports the stage's rate (file MB per
// second of the stage, parsing, splitting and streaming its batches to
// the host), the dataset plugin's peak RSS, and that peak over the file
// size and over the columns the stage keeps (float64 features and int64
// labels). Goal: peak RSS at most the kept columns plus 1.5 times the
// batches in flight, not a multiple of the file.
func BenchmarkLoadCSV(b *testing.B) {
	const size, features = 1 << 30, 20
	dir := b.TempDir()
	rows := writeCSV(b, filepath.Join(dir, "data.csv"), size, features)
	fi, err := os.Stat(filepath.Join(dir, "data.csv"))
	if err != nil {
		b.Fatal(err)
	}
	writeFile(b, dir, "p.hcl", "dataset \"big\" {\n  path = \"data.csv\"\n}\n")
	kept := float64(rows) * (features*8 + 8)
	var took time.Duration
	var peak int64
	for i := 0; i < b.N; i++ {
		res := runLoad(b, dir, "p.hcl")
		if got := outputRows(b, res.manifest, "dataset.big", "data"); got != int64(rows) {
			b.Fatalf("the dataset stage wrote %d rows, want %d", got, rows)
		}
		for _, s := range res.manifest.Stages {
			for _, e := range s.Executions {
				took += e.Took
			}
		}
		peak = max(peak, res.pluginMax)
	}
	s := took.Seconds() / float64(b.N)
	b.ReportMetric(float64(fi.Size())/s/1e6, "stage-MB/s")
	b.ReportMetric(mib(peak), "plugin-peak-rss-MiB")
	b.ReportMetric(kept/(1<<20), "kept-MiB")
	b.ReportMetric(float64(peak)/float64(fi.Size()), "plugin-rss/file")
	b.ReportMetric(float64(peak)/kept, "plugin-rss/kept")
}

// writeCSV writes a CSV of about size bytes: a header, then rows of
// features normal floats with four decimals and a class 0..9. It returns
// the number of rows.
func writeCSV(b *testing.B, path string, size int64, features int) int {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for j := range features {
		fmt.Fprintf(w, "f%d,", j)
	}
	w.WriteString("class\n")
	rng := rand.New(rand.NewPCG(1, 2))
	var line []byte
	rows := 0
	for written := int64(0); written < size; rows++ {
		line = line[:0]
		for range features {
			line = strconv.AppendFloat(line, rng.NormFloat64()*100, 'f', 4, 64)
			line = append(line, ',')
		}
		line = strconv.AppendInt(line, int64(rng.IntN(10)), 10)
		line = append(line, '\n')
		w.Write(line)
		written += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return rows
}
