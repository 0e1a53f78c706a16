package pluginhost

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
)

func benchHost(b *testing.B) *Host {
	b.Helper()
	h, err := New(WithSearchPaths(pluginDir),
		WithLogger(hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: os.Stderr})))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	return h
}

// BenchmarkPluginStart measures starting a plugin process and completing
// go-plugin's handshake (peer credentials, gRPC connection, protocol version),
// which is what each stage of a run pays once (ms/start), then the first
// call (Describe, ms/first-call); and, in the same loop, one after the
// other, the whole process of go-plugin's own gRPC example (examples/grpc,
// built from the module cache with this module's requirements): its host
// starts, starts its plugin, makes one call and exits (example-ms). Goal:
// start and handshake at most half the example's whole process
// (ratio <= 0.5; ratio-with-call counts our first call too; ratio-median
// divides the medians); plugin
// overhead under 50 ms per stage (with BenchmarkPipelineOverhead).
//
// Where the time goes (2 shared cores; absolute figures move about 3x from
// machine to machine and with load, the ratio much less):
//   - AutoMTLS made a P-521 key and certificate on each side for every
//     process and signed and verified with them in the handshake: about
//     10 ms of a 70 ms start on an idle machine, 20 to 40 ms on a busy one
//     (a P-521 verification costs 2.7 ms, P-256's 0.08 ms). P-256 keys
//     made by the host brought the start to about 0.55-0.6 times the
//     example's whole process.
//   - Mutual TLS itself then cost a round trip and four signature
//     operations: from the plugin's handshake line to the connection being
//     up took 2.9 to 3.9 ms with it, 0.7 to 1.4 ms with peer credentials
//     and a secret, which replace it on Linux (pluginTransport,
//     stagerpc.EnvAuth; medians of 30, the two in turns, load 5 to 8).
//   - The rest is the plugin process reaching its handshake line: the
//     runtime, some 230 package inits (GODEBUG=inittrace=1; by perf, the
//     largest are protobuf registries, gRPC reflection's descriptors,
//     which go-plugin registers, klauspost/cpuid's CPUID probes through
//     Arrow's hashing (slow in a virtual machine), zstd's CRC tables, gob's
//     type registry for go-plugin's net/rpc) and go-plugin's Serve (its
//     socket file, the stdio pipes). The stream is framed with Arrow's IPC
//     reader and writer directly, not its flight package, whose generated
//     services the SDK linked for that alone: 850 to 765 page faults, and
//     exec to handshake line 8.4 to 7.3 ms (medians of 60 at load 18),
//     against 6.5 ms for the example plugin. OpenTelemetry's OTLP
//     exporters, the next candidate, measured no difference there.
//   - go-plugin's Serve makes a temporary file, removes it and binds its
//     socket in that name: 0.4 to 0.6 ms on ext4, 0.03 ms on tmpfs, where
//     the host's socket directory now is (see socketDir).
//   - A static plugin (sdk.BuildTags) starts without the dynamic loader
//     and cgo's setup: about 1 ms. Offering X25519 alone instead of the
//     hybrid X25519MLKEM768 cuts the TLS handshake where it remains (1.2 ms
//     to 0.6-0.9 ms for both ends in-process).
func BenchmarkPluginStart(b *testing.B) {
	h := benchHost(b)
	ctx := context.Background()
	kv, kvPlugin := buildGoPluginExample(b)
	var start, call, stop, example time.Duration
	starts, examples := make([]time.Duration, 0, b.N), make([]time.Duration, 0, b.N)
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c, err := h.Start(ctx, "test")
		if err != nil {
			b.Fatal(err)
		}
		// Start returns once the connection is up: go-plugin opens its
		// stdio stream, which waits for the TLS handshake.
		t1 := time.Now()
		if _, err := c.Describe(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		c.Kill()
		start += t1.Sub(t0)
		call += t2.Sub(t1)
		stop += time.Since(t2)
		ex := runGoPluginExample(b, kv, kvPlugin)
		example += ex
		starts, examples = append(starts, t1.Sub(t0)), append(examples, ex)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 / float64(b.N) }
	b.ReportMetric(ms(start), "ms/start")
	b.ReportMetric(ms(call), "ms/first-call")
	b.ReportMetric(ms(stop), "ms/stop")
	b.ReportMetric(ms(example), "example-ms")
	b.ReportMetric(float64(start)/float64(example), "ratio")
	b.ReportMetric(float64(start+call)/float64(example), "ratio-with-call")
	// Medians, which a neighbour's burst of load moves less than means.
	b.ReportMetric(float64(median(starts))/float64(median(examples)), "ratio-median")
}

