package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// These tests drive the real binary, as a user would: built once, with the
// test plugin kit and the third-party example plugin built beside it.
var (
	binary    string
	pluginDir string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sweetspot-cli-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "sweetspot")
	pluginDir = filepath.Join(dir, "plugins")
	builds := []*exec.Cmd{
		exec.Command("go", "build", "-o", binary, "."),
		exec.Command("go", "build", "-o", filepath.Join(pluginDir, "sweetspot-plugin-testkit"), "../../internal/testkit"),
	}
	ex := exec.Command("go", "build", "-o", filepath.Join(pluginDir, "sweetspot-plugin-standardize"), ".")
	ex.Dir = "../../examples/plugins/standardize"
	builds = append(builds, ex)
	for _, b := range builds {
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			os.RemoveAll(dir)
			panic("build " + strings.Join(b.Args, " ") + ": " + err.Error())
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	code           int
	stdout, stderr string
}

// sweetspot runs the binary in dir with args.
func sweetspot(t *testing.T, dir string, args ...string) result {
	t.Helper()
	return sweetspotWith(t, dir, []string{"SWEETSPOT_PLUGIN_PATH=" + pluginDir}, args...)
}

// sweetspotWith runs the binary in dir with args and env added to (and
// overriding) the test's environment.
func sweetspotWith(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "NO_COLOR=1", "OTEL_TRACES_EXPORTER=none"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func writeFile(t testing.TB, dir, name, src string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func onlyRun(t *testing.T, dir string) runstore.Manifest {
	t.Helper()
	store := runstore.Open(filepath.Join(dir, runstore.DefaultRoot))
	ids, err := store.IDs()
	if err != nil || len(ids) != 1 {
		t.Fatalf("want exactly one run, got %v (%v)", ids, err)
	}
	run, err := store.Load(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	return run.Manifest()
}

func assertGone(t *testing.T, m runstore.Manifest) {
	t.Helper()
	for _, s := range m.Stages {
		if s.Pid == 0 {
			continue
		}
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(s.Pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("plugin process %d (stage %s) outlived the host", s.Pid, s.Addr)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestValidateReportsEveryMistakeAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pipeline.hcl", `dataset "d" {
  generator = "blobs"
}

stage "requirements" "sla" {
  dataset      = dataset.dta
  min_accuracy = "high"
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  widht  = { min = 4, max = 64 }
}
`)
	r := sweetspot(t, dir, "validate", "pipeline.hcl")
	if r.code != exitInvalid {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", r.code, exitInvalid, r.stderr)
	}
	for _, want := range []string{"pipeline.hcl:6:18", "dataset.d", "pipeline.hcl:7:18", "number", "pipeline.hcl:12:3", `"width"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "Error: "); n < 3 {
		t.Errorf("want 3 errors, got %d:\n%s", n, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".sweetspot")); err == nil {
		t.Error("validate created a run directory")
	}
}

func TestRunThirdPartyPluginBetweenBuiltins(t *testing.T) {
	dir := t.TempDir()
	example, _ := filepath.Abs("../../examples/standardize")
	r := sweetspot(t, dir, "run", example)
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	m := onlyRun(t, dir)
	pids := map[int]bool{os.Getpid(): true}
	plugins := map[string]string{}
	for _, s := range m.Stages {
		if s.Status != runstore.StatusSucceeded {
			t.Errorf("stage %s: %s %s", s.Addr, s.Status, s.Error)
		}
		if pids[s.Pid] {
			t.Errorf("stage %s did not run in a process of its own (pid %d)", s.Addr, s.Pid)
		}
		pids[s.Pid] = true
		plugins[s.Addr] = s.Plugin
	}
	if plugins["standardize.scale"] != "standardize" || plugins["requirements.sla"] != "builtin" {
		t.Errorf("plugins by stage: %v", plugins)
	}
	runDir := filepath.Join(dir, runstore.DefaultRoot, m.RunID)

	// The standardized data open with a plain Arrow IPC reader and hold
	// every row, with train-split features at mean 0 and deviation 1.
	batch := readArrowFile(t, filepath.Join(runDir, runstore.OutputRel("standardize.scale", 0, "data")))
	defer batch.Release()
	if batch.NumRows() != 2000 {
		t.Fatalf("standardized rows = %d, want 2000", batch.NumRows())
	}
	split := batch.Column(batch.Schema().FieldIndices("split")[0]).(*array.String)
	checked := 0
	for i, f := range batch.Schema().Fields() {
		col, ok := batch.Column(i).(*array.Float64)
		if !ok || f.Name == "split" {
			continue
		}
		var n, sum, sq float64
		for k := 0; k < col.Len(); k++ {
			if split.Value(k) == "train" {
				n++
				sum += col.Value(k)
				sq += col.Value(k) * col.Value(k)
			}
		}
		mean := sum / n
		std := math.Sqrt(sq/n - mean*mean)
		if math.Abs(mean) > 1e-9 || math.Abs(std-1) > 1e-6 {
			t.Errorf("column %s on train rows: mean %g std %g, want 0 and 1", f.Name, mean, std)
		}
		checked++
	}
	if checked < 4 {
		t.Errorf("checked %d feature columns, want 4", checked)
	}
	req := readArrowFile(t, filepath.Join(runDir, runstore.OutputRel("requirements.sla", 0, "requirements")))
	defer req.Release()
	if req.NumRows() != 1 {
		t.Errorf("requirements rows = %d, want 1", req.NumRows())
	}
	if !strings.Contains(r.stdout, m.TraceID) {
		t.Errorf("stdout does not print the trace id %s:\n%s", m.TraceID, r.stdout)
	}
}

// readArrowFile reads a whole Arrow IPC file into one batch.
func readArrowFile(t *testing.T, path string) arrow.RecordBatch {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		t.Fatalf("%s is not an Arrow file: %v", path, err)
	}
	defer r.Close()
	var batches []arrow.RecordBatch
	for i := 0; i < r.NumRecords(); i++ {
		b, err := r.RecordBatchAt(i)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release()
		batches = append(batches, b)
	}
	if len(batches) == 0 {
		return array.NewRecordBatch(r.Schema(), nil, 0)
	}
	cols := make([]arrow.Array, r.Schema().NumFields())
	var rows int64
	for _, b := range batches {
		rows += b.NumRows()
	}
	for i := range cols {
		parts := make([]arrow.Array, len(batches))
		for k, b := range batches {
			parts[k] = b.Column(i)
		}
		col, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			t.Fatal(err)
		}
		defer col.Release()
		cols[i] = col
	}
	return array.NewRecordBatch(r.Schema(), cols, rows)
}

func TestCrashedPluginExitsOneAndKeepsFinishedOutputs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "emit" "first" {
  plugin = "testkit"
  rows   = 7
}
stage "double" "then" {
  plugin = "testkit"
  input  = stage.emit.first
}
stage "crash" "boom" {
  plugin = "testkit"
}
stage "double" "never" {
  plugin = "testkit"
  input  = stage.crash.boom
}
`)
	r := sweetspot(t, dir, "run", "--parallel", "1", "p.hcl")
	if r.code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"crash.boom", "testkit"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	m := onlyRun(t, dir)
	assertGone(t, m)
	for _, s := range m.Stages {
		if s.Status != runstore.StatusSucceeded {
			continue
		}
		for _, f := range s.Outputs {
			b := readArrowFile(t, filepath.Join(dir, runstore.DefaultRoot, m.RunID, f.Path))
			if b.NumRows() != f.Rows {
				t.Errorf("%s: %d rows on disk, manifest says %d", f.Path, b.NumRows(), f.Rows)
			}
			b.Release()
		}
	}
}

func TestTimeoutExitsOne(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "block" "stuck" {
  plugin  = "testkit"
  timeout = "500ms"
}
`)
	r := sweetspot(t, dir, "run", "p.hcl")
	if r.code != exitFailed || !strings.Contains(r.stderr, "timeout") {
		t.Fatalf("exit %d, want 1 with a timeout message:\n%s", r.code, r.stderr)
	}
	assertGone(t, onlyRun(t, dir))
}

