//go:build linux

package main

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A run whose exec trials leave daemons behind (double-forked, in their
// own session) ends with none of them running: the exec plugin process
// finds and kills them at each trial's end.
func TestExecTrialDaemonsDieWithTheirTrials(t *testing.T) {
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	if err := os.Mkdir(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "daemon.sh", `( setsid /bin/sh -c 'echo $$ > "$OUT/$SWEETSPOT_CANDIDATE_ID.tmp"; mv "$OUT/$SWEETSPOT_CANDIDATE_ID.tmp" "$OUT/$SWEETSPOT_CANDIDATE_ID.pid"; exec sleep 300' </dev/null >/dev/null 2>&1 & )
while [ ! -s "$OUT/$SWEETSPOT_CANDIDATE_ID.pid" ]; do sleep 0.01; done
echo '{"accuracy": 0.5, "params": 10}'
`)
	writeFile(t, dir, "p.hcl", `
dataset "d" {
  generator = "blobs"
  rows      = 100
}
stage "requirements" "r" {
  dataset      = dataset.d
  min_accuracy = 0.5
}
stage "model_choice" "m" {
  input = stage.requirements.r
  depth = [1]
  width = { min = 2, max = 8 }
  steps = 3
}
stage "exec" "train" {
  input   = stage.model_choice.m
  command = ["/bin/sh", "daemon.sh"]
  env     = { OUT = "`+pids+`" }
}
`)
	r := sweetspot(t, dir, "run", "-q", "p.hcl")
	if r.code != exitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	files, err := filepath.Glob(filepath.Join(pids, "*.pid"))
	// One per trial: the three widths and the linear baseline.
	if err != nil || len(files) != 4 {
		t.Fatalf("pid files %v (%v), want one per trial, 4", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("the daemon of trial %s (pid %d) outlived the run", filepath.Base(f), pid)
		}
	}
}