// median is the middle of ds (the upper middle of an even count).
func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// buildGoPluginExample builds go-plugin's examples/grpc host and its Go
// gRPC plugin, from the module cache, with this module's requirements.
func buildGoPluginExample(b *testing.B) (host, plugin string) {
	b.Helper()
	dir := b.TempDir()
	host, plugin = filepath.Join(dir, "kv"), filepath.Join(dir, "kv-go-grpc")
	const pkg = "github.com/hashicorp/go-plugin/examples/grpc"
	for _, build := range [][2]string{{host, pkg}, {plugin, pkg + "/plugin-go-grpc"}} {
		if out, err := exec.Command("go", "build", "-o", build[0], build[1]).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", build[1], err, out)
		}
	}
	return host, plugin
}

// runGoPluginExample runs the example's host once (`kv put`, over gRPC)
// and returns how long the whole process took.
func runGoPluginExample(b *testing.B, host, plugin string) time.Duration {
	b.Helper()
	cmd := exec.Command(host, "put", "answer", "42")
	cmd.Dir = b.TempDir()
	cmd.Env = append(os.Environ(), "KV_PLUGIN="+plugin, "KV_PROTO=grpc")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		b.Fatalf("go-plugin's example: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(cmd.Dir, "kv_answer")); err != nil || !strings.HasPrefix(string(got), "42\n") {
		b.Fatalf("go-plugin's example did not store the value: %q, %v\n%s", got, err, out)
	}
	return took
}

// boundaryColumns and boundaryBatchRows shape the data of
// BenchmarkBoundaryThroughput: 16 float32 columns, 4 MiB batches.
const (
	boundaryColumns   = 16
	boundaryBatchRows = 1 << 16
)

// BenchmarkBoundaryThroughput measures Arrow data crossing the plugin
// boundary in each direction, for 1 MiB to 1 GiB of float32 columns,
// against an in-process copy of the same number of bytes between two
// buffers (the physical limit of moving them), measured in the same
// benchmark. Data go over the gRPC stream (Arrow IPC messages in Flight
// framing, credit flow control, AutoMTLS); to the plugin they also go by
// path (mode=path: the host names a committed Arrow IPC file, which the
// plugin maps, as the runner does with its stages' inputs), each size right
// after the stream's. The plugin's stage costs next to nothing: floats
// sends one buffer over and over; scan, which reads what comes by either
// way, XORs every word of it (a mapped batch costs nothing until its bytes
// are read). Goal: boundary throughput at least half of the in-process copy
// for large batches (ratio >= 0.5).
func BenchmarkBoundaryThroughput(b *testing.B) {
	sizes := []struct {
		name  string
		bytes int64
	}{{"1MiB", 1 << 20}, {"16MiB", 16 << 20}, {"256MiB", 256 << 20}, {"1GiB", 1 << 30}}
	for _, dir := range []string{"to-plugin", "from-plugin"} {
		for _, size := range sizes {
			b.Run(fmt.Sprintf("dir=%s/size=%s", dir, size.name), func(b *testing.B) {
				benchBoundary(b, dir, "stream", size.bytes)
			})
			if dir == "to-plugin" {
				b.Run(fmt.Sprintf("dir=%s/mode=path/size=%s", dir, size.name), func(b *testing.B) {
					benchBoundary(b, dir, "path", size.bytes)
				})
			}
		}
	}
}

