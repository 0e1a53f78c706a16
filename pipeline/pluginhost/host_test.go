package pluginhost

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"github.com/zclconf/go-cty/cty"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/sdktest"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// pluginDir holds the test plugin, built once by TestMain.
var pluginDir string

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		// This process is a fake plugin (TestHelperProcess): build nothing.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "pluginhost-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginDir = dir
	// The checked copies of locked plugins go to a cache of the tests' own.
	os.Setenv(EnvExecCache, filepath.Join(dir, "cache"))
	out, err := exec.Command("go", "build", "-tags", sdk.BuildTags, "-o", filepath.Join(dir, sdk.PluginPrefix+"test"), "../../internal/testkit").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building the test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newHost(t *testing.T, opts ...Option) (*Host, *memory.CheckedAllocator) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	opts = append([]Option{
		WithSearchPaths(pluginDir),
		WithAllocator(mem),
		WithLogger(hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: newSyncLog(t)})),
	}, opts...)
	h, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		mem.AssertSize(t, 0)
	})
	return h, mem
}

// syncLog sends host logs to the test log until the test ends.
type syncLog struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func newSyncLog(t *testing.T) *syncLog {
	l := &syncLog{t: t}
	t.Cleanup(func() {
		l.mu.Lock()
		l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func start(t *testing.T, h *Host, name string) *Client {
	t.Helper()
	c, err := h.Start(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func emitConfig(rows, batch int64) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(rows), "batch_rows": cty.NumberIntVal(batch)})
}

func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("plugin process %d is still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestResolve(t *testing.T) {
	// A plugin built against another protocol version.
	old := filepath.Join(t.TempDir(), sdk.PluginPrefix+"old")
	script := "#!/bin/sh\necho '{\"name\":\"old\",\"protocol_version\":2,\"stages\":[{\"kind\":\"ancient\"}]}'\n"
	if err := os.WriteFile(old, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(filepath.Dir(old), sdk.PluginPrefix+"broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'no such flag' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Plugins named unlike their kinds: a kind one of them alone provides
	// resolves to it; a kind both provide is ambiguous.
	for name, kinds := range map[string]string{"multi": `{"kind":"solo"},{"kind":"dup"}`, "other": `{"kind":"dup"}`} {
		desc := fmt.Sprintf(`{"name":%q,"version":"1.0.0","protocol_version":1,"stages":[%s]}`, name, kinds)
		script := "#!/bin/sh\necho '" + desc + "'\n"
		if err := os.WriteFile(filepath.Join(filepath.Dir(old), sdk.PluginPrefix+name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := newHost(t,
		WithSearchPaths(pluginDir, filepath.Dir(old)),
		WithBuiltin(stages.NewSet("builtin"), []string{filepath.Join(pluginDir, sdk.PluginPrefix+"test")}),
	)
	// The test kit's kinds, as it lists them: it grows with every feature
	// the host's tests need.
	var testKinds []string
	for _, st := range stages.NewSet("test").Describe().Stages {
		testKinds = append(testKinds, st.Kind)
	}
	tests := []struct {
		kind, plugin string
		want         string // plugin name, or an error fragment
		wantErr      bool
	}{
		{"emit", "", "builtin", false},
		{"emit", "test", "test", false},
		{"emit", "builtin", "builtin", false},
		{"nosuch", "", `unknown stage kind "nosuch": the built-in plugin does not have it and no plugin named "nosuch"`, true},
		{"nosuch", "test", `plugin "test" has no stage kind "nosuch" (it has ` + strings.Join(testKinds, ", ") + ")", true},
		{"emit", "missing", `no plugin named "missing": looked for sweetspot-plugin-missing in ` + pluginDir, true},
		{"ancient", "old", "speaks stage protocol version 2, but this sweetspot speaks version 1", true},
		{"x", "broken", "describe failed: exit status 2: no such flag", true},
		{"solo", "", "multi", false},
		{"dup", "", `stage kind "dup" is provided by several plugins: "multi"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.plugin, func(t *testing.T) {
			d, err := h.Resolve(tt.kind, tt.plugin)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error = %v, want one containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Name != tt.want {
				t.Errorf("resolved to %q, want %q", d.Name, tt.want)
			}
		})
	}

	wantKinds := append([]string{"dup", "solo"}, testKinds...)
	sort.Strings(wantKinds)
	if diff := cmp.Diff(wantKinds, h.Kinds()); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}

	plugins, err := h.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plugins {
		s := p.Name
		if p.Builtin {
			s += " (builtin)"
		}
		if p.Err != nil {
			s += " error"
		}
		got = append(got, s)
	}
	// Without a lock file nothing is locked: Plugins runs none of them (the
	// broken ones are not found broken).
	if diff := cmp.Diff([]string{"builtin (builtin)", "broken", "multi", "old", "other", "test"}, got); diff != "" {
		t.Errorf("plugins (-want +got):\n%s", diff)
	}
	for _, p := range plugins {
		if !p.Builtin && (!p.NotRun || p.Description != nil || p.Checksum != ChecksumUnlocked) {
			t.Errorf("Plugins described the unlocked plugin %s: %+v", p.Name, p)
		}
	}
}

func TestDescribeIsCached(t *testing.T) {
	dir := t.TempDir()
	counter := filepath.Join(dir, "count")
	bin := filepath.Join(dir, sdk.PluginPrefix+"counted")
	script := fmt.Sprintf("#!/bin/sh\necho x >> %s\necho '{\"name\":\"counted\",\"protocol_version\":1,\"stages\":[{\"kind\":\"k\"}]}'\n", counter)
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, WithSearchPaths(dir))
	for i := 0; i < 3; i++ {
		if _, err := h.Resolve("k", "counted"); err != nil {
			t.Fatal(err)
		}
	}
	runs := func() int {
		b, _ := os.ReadFile(counter)
		return strings.Count(string(b), "x")
	}
	if n := runs(); n != 1 {
		t.Errorf("describe ran %d times, want 1", n)
	}
	// A rebuilt plugin (new size) is described again.
	if err := os.WriteFile(bin, []byte(script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Resolve("k", "counted"); err != nil {
		t.Fatal(err)
	}
	if n := runs(); n != 2 {
		t.Errorf("describe ran %d times after a rebuild, want 2", n)
	}
}

// TestLargeRoundTrip streams more than the gRPC message limit both ways
// through real processes and checks every row arrives unchanged.
func TestLargeRoundTrip(t *testing.T) {
	h, mem := newHost(t)
	c := start(t, h, "test")
	ctx := context.Background()
	const rows = 2_000_000

	var got []arrow.RecordBatch
	defer func() {
		for _, b := range got {
			b.Release()
		}
	}()
	res, err := c.Run(ctx, RunRequest{
		Kind: "emit", Stage: "emit.big", Config: emitConfig(rows, 1_000_000),
		Outputs: map[string]func(arrow.RecordBatch) error{"table": func(b arrow.RecordBatch) error {
			b.Retain()
			got = append(got, b)
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsOut["table"] != rows {
		t.Fatalf("rows out = %v", res.RowsOut)
	}
	// 1M-row batches are ~30 MB each: they must have been split.
	if len(got) < 10 {
		t.Errorf("received %d batches, want the 1M-row batches split", len(got))
	}
	checkRows(t, got, rows)

	// And back through passthrough, as an input stream.
	in, err := array.NewRecordReader(stages.TableSchema, got)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Release()
	var back []arrow.RecordBatch
	defer func() {
		for _, b := range back {
			b.Release()
		}
	}()
	res, err = c.Run(ctx, RunRequest{
		Kind: "passthrough", Stage: "passthrough.copy",
		Inputs: map[string]array.RecordReader{"input": in}, InputOrder: []string{"input"},
		Outputs: map[string]func(arrow.RecordBatch) error{"output": func(b arrow.RecordBatch) error {
			b.Retain()
			back = append(back, b)
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.RowsOut["output"] != rows {
		t.Fatalf("rows out = %v", res.RowsOut)
	}
	checkRows(t, back, rows)

	// Nothing leaked in the plugin either.
	if _, err := c.Run(ctx, RunRequest{Kind: "memcheck", Stage: "memcheck.after"}); err != nil {
		t.Errorf("plugin side: %v", err)
	}
	_ = mem
}

// checkRows verifies batches hold rows 0..n-1 of emit's table in order.
func checkRows(t *testing.T, bs []arrow.RecordBatch, n int64) {
	t.Helper()
	var next int64
	for _, b := range bs {
		if !b.Schema().Equal(stages.TableSchema) {
			t.Fatalf("schema = %v", b.Schema())
		}
		ids := b.Column(0).(*array.Int64)
		xs := b.Column(1).(*array.Float64)
		ls := b.Column(2).(*array.String)
		for i := 0; i < ids.Len(); i++ {
			if ids.Value(i) != next || xs.Value(i) != float64(next)*0.5 || ls.Value(i) != fmt.Sprintf("label-%d", next) {
				t.Fatalf("row %d = (%d, %v, %q)", next, ids.Value(i), xs.Value(i), ls.Value(i))
			}
			next++
		}
	}
	if next != n {
		t.Fatalf("got %d rows, want %d", next, n)
	}
}

func TestSchemaMismatch(t *testing.T) {
	h, _ := newHost(t)
	c := start(t, h, "test")
	_, err := c.Run(context.Background(), RunRequest{Kind: "badschema", Stage: "badschema.b"})
	if !errors.Is(err, sdk.ErrSchemaMismatch) {
		t.Fatalf("error = %v, want a schema mismatch", err)
	}
	var re *RunError
	if !errors.As(err, &re) || re.Kind != KindSchemaMismatch || re.Port != "out" {
		t.Fatalf("error = %#v", err)
	}
	want := `stage badschema.b (plugin test): output port "out": schema mismatch: batch does not match the declared schema: column x is float64, declared int64`
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
}

func TestCrash(t *testing.T) {
	h, _ := newHost(t)
	c := start(t, h, "test")
	pid := c.Pid()
	if pid <= 0 || processGone(pid) {
		t.Fatalf("pid %d is not a running process", pid)
	}
	var batches int
	_, err := c.Run(context.Background(), RunRequest{Kind: "crash", Stage: "crash.c",
		Outputs: map[string]func(arrow.RecordBatch) error{"table": func(arrow.RecordBatch) error { batches++; return nil }},
	})
	if !errors.Is(err, ErrPluginCrashed) {
		t.Fatalf("error = %v, want ErrPluginCrashed", err)
	}
	msg := err.Error()
	want := "stage crash.c (plugin test): the plugin process exited (exit status 3) before the stage finished:\ntestkit: crashing on purpose"
	if msg != want {
		t.Errorf("message:\n got %s\nwant %s", msg, want)
	}
	for _, want := range []string{"stage crash.c", "plugin test", "exited (exit status 3)", "crashing on purpose"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "rpc error") || strings.Contains(msg, "code =") {
		t.Errorf("error leaks gRPC wording: %q", msg)
	}
	waitGone(t, pid)
}

func TestCancelStopsPlugin(t *testing.T) {
	h, _ := newHost(t)
	c := start(t, h, "test")
	pid := c.Pid()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := c.Run(ctx, RunRequest{Kind: "block", Stage: "block.b"})
	var re *RunError
	if !errors.As(err, &re) || re.Kind != KindCanceled || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want a canceled run", err)
	}
	waitGone(t, pid)
	if d := time.Since(began); d > 4*time.Second {
		t.Errorf("stopping took %v", d)
	}
}

// TestBackpressure runs a fast producer against a slow consumer: the
// producer must wait for credit, so no more than the window of messages is
// ever queued at the host, while the window does fill.
func TestBackpressure(t *testing.T) {
	var mu sync.Mutex
	maxQueued := 0
	h, _ := newHost(t)
	h.deliveryHook = func(port string, queued int) {
		mu.Lock()
		maxQueued = max(maxQueued, queued)
		mu.Unlock()
	}
	c := start(t, h, "test")
	var n int
	_, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.fast", Config: emitConfig(150, 1),
		Outputs: map[string]func(arrow.RecordBatch) error{"table": func(arrow.RecordBatch) error {
			n++
			time.Sleep(3 * time.Millisecond)
			return nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 150 {
		t.Fatalf("consumed %d batches", n)
	}
	if maxQueued > stagerpc.InitialCredit {
		t.Errorf("up to %d messages queued, want at most %d", maxQueued, stagerpc.InitialCredit)
	}
	if maxQueued < stagerpc.InitialCredit-1 {
		t.Errorf("at most %d messages queued: the producer never got ahead, so the test proved nothing", maxQueued)
	}
}

func TestConfigureAndConfigError(t *testing.T) {
	h, _ := newHost(t)
	c := start(t, h, "test")
	diags, err := c.Configure(context.Background(), "emit", cty.ObjectVal(map[string]cty.Value{"rows": cty.NumberIntVal(-1)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 1 || strings.Join(diags[0].Path, ".") != "rows" || diags[0].Summary != "Invalid row count" {
		t.Errorf("diagnostics = %+v", diags)
	}
	_, err = c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.bad",
		Config: cty.ObjectVal(map[string]cty.Value{"rows": cty.StringVal("lots")})})
	var ds sdk.Diagnostics
	if !errors.As(err, &ds) || len(ds) != 1 || ds[0].Path[0] != "rows" {
		t.Errorf("error = %v, want config diagnostics on rows", err)
	}
}

func TestCloseKillsEveryProcess(t *testing.T) {
	h, _ := newHost(t)
	a, b := start(t, h, "test"), start(t, h, "test")
	if a.Pid() == b.Pid() {
		t.Fatal("Start reused a process")
	}
	h.Close()
	waitGone(t, a.Pid())
	waitGone(t, b.Pid())
	h.Close()
	if _, err := h.Start(context.Background(), "test"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestBuiltinRunsOutOfProcess(t *testing.T) {
	h, _ := newHost(t, WithSearchPaths(), WithBuiltin(stages.NewSet("builtin"), []string{filepath.Join(pluginDir, sdk.PluginPrefix+"test")}))
	d, err := h.Resolve("emit", "")
	if err != nil || d.Name != "builtin" {
		t.Fatalf("Resolve = %v, %v", d, err)
	}
	c := start(t, h, "builtin")
	if c.Pid() == os.Getpid() {
		t.Fatal("the built-in plugin runs in the host process")
	}
	res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.b", Config: emitConfig(10, 3)})
	if err != nil || res.RowsOut["table"] != 10 {
		t.Fatalf("Run = %v, %v", res, err)
	}
}

// TestReattach serves the stages in this process, as `PLUGIN -debug` does,
// and has the host attach to it through SWEETSPOT_REATTACH.
func TestReattach(t *testing.T) {
	rc := sdktest.Serve(t, stages.NewSet("dbg"))
	js, err := json.Marshal(map[string]stagerpc.Reattach{"dbg": stagerpc.ReattachOf(rc)})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(stagerpc.EnvReattach, string(js))
	h, _ := newHost(t)
	c := start(t, h, "dbg")
	if c.Pid() != os.Getpid() {
		t.Errorf("pid = %d, want this process", c.Pid())
	}
	res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.dbg", Config: emitConfig(5, 2)})
	if err != nil || res.RowsOut["table"] != 5 {
		t.Fatalf("Run = %v, %v", res, err)
	}
}

// TestTraceCrossesProcesses checks that the plugin process records its
// spans in the host's trace, its server span a child of the host's span.
func TestTraceCrossesProcesses(t *testing.T) {
	dir := t.TempDir()
	h, _ := newHost(t, WithTraceDir(dir))
	c := start(t, h, "test")
	tp := sdktrace.NewTracerProvider()
	defer func() { _ = tp.Shutdown(context.Background()) }()
	ctx, span := tp.Tracer("host").Start(context.Background(), "stage emit.t")
	_, err := c.Run(ctx, RunRequest{Kind: "emit", Stage: "emit.t", Config: emitConfig(10, 10)})
	span.End()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "plugin-test-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("trace files = %v", files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type spanJSON struct {
		Name        string
		SpanContext struct{ TraceID, SpanID string }
		Parent      struct{ TraceID, SpanID string }
		Attributes  []struct {
			Key   string
			Value struct{ Value any }
		}
	}
	byName := map[string]spanJSON{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s spanJSON
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("span line: %v", err)
		}
		byName[s.Name] = s
	}
	// The stage span is on disk by the time the result arrives: the host
	// may kill the plugin right after a run.
	stage, ok := byName["stage emit"]
	if !ok {
		t.Fatalf("no stage span in %v", byName)
	}
	hostSC := span.SpanContext()
	if stage.SpanContext.TraceID != hostSC.TraceID().String() || stage.Parent.SpanID != hostSC.SpanID().String() {
		t.Errorf("stage span: trace %s parent %s, want trace %s parent %s (the host span)",
			stage.SpanContext.TraceID, stage.Parent.SpanID, hostSC.TraceID(), hostSC.SpanID())
	}
	attrs := map[string]any{}
	for _, a := range stage.Attributes {
		attrs[a.Key] = a.Value.Value
	}
	if attrs["plugin"] != "test" || attrs["kind"] != "emit" || attrs["pid"] != float64(c.Pid()) {
		t.Errorf("stage span attributes = %v", attrs)
	}
}

// TestDebugMode runs the plugin as a developer would under a debugger
// (`PLUGIN -debug`), and attaches the host to it with the line it prints.
func TestDebugMode(t *testing.T) {
	cmd := exec.Command(filepath.Join(pluginDir, sdk.PluginPrefix+"test"), "-debug")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the debug-mode plugin did not stop on interrupt")
		}
	}()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var env string
	deadline := time.After(10 * time.Second)
	for env == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the plugin printed no reattach line")
			}
			if v, found := strings.CutPrefix(strings.TrimSpace(l), stagerpc.EnvReattach+"="); found {
				env = strings.Trim(v, "'")
			}
		case <-deadline:
			t.Fatal("no reattach line within 10s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	t.Setenv(stagerpc.EnvReattach, env)
	h, _ := newHost(t)
	c := start(t, h, "test")
	if c.Pid() != cmd.Process.Pid {
		t.Errorf("pid = %d, want the debug process %d", c.Pid(), cmd.Process.Pid)
	}
	res, err := c.Run(context.Background(), RunRequest{Kind: "emit", Stage: "emit.debug", Config: emitConfig(7, 3)})
	if err != nil || res.RowsOut["table"] != 7 {
		t.Fatalf("Run = %v, %v", res, err)
	}
}
