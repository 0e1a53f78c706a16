package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/go-cmp/cmp"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// Every command that takes a run id refuses one that is not of the
// store's format, even where a manifest waits at the path it would name.
func TestRunIDTraversalRefused(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", "stage \"emit\" \"e\" {\n  plugin = \"testkit\"\n  rows   = 1\n}\n")
	// .sweetspot/runs/../../x is dir/x.
	if err := os.MkdirAll(filepath.Join(dir, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "x"), "manifest.json", `{"run_id": "x", "status": "succeeded"}`)
	for _, id := range []string{"../../x", "../runs/../../x", "/etc", "..", "20261128-120000-abcdef/../../../x"} {
		for _, args := range [][]string{
			{"runs", "show", id},
			{"runs", "export", id},
			{"report", id},
			{"explain", id, "emit.e"},
			{"run", "-q", "--resume", id, "p.hcl"},
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := sweetspot(t, dir, args...)
				if r.code != exitInvalid || !strings.Contains(r.stderr, "is not a run id") {
					t.Errorf("exit %d, want %d with \"is not a run id\"; stderr:\n%s", r.code, exitInvalid, r.stderr)
				}
			})
		}
	}
}

// A secret in sweetspot's environment reaches a stage's plugin only when
// the stage block lists it in pass_env.
func TestPassEnvEndToEnd(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer x")
	dir := t.TempDir()
	writeFile(t, dir, "p.hcl", `
stage "getenv" "closed" {
  plugin = "testkit"
  names  = ["AWS_SECRET_ACCESS_KEY", "OTEL_EXPORTER_OTLP_HEADERS", "HOME"]
}

stage "getenv" "listed" {
  plugin   = "testkit"
  names    = ["AWS_SECRET_ACCESS_KEY", "OTEL_EXPORTER_OTLP_HEADERS", "HOME"]
  pass_env = ["AWS_SECRET_ACCESS_KEY"]
}
`)
	if r := sweetspot(t, dir, "run", "-q", "p.hcl"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	m := onlyRun(t, dir)
	got := map[string]map[string]string{}
	for _, stage := range []string{"getenv.closed", "getenv.listed"} {
		b := readArrowFile(t, filepath.Join(dir, runstore.DefaultRoot, m.RunID, runstore.OutputRel(stage, 0, "env")))
		names, values := b.Column(0).(*array.String), b.Column(1).(*array.String)
		got[stage] = map[string]string{}
		for i := 0; i < int(b.NumRows()); i++ {
			v := "<unset>"
			if values.IsValid(i) {
				v = values.Value(i)
			}
			got[stage][names.Value(i)] = v
		}
		b.Release()
	}
	home := os.Getenv("HOME")
	want := map[string]map[string]string{
		"getenv.closed": {"AWS_SECRET_ACCESS_KEY": "<unset>", "OTEL_EXPORTER_OTLP_HEADERS": "<unset>", "HOME": home},
		"getenv.listed": {"AWS_SECRET_ACCESS_KEY": "s3cr3t", "OTEL_EXPORTER_OTLP_HEADERS": "<unset>", "HOME": home},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plugin environments (-want +got):\n%s", diff)
	}
}