// writeRepeated writes rows rows of batch, over and over, as an Arrow IPC
// file, and returns it as an input file.
func writeRepeated(b *testing.B, path string, batch arrow.RecordBatch, rows int64) InputFile {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w, err := ipc.NewFileWriter(bw, ipc.WithSchema(batch.Schema()))
	if err != nil {
		b.Fatal(err)
	}
	in := newRepeatReader(batch, rows)
	defer in.Release()
	for in.Next() {
		if err := w.Write(in.RecordBatch()); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	return InputFile{Path: path, Size: fi.Size()}
}

func benchBoundary(b *testing.B, dir, mode string, size int64) {
	h := benchHost(b)
	ctx := context.Background()
	c, err := h.Start(ctx, "test")
	if err != nil {
		b.Fatal(err)
	}
	rows := size / (4 * boundaryColumns)
	batchRows := min(rows, boundaryBatchRows)
	batch := stages.FloatsBatch(memory.DefaultAllocator, boundaryColumns, batchRows)
	defer batch.Release()

	var req RunRequest
	var got int64
	switch dir {
	case "to-plugin":
		req = RunRequest{Kind: "scan", Stage: "scan.bench"}
		if mode == "path" {
			// Written, and so in the page cache, as a producer's output is
			// when the next stage starts.
			f := writeRepeated(b, filepath.Join(b.TempDir(), "input.arrow"), batch, rows)
			req.InputFiles = map[string][]InputFile{"input": {f}}
		}
	case "from-plugin":
		req = RunRequest{Kind: "floats", Stage: "floats.bench", Config: cty.ObjectVal(map[string]cty.Value{
			"rows":       cty.NumberIntVal(rows),
			"columns":    cty.NumberIntVal(boundaryColumns),
			"batch_rows": cty.NumberIntVal(batchRows),
		}), Outputs: map[string]func(arrow.RecordBatch) error{"table": func(rec arrow.RecordBatch) error {
			got += rec.NumRows()
			return nil
		}}}
	}
	runtime.GC()
	b.SetBytes(size)
	b.ResetTimer()
	var boundary time.Duration
	cpu0 := hostCPU() + pluginCPU(b, c.Pid())
	for i := 0; i < b.N; i++ {
		got = 0
		var in *repeatReader
		if dir == "to-plugin" {
			in = newRepeatReader(batch, rows)
			req.Inputs = map[string]array.RecordReader{"input": in}
			got = rows
		}
		t0 := time.Now()
		res, err := c.Run(ctx, req)
		boundary += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		if mode == "path" && in.left != rows {
			b.Fatal("the input went over the stream, not by path")
		}
		if dir == "from-plugin" && res.RowsOut["table"] != rows {
			b.Fatalf("the plugin wrote %d rows, want %d", res.RowsOut["table"], rows)
		}
		if got != rows {
			b.Fatalf("%d rows crossed, want %d", got, rows)
		}
	}
	b.StopTimer()
	cpu := hostCPU() + pluginCPU(b, c.Pid()) - cpu0
	copyTime := inProcessCopy(size)
	gbps := float64(size) * float64(b.N) / boundary.Seconds() / 1e9
	copyGBps := float64(size) / copyTime.Seconds() / 1e9
	b.ReportMetric(gbps, "GB/s")
	b.ReportMetric(copyGBps, "copy-GB/s")
	b.ReportMetric(gbps/copyGBps, "ratio")
	// CPU time is steadier than wall time on a shared machine: it says
	// what moving the bytes costs, whoever else runs.
	b.ReportMetric(cpu.Seconds()/(float64(size)*float64(b.N)/1e9), "cpu-s/GB")
}

// hostCPU is the CPU time this process has used.
func hostCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pluginCPU is the CPU time a plugin process has used, from
// /proc/PID/stat (in clock ticks of 10 ms).
func pluginCPU(b *testing.B, pid int) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	// After the command: state is field 3, utime 14 and stime 15.
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// inProcessCopy times copying size bytes between two buffers of that size,
// the best of three, once the pages are mapped.
func inProcessCopy(size int64) time.Duration {
	src, dst := make([]byte, size), make([]byte, size)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src)
	best := time.Duration(1<<63 - 1)
	for range 3 {
		t0 := time.Now()
		copy(dst, src)
		best = min(best, time.Since(t0))
	}
	runtime.KeepAlive(dst)
	return best
}

// repeatReader yields one batch over and over (the last time cut short)
// until it has yielded rows rows.
type repeatReader struct {
	batch  arrow.RecordBatch
	left   int64
	cur    arrow.RecordBatch
	refs   int64
	schema *arrow.Schema
}

func newRepeatReader(batch arrow.RecordBatch, rows int64) *repeatReader {
	return &repeatReader{batch: batch, left: rows, refs: 1, schema: batch.Schema()}
}

