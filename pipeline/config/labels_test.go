package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// writePipeline writes text to a file of a new directory and returns its
// path.
func writePipeline(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A stage or dataset name becomes a directory name in the run, so one
// that cannot be (over 100 bytes) is refused at load time, once, at its
// label; 100 bytes pass.
func TestNameTooLongForAFileName(t *testing.T) {
	long := strings.Repeat("a", 1_000_000) // 1 MB, under the 1 MiB a file may hold
	for _, tc := range []struct {
		name, text string
		// the label's first byte, 1-based, on line 1
		col     int
		summary string
	}{
		{"stage name", `stage "requirements" "` + long + `" {}`, 23, "The stage name is too long"},
		{"dataset name", `dataset "` + long + `" {}`, 10, "The dataset name is too long"},
		{"kind", `stage "` + long + `" "r" {}`, 8, "The stage kind name is too long"},
		{"101 bytes", `stage "requirements" "` + strings.Repeat("b", 101) + `" {}`, 23, "The stage name is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writePipeline(t, tc.text)
			_, diags := Load([]string{path}, newFakeCatalog())
			if len(diags) != 1 {
				t.Fatalf("got %d diagnostics, want 1: %v", len(diags), diags)
			}
			d := diags[0]
			if d.Severity != hcl.DiagError || d.Summary != tc.summary || !strings.Contains(d.Detail, "at most 100 are allowed") {
				t.Errorf("got %q: %q", d.Summary, d.Detail)
			}
			if len(d.Detail) > 400 {
				t.Errorf("the detail has %d bytes: it should not repeat the name", len(d.Detail))
			}
			if d.Subject == nil || d.Subject.Filename != path || d.Subject.Start.Line != 1 || d.Subject.Start.Column != tc.col-1 {
				t.Errorf("subject %v, want %s line 1 from column %d (the label's opening quote)", d.Subject, path, tc.col-1)
			}
		})
	}
	mustLoad(t, []string{writePipeline(t, `stage "requirements" "`+strings.Repeat("c", 100)+`" {}`)})
}

// A pipeline that declares no stage and no dataset is an error naming its
// file, not a run that succeeds doing nothing.
func TestEmptyPipeline(t *testing.T) {
	for name, text := range map[string]string{
		"empty":          "",
		"comments only":  "# nothing yet\n",
		"variables only": "variable \"x\" {\n  default = 1\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := writePipeline(t, text)
			_, diags := Load([]string{path}, newFakeCatalog())
			if len(diags) != 1 {
				t.Fatalf("got %d diagnostics, want 1: %v", len(diags), diags)
			}
			d := diags[0]
			if d.Summary != "Empty pipeline" || !strings.Contains(d.Detail, "The file "+path+" declares no stage and no dataset") {
				t.Errorf("got %q: %q", d.Summary, d.Detail)
			}
			if d.Subject == nil || d.Subject.Filename != path {
				t.Errorf("subject %v, want the file %s", d.Subject, path)
			}
		})
	}
	mustLoad(t, []string{writePipeline(t, `dataset "d" {
  generator = "blobs"
  target    = "y"
}
`)})
}
