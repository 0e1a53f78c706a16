package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestLoadSettings reads required_plugins from a pipeline whose stages no
// catalog could resolve yet: that is the state `sweetspot init` starts in.
func TestLoadSettings(t *testing.T) {
	dir := t.TempDir()
	src := `sweetspot {
  required_plugins {
    scale = { source = "./plugins/scale", version = ">= 0.1, < 1" }
    prune = { source = "example.com/acme/sweetspot-plugin-prune" }
  }
}

stage "scale" "s" {
  plugin  = "scale"
  columns = ["a"]
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p, diags := LoadSettings([]string{dir})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	type entry struct{ Source, Version string }
	got := map[string]entry{}
	for name, rp := range p.Required.Plugins {
		got[name] = entry{rp.Source, rp.Version}
		if rp.SourceRange.Start.Line == 0 {
			t.Errorf("%s: no source range", name)
		}
	}
	want := map[string]entry{
		"scale": {"./plugins/scale", ">= 0.1, < 1"},
		"prune": {"example.com/acme/sweetspot-plugin-prune", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("required plugins (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{filepath.Join(dir, "p.hcl")}, p.Paths); diff != "" {
		t.Errorf("Paths (-want +got):\n%s", diff)
	}

	// The full load of the same pipeline fails on the unresolvable stage;
	// the settings load reports only the settings' own problems.
	if _, diags := Load([]string{dir}, newFakeCatalog()); !diags.HasErrors() {
		t.Error("Load resolved a stage no catalog provides")
	}
	bad := `sweetspot {
  required_plugins {
    scale = { source = "./x", version = "==> 1" }
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.hcl"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, diags = LoadSettings([]string{dir})
	if len(diags) != 1 || diags[0].Summary != "Invalid version constraint" || diags[0].Subject.Start.Line != 3 {
		t.Errorf("diagnostics = %v", diags)
	}
}

// A telemetry block's endpoint is checked where it is written: a bad one
// is an error at its position, a good one reaches the pipeline.
func TestTelemetryEndpointChecked(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	for endpoint, wantErr := range map[string]bool{"collector:4317": false, "http://[::1": true, "collector": true} {
		src := "sweetspot {\n  telemetry {\n    otlp_endpoint = \"" + endpoint + "\"\n  }\n}\ndataset \"d\" {\n  target = \"y\"\n}\n"
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		p, diags := Load([]string{path}, newFakeCatalog())
		if !wantErr {
			if diags.HasErrors() || p.Telemetry.OTLPEndpoint != endpoint {
				t.Errorf("%q: %v, endpoint %q", endpoint, diags, p.Telemetry.OTLPEndpoint)
			}
			continue
		}
		if len(diags) != 1 || diags[0].Summary != "Invalid OTLP endpoint" || diags[0].Subject == nil ||
			diags[0].Subject.Filename != path || diags[0].Subject.Start.Line != 3 || diags[0].Subject.Start.Column != 21 {
			t.Errorf("%q: %v, want one error at %s:3:21", endpoint, diags, path)
		}
	}
}
