package pluginhost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// commitFile writes rows [from, from+n) in batches of batch rows as the
// run store commits a port's output, and returns it as an input file.
func commitFile(t *testing.T, path string, mem memory.Allocator, from, n, batch int64) InputFile {
	t.Helper()
	w := runstore.NewPortWriter(path, stages.TableSchema, mem)
	for off := from; off < from+n; off += batch {
		b := stages.Batch(mem, off, min(batch, from+n-off))
		err := w.Write(b)
		b.Release()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, size, _, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	return InputFile{Path: path, Size: size}
}

// countingReader counts the batches the host reads from it: none when
// the plugin read the files itself.
type countingReader struct {
	array.RecordReader
	read int
}

func (r *countingReader) Next() bool {
	ok := r.RecordReader.Next()
	if ok {
		r.read++
	}
	return ok
}

// pluginMaps reports whether the plugin process has path mapped.
func pluginMaps(t *testing.T, pid int, path string) bool {
	t.Helper()
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		testenv.Missing(t, "no /proc/PID/maps: %v", err)
	}
	return bytes.Contains(maps, []byte(path))
}

// TestInputFilesAcrossTheBoundary runs passthrough in a plugin process on
// committed run store files, by stream and by path: the same rows come
// back, and by path the host reads none of them and the plugin keeps no
// mapping once the run is over.
func TestInputFilesAcrossTheBoundary(t *testing.T) {
	if !stagerpc.FilesSupported {
		testenv.Missing(t, "%v", stagerpc.ErrFilesUnsupported)
	}
	h, mem := newHost(t)
	c := start(t, h, "test")
	ctx := context.Background()
	dir := t.TempDir()
	const rows = 30000
	files := []InputFile{
		commitFile(t, filepath.Join(dir, "round-000", "output.arrow"), mem, 0, 20000, 6000),
		commitFile(t, filepath.Join(dir, "round-001", "output.arrow"), mem, 20000, 10000, 4000),
	}
	paths := []string{files[0].Path, files[1].Path}

	for _, mode := range []string{"stream", "path"} {
		t.Run("mode="+mode, func(t *testing.T) {
			fr, err := runstore.OpenFiles(paths, mem)
			if err != nil {
				t.Fatal(err)
			}
			in := &countingReader{RecordReader: fr}
			defer in.Release()
			req := RunRequest{
				Kind: "passthrough", Stage: "passthrough.copy",
				Inputs: map[string]array.RecordReader{"input": in}, InputOrder: []string{"input"},
			}
			if mode == "path" {
				req.InputFiles = map[string][]InputFile{"input": files}
			}
			var got []arrow.RecordBatch
			defer func() {
				for _, b := range got {
					b.Release()
				}
			}()
			req.Outputs = map[string]func(arrow.RecordBatch) error{"output": func(b arrow.RecordBatch) error {
				b.Retain()
				got = append(got, b)
				return nil
			}}
			res, err := c.Run(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.RowsOut["output"] != rows {
				t.Fatalf("rows out = %v, want %d", res.RowsOut, rows)
			}
			checkRows(t, got, rows)
			if byPath := in.read == 0; byPath != (mode == "path") {
				t.Errorf("the host read %d batches of the input: by path = %t, want %t", in.read, byPath, mode == "path")
			}
			for _, p := range paths {
				if pluginMaps(t, c.Pid(), p) {
					t.Errorf("the plugin still maps %s after the run", p)
				}
			}
		})
	}
	// Nothing leaked in the plugin's allocator either.
	if _, err := c.Run(ctx, RunRequest{Kind: "memcheck", Stage: "memcheck.after"}); err != nil {
		t.Errorf("plugin side: %v", err)
	}
}

// TestInputFileDamagedAcrossTheBoundary hands the plugin a file cut short
// after it was committed: the run fails naming the stage and the port, and
// the plugin lives on for the next run.
func TestInputFileDamagedAcrossTheBoundary(t *testing.T) {
	if !stagerpc.FilesSupported {
		testenv.Missing(t, "%v", stagerpc.ErrFilesUnsupported)
	}
	h, mem := newHost(t)
	c := start(t, h, "test")
	ctx := context.Background()
	f := commitFile(t, filepath.Join(t.TempDir(), "output.arrow"), mem, 0, 5000, 1000)
	if err := os.Truncate(f.Path, f.Size/2); err != nil {
		t.Fatal(err)
	}
	in, err := array.NewRecordReader(stages.TableSchema, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Release()
	_, err = c.Run(ctx, RunRequest{
		Kind: "passthrough", Stage: "passthrough.copy",
		Inputs:     map[string]array.RecordReader{"input": in},
		InputFiles: map[string][]InputFile{"input": {f}},
		Outputs:    map[string]func(arrow.RecordBatch) error{},
	})
	if err == nil {
		t.Fatal("a damaged input file went unnoticed")
	}
	for _, s := range []string{"stage passthrough.copy", `input port "input"`, f.Path, "cut short"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if pluginMaps(t, c.Pid(), f.Path) {
		t.Errorf("the plugin still maps %s after the failed run", f.Path)
	}
	if _, err := c.Run(ctx, RunRequest{Kind: "memcheck", Stage: "memcheck.after"}); err != nil {
		t.Errorf("the plugin after the failed run: %v", err)
	}
}