func TestInterruptStopsEveryPlugin(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "block" "a" {
  plugin = "testkit"
}
stage "block" "b" {
  plugin = "testkit"
}
`)
	cmd := exec.Command(binary, "run", "--json", "p.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := 0
	sc := bufio.NewScanner(stdout)
	for started < 2 && sc.Scan() {
		var e struct{ Type string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "stage_started" {
			started++
		}
	}
	if started < 2 {
		t.Fatalf("stages never started:\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("interrupted run exited with %v, want non-zero", err)
	}
	m := onlyRun(t, dir)
	if m.Status != runstore.StatusCanceled {
		t.Errorf("status %s, want canceled", m.Status)
	}
	assertGone(t, m)
}

func TestHelpExplainsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"validate", "--help"}, {"fmt", "--help"}, {"graph", "--help"}, {"plugins", "--help"}, {"runs", "--help"}} {
		r := sweetspot(t, t.TempDir(), args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%v: exit %d, output:\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := sweetspot(t, t.TempDir(), "run"); r.code != exitInvalid {
		t.Errorf("run without a path: exit %d, want %d", r.code, exitInvalid)
	}
}

func TestFmtCheck(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "p.hcl", "locals {\n  a=1\n    bb = 2\n}\n")
	if r := sweetspot(t, dir, "fmt", "--check", "p.hcl"); r.code != exitInvalid || !strings.Contains(r.stdout, "p.hcl") {
		t.Fatalf("fmt --check on an unformatted file: exit %d, stdout %q", r.code, r.stdout)
	}
	if r := sweetspot(t, dir, "fmt", "p.hcl"); r.code != 0 {
		t.Fatalf("fmt: exit %d %s", r.code, r.stderr)
	}
	got, _ := os.ReadFile(path)
	if want := "locals {\n  a  = 1\n  bb = 2\n}\n"; string(got) != want {
		t.Errorf("formatted:\n%s\nwant:\n%s", got, want)
	}
	if r := sweetspot(t, dir, "-check", "p.hcl"); r.code == 0 {
		// "-check" alone is not a command; make sure it is not silently accepted.
		t.Errorf("bare -check accepted")
	}
	if r := sweetspot(t, dir, "fmt", "-check", "p.hcl"); r.code != 0 {
		t.Errorf("fmt -check on a formatted file: exit %d %s", r.code, r.stderr)
	}
}

// fmt rewrites a file through a symlink in place of the file it leads
// to, keeps its permissions, and leaves no temporary file behind.
func TestFmtKeepsLinksAndPermissions(t *testing.T) {
	dir := t.TempDir()
	real := writeFile(t, dir, "real.hcl", "locals {\n  a=1\n}\n")
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.hcl", filepath.Join(dir, "p.hcl")); err != nil {
		t.Fatal(err)
	}
	if r := sweetspot(t, dir, "fmt", "p.hcl"); r.code != 0 {
		t.Fatalf("fmt: exit %d %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(real); string(got) != "locals {\n  a = 1\n}\n" {
		t.Errorf("the link's target holds %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "p.hcl")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("p.hcl is no longer a symlink: %v %v", fi.Mode(), err)
	}
	if fi, _ := os.Stat(real); fi.Mode().Perm() != 0o640 {
		t.Errorf("the file's mode is %v, want 0640", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("the directory holds %d entries, want the file and the link", len(entries))
	}
}

func TestGraphPrintsDOT(t *testing.T) {
	example, _ := filepath.Abs("../../examples/standardize")
	r := sweetspot(t, t.TempDir(), "graph", example)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.HasPrefix(strings.TrimSpace(r.stdout), "digraph") || !regexp.MustCompile(`standardize\.scale`).MatchString(r.stdout) {
		t.Errorf("not a DOT graph of the pipeline:\n%s", r.stdout)
	}
}

func TestDatasetPathIsRelativeToThePipelineFile(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "project")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	iris, err := os.ReadFile("../../testdata/datasets/sklearn/iris.csv")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, sub, "iris.csv", string(iris))
	writeFile(t, sub, "p.hcl", `
dataset "iris" {
  path = "iris.csv"
}
stage "requirements" "r" {
  dataset = dataset.iris
}
`)
	r := sweetspot(t, dir, "run", "project/p.hcl")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	m := onlyRun(t, dir)
	b := readArrowFile(t, filepath.Join(dir, runstore.DefaultRoot, m.RunID, runstore.OutputRel("requirements.r", 0, "requirements")))
	defer b.Release()
	rows := b.Column(b.Schema().FieldIndices("n_rows")[0]).(*array.Int64).Value(0)
	classes := b.Column(b.Schema().FieldIndices("n_classes")[0]).(*array.Int32).Value(0)
	if rows != 150 || classes != 3 {
		t.Errorf("iris profiled as %d rows, %d classes; want 150, 3", rows, classes)
	}
}

func TestKilledHostLeavesNoPlugin(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "block" "a" {
  plugin = "testkit"
}
`)
	cmd := exec.Command(binary, "run", "--json", "p.hcl")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var e struct{ Type string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Type == "stage_started" {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, stdout)
	_ = cmd.Wait()
	m := onlyRun(t, dir)
	if len(m.Stages) != 1 || m.Stages[0].Pid == 0 {
		t.Fatalf("manifest lacks the plugin pid: %+v", m.Stages)
	}
	assertGone(t, m)
}

