package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// A full disk stops the run with a message that says so, and what was
// written before stays readable. The run directory lives on a small tmpfs
// (mounting one needs root, as CI has; elsewhere the test is skipped).
func TestFullDiskStopsTheRunAndKeepsWhatWasWritten(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	if err := os.Mkdir(runs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", runs, "tmpfs", 0, "size=512k"); err != nil {
		testenv.Missing(t, "cannot mount a small tmpfs (%v): the test needs root", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(runs, syscall.MNT_DETACH) })

	path := filepath.Join(dir, "p.hcl")
	src := `
stage "emit" "a" {
  rows = 100
}
stage "emit" "huge" {
  after      = stage.emit.a
  rows       = 400000
  batch_rows = 20000
}
stage "double" "after" {
  input = stage.emit.huge
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	catalog, err := pluginhost.New(pluginhost.WithSearchPaths(pluginDir))
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close()
	p, diags := config.Load([]string{path}, catalog)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	store := runstore.Open(runs)
	run, err := store.Create(runstore.Manifest{Pipeline: p.Paths, StartedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	host, err := pluginhost.New(pluginhost.WithSearchPaths(pluginDir))
	if err != nil {
		t.Fatal(err)
	}
	r := &runner.Runner{Launcher: host, Parallel: 1}
	err = r.Execute(context.Background(), run, p, p.Graph)
	host.Close()
	if err == nil {
		t.Fatal("a run that cannot fit on its disk succeeded")
	}
	if !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "emit.huge") {
		t.Errorf("error does not say the disk is full and where: %v", err)
	}
	// The finished stage's output and the manifest are still readable.
	again, lerr := store.Load(run.ID())
	if lerr != nil {
		t.Fatalf("manifest unreadable after the failure: %v", lerr)
	}
	checked := 0
	for _, s := range again.Manifest().Stages {
		for _, f := range s.Outputs {
			checked++
			rd, err := runstore.OpenFiles([]string{again.Path(f.Path)}, nil)
			if err != nil {
				t.Errorf("output of %s unreadable: %v", s.Addr, err)
				continue
			}
			var rows int64
			for rd.Next() {
				rows += rd.RecordBatch().NumRows()
			}
			rd.Release()
			if rows != f.Rows {
				t.Errorf("%s: %d rows readable, manifest says %d", f.Path, rows, f.Rows)
			}
		}
	}
	if checked == 0 {
		t.Error("no stage had finished before the disk filled: the test proves nothing")
	}
	leftovers, _ := filepath.Glob(filepath.Join(run.Dir, "stages", "*", "*", ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}