func (r *repeatReader) Retain()                        { r.refs++ }
func (r *repeatReader) Schema() *arrow.Schema          { return r.schema }
func (r *repeatReader) RecordBatch() arrow.RecordBatch { return r.cur }
func (r *repeatReader) Record() arrow.RecordBatch      { return r.cur }
func (r *repeatReader) Err() error                     { return nil }
func (r *repeatReader) Release() {
	if r.refs--; r.refs == 0 && r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
}

func (r *repeatReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.left <= 0 {
		return false
	}
	n := min(r.left, r.batch.NumRows())
	r.cur = r.batch.NewSlice(0, n)
	r.left -= n
	return true
}

// BenchmarkLockedPluginStart is BenchmarkPluginStart for a plugin the lock
// file locks (the test plugin, 36 MB): the start also checks the
// executable's sha256, and runs the checked copy of its bytes (see
// execCache). host=shared starts it again and again from one host, as a run
// starts a plugin for each of its stages (the file was hashed once, by the
// first start); host=new uses a new host for each start, as each sweetspot
// command does (the file is hashed, the copy found); cache=cold also
// empties the cache of checked copies first (the file is hashed and
// copied: what the first start of a newly installed build pays).
func BenchmarkLockedPluginStart(b *testing.B) {
	dir := b.TempDir()
	exe := filepath.Join(pluginDir, "sweetspot-plugin-test")
	lock := filepath.Join(dir, lockfile.FileName)
	sum, err := lockfile.HashFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	if err := lockfile.Write(lock, &lockfile.File{Plugins: map[string]*lockfile.Plugin{"test": {Name: "test", Source: "./test", Version: "1",
		Hashes: map[string]string{lockfile.Platform(): lockfile.FormatHash(sum)}}}}); err != nil {
		b.Fatal(err)
	}
	newLocked := func(b *testing.B) *Host {
		h, err := New(WithSearchPaths(pluginDir), WithLockFile(lock),
			WithLogger(hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: os.Stderr})))
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	for _, mode := range []string{"host=shared", "host=new", "host=new/cache=cold"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			shared := newLocked(b)
			defer shared.Close()
			if _, err := shared.Start(ctx, "test"); err != nil { // the cache is warm
				b.Fatal(err)
			}
			var start time.Duration
			for i := 0; i < b.N; i++ {
				h := shared
				if mode != "host=shared" {
					if mode == "host=new/cache=cold" {
						b.StopTimer()
						cache := filepath.Join(b.TempDir(), "cache")
						os.Setenv(EnvExecCache, cache)
						b.StartTimer()
					}
					h = newLocked(b)
				}
				t0 := time.Now()
				c, err := h.Start(ctx, "test")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Describe(ctx); err != nil {
					b.Fatal(err)
				}
				start += time.Since(t0)
				c.Kill()
				if h != shared {
					h.Close()
				}
			}
			b.ReportMetric(float64(start.Microseconds())/1e3/float64(b.N), "ms/start")
		})
	}
	os.Setenv(EnvExecCache, filepath.Join(pluginDir, "cache"))
}

// BenchmarkLockCheck is the part of BenchmarkLockedPluginStart that is
// the check, without the process: for the test plugin (36 MB), memo is a
// file this host already checked (a stat), hash a file it has not, whose
// checked copy exists (one read), copy a new build (one read to hash it,
// one more as it is copied and hashed again). Before the checked copy, each
// start paid two reads (the check and go-plugin's SecureConfig): 2 × hash.
func BenchmarkLockCheck(b *testing.B) {
	exe := filepath.Join(pluginDir, "sweetspot-plugin-test")
	want, err := lockfile.HashFile(exe)
	if err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(exe)
	for _, mode := range []string{"memo", "hash", "copy"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(fi.Size())
			x := newExecCache(filepath.Join(b.TempDir(), "cache"))
			if _, _, err := x.checked(exe, want); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				switch mode {
				case "hash":
					x.memo = map[string]memoSum{}
					x.copies = map[string]string{}
				case "copy":
					b.StopTimer()
					x = newExecCache(filepath.Join(b.TempDir(), "cache"))
					b.StartTimer()
				}
				if _, _, err := x.checked(exe, want); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