func TestRunsExportOpensInEveryFormat(t *testing.T) {
	dir := t.TempDir()
	example, _ := filepath.Abs("../../examples/standardize")
	if r := sweetspot(t, dir, "run", "-q", example); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	id := onlyRun(t, dir).RunID
	for _, format := range []string{"parquet", "csv", "arrow"} {
		out := filepath.Join(dir, "data."+format)
		r := sweetspot(t, dir, "runs", "export", id, "--port", "data", "--stage", "standardize.scale", "--format", format, "-o", out)
		if r.code != 0 {
			t.Fatalf("export %s: exit %d\n%s", format, r.code, r.stderr)
		}
		var rows int64
		switch format {
		case "parquet":
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			pf, err := file.NewParquetReader(f)
			if err != nil {
				t.Fatalf("parquet: %v", err)
			}
			rows = pf.NumRows()
			pf.Close()
		case "csv":
			data, _ := os.ReadFile(out)
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if !strings.Contains(lines[0], "split") {
				t.Errorf("CSV header %q lacks the split column", lines[0])
			}
			rows = int64(len(lines) - 1)
		case "arrow":
			b := readArrowFile(t, out)
			rows = b.NumRows()
			b.Release()
		}
		if rows != 2000 {
			t.Errorf("%s export holds %d rows, want 2000", format, rows)
		}
	}
	// Two stages have a "data" port: without --stage the user must choose.
	if r := sweetspot(t, dir, "runs", "export", id, "--port", "data"); r.code != exitInvalid || !strings.Contains(r.stderr, "--stage") {
		t.Errorf("ambiguous export: exit %d, stderr %q", r.code, r.stderr)
	}
}

