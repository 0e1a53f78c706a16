package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// TestAccPipeline is the acceptance test: it builds the plugin and the
// sweetspot CLI, runs testdata/pipeline.hcl with the plugin found through
// SWEETSPOT_PLUGIN_PATH, and reads the Arrow files the run wrote. It needs
// the Go toolchain and takes a while, so it runs only with SWEETSPOT_ACC=1
// (make testacc).
func TestAccPipeline(t *testing.T) {
	if os.Getenv("SWEETSPOT_ACC") == "" {
		t.Skip("acceptance test: set SWEETSPOT_ACC=1 (make testacc)")
	}
	tmp := t.TempDir()
	pluginDir := filepath.Join(tmp, "plugins")
	goBuild(t, ".", filepath.Join(pluginDir, "sweetspot-plugin-filter"), ".")
	// SWEETSPOT_CLI names a prebuilt sweetspot; otherwise it is built from
	// the repository the go.mod replace points at.
	cli := os.Getenv("SWEETSPOT_CLI")
	if cli == "" {
		cli = filepath.Join(tmp, "sweetspot")
		goBuild(t, "../..", cli, "./cmd/sweetspot")
	}

	pipeline, err := filepath.Abs("testdata/pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(tmp, "runs")
	cmd := exec.Command(cli, "run", pipeline, "--out", runs, "--quiet")
	// A scratch working directory and home: plugins installed in
	// ./.sweetspot/plugins or ~/.sweetspot/plugins must not shadow the one
	// just built.
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "SWEETSPOT_PLUGIN_PATH="+pluginDir, "HOME="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("sweetspot run: %v\n%s", err, out.Bytes())
	}
	t.Logf("sweetspot run:\n%s", out.Bytes())

	outputs, _ := filepath.Glob(filepath.Join(runs, "*", "stages", "filter.positive", "round-*", "output.arrow"))
	summaries, _ := filepath.Glob(filepath.Join(runs, "*", "stages", "filter.positive", "round-*", "summary.arrow"))
	if len(outputs) != 1 || len(summaries) != 1 {
		t.Fatalf("found outputs %v and summaries %v, want one of each under %s", outputs, summaries, runs)
	}

	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	var kept int64
	readArrow(t, mem, outputs[0], func(b arrow.RecordBatch) {
		idx := b.Schema().FieldIndices("x0")
		if len(idx) == 0 {
			t.Fatalf("output has no column x0: %s", b.Schema())
		}
		xs := b.Column(idx[0]).(*array.Float64)
		for i := range xs.Len() {
			if xs.IsNull(i) || xs.Value(i) < 0 {
				t.Errorf("row %d: x0 = %v, want >= 0", kept+int64(i), xs.Value(i))
			}
		}
		kept += b.NumRows()
	})
	var rowsIn, rowsOut int64
	readArrow(t, mem, summaries[0], func(b arrow.RecordBatch) {
		rowsIn = b.Column(1).(*array.Int64).Value(0)
		rowsOut = b.Column(2).(*array.Int64).Value(0)
	})
	if rowsIn != 500 || rowsOut != kept || kept == 0 || kept == rowsIn {
		t.Errorf("summary says %d rows in, %d kept; the output has %d rows: want 500 in and a proper, non-empty subset kept", rowsIn, rowsOut, kept)
	}
}

func goBuild(t *testing.T, dir, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// readArrow hands each batch of an Arrow IPC file to f.
func readArrow(t *testing.T, mem memory.Allocator, path string, f func(arrow.RecordBatch)) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, err := ipc.NewFileReader(file, ipc.WithAllocator(mem))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer r.Close()
	for i := range r.NumRecords() {
		b, err := r.RecordBatchAt(i) // ours to release, unlike RecordBatch(i)
		if err != nil {
			t.Fatalf("%s: batch %d: %v", path, i, err)
		}
		f(b)
		b.Release()
	}
}