// What -o names is written as what it is: /dev/stdout and a named pipe
// are written in place (the pipe stays a pipe), a directory is refused,
// and a regular file reached through a symlink is replaced at the link's
// target, the link kept.
func TestOutputsGoWhereTheUserSays(t *testing.T) {
	dir := t.TempDir()
	example, _ := filepath.Abs("../../examples/standardize")
	if r := sweetspot(t, dir, "run", "-q", example); r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	id := onlyRun(t, dir).RunID
	export := func(out string) result {
		return sweetspot(t, dir, "runs", "export", id, "--port", "data", "--stage", "standardize.scale", "--format", "csv", "-o", out)
	}
	lines := func(text string) int { return len(strings.Split(strings.TrimSpace(text), "\n")) }

	r := export("/dev/stdout")
	if r.code != 0 || lines(r.stdout) != 2001 {
		t.Errorf("-o /dev/stdout: exit %d, %d lines on stdout, want a header and 2000 rows\n%s", r.code, lines(r.stdout), r.stderr)
	}

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		data, _ := os.ReadFile(fifo) // blocks until the export opens it
		got <- string(data)
	}()
	if r := export(fifo); r.code != 0 {
		t.Fatalf("-o FIFO: exit %d\n%s", r.code, r.stderr)
	}
	if text := <-got; lines(text) != 2001 {
		t.Errorf("-o FIFO: the reader got %d lines, want 2001", lines(text))
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is now %v (%v): replaced, not written", st.Mode(), err)
	}

	if r := export(dir); r.code == 0 || !strings.Contains(r.stderr, dir+" is a directory") {
		t.Errorf("-o a directory: exit %d, stderr %q", r.code, r.stderr)
	}

	target := writeFile(t, dir, "target.csv", "old\n")
	link := filepath.Join(dir, "link.csv")
	if err := os.Symlink("target.csv", link); err != nil {
		t.Fatal(err)
	}
	if r := export(link); r.code != 0 {
		t.Fatalf("-o a symlink: exit %d\n%s", r.code, r.stderr)
	}
	if data, _ := os.ReadFile(target); lines(string(data)) != 2001 {
		t.Errorf("the link's target holds %d lines, want 2001", lines(string(data)))
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link is now %v (%v)", st.Mode(), err)
	}
}

func TestValidateAsksThePluginsToo(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `dataset "d" {
  path = "missing.csv"
}

stage "emit" "e" {
  plugin = "testkit"
  rows   = -5
}
`)
	r := sweetspot(t, dir, "validate", "p.hcl")
	if r.code != exitInvalid {
		t.Fatalf("exit %d, want %d:\n%s", r.code, exitInvalid, r.stderr)
	}
	for _, want := range []string{"p.hcl:2:", "missing.csv", "p.hcl:7:", "Invalid row count"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
}
