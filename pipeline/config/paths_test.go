package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// fileCatalog has one stage kind that names files as dataset and exec do:
// a path string, a command line and the host-filled base_dir.
func fileCatalog() *fakeCatalog {
	return &fakeCatalog{plugins: map[string]*describe.PluginDescription{builtinPlugin: {
		Name: builtinPlugin, Version: "0.1.0", SDKVersion: sdk.SDKVersion, ProtocolVersion: sdk.ProtocolVersion,
		Stages: []describe.StageDescription{{
			Kind: "files",
			Config: describe.ConfigSchema{Attributes: []describe.AttributeSchema{
				attr("path", `"string"`, false),
				attr("command", `["list","string"]`, false),
				attr("base_dir", `"string"`, false),
			}},
			Outputs:    []describe.PortDescription{{Name: "out"}},
			InputFiles: []string{"path", "command"},
		}},
	}}}
}

func TestPathsStayInTheProject(t *testing.T) {
	root := t.TempDir()
	project := filepath.Join(root, "project")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(project, "data"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(project, "data", "in.csv"), filepath.Join(project, "train.py"), filepath.Join(outside, "secret.csv")} {
		if err := os.WriteFile(f, []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "secret.csv"), filepath.Join(project, "data", "link.csv")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(project, "linkdir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(project, "data", "in.csv"), filepath.Join(project, "inner.csv")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		body     string
		settings string
		// want is the text of each error's source range, in order.
		want []string
	}{
		{name: "relative inside", body: `path = "data/in.csv"`},
		{name: "dot segments that stay inside", body: `path = "data/../data/in.csv"`},
		{name: "not there yet, inside", body: `path = "data/new.csv"`},
		{name: "absolute inside", body: `path = "` + filepath.ToSlash(filepath.Join(project, "data", "in.csv")) + `"`},
		{name: "link that stays inside", body: `path = "inner.csv"`},
		{name: "dot-dot", body: `path = "../outside/secret.csv"`, want: []string{`"../outside/secret.csv"`}},
		{name: "deep dot-dot", body: `path = "data/../../../../etc/passwd"`, want: []string{`"data/../../../../etc/passwd"`}},
		{name: "absolute", body: `path = "/etc/passwd"`, want: []string{`"/etc/passwd"`}},
		{name: "file link out", body: `path = "data/link.csv"`, want: []string{`"data/link.csv"`}},
		{name: "directory link out", body: `path = "linkdir/secret.csv"`, want: []string{`"linkdir/secret.csv"`}},
		{name: "directory link out, file not there", body: `path = "linkdir/new.csv"`, want: []string{`"linkdir/new.csv"`}},
		{name: "base_dir moved out", body: "base_dir = \"/\"\npath = \"etc/passwd\"", want: []string{`"etc/passwd"`}},
		{name: "command on PATH with a script", body: `command = ["python3", "train.py", "--epochs", "3"]`},
		{name: "absolute program", body: `command = ["/usr/bin/env", "python3", "train.py"]`},
		{name: "script outside", body: `command = ["python3", "../outside/x.py", "-v"]`, want: []string{`"../outside/x.py"`}},
		{name: "linked script outside", body: `command = ["sh", "linkdir/secret.csv"]`, want: []string{`"linkdir/secret.csv"`}},
		{name: "allowed", settings: "allow_outside_paths = true", body: "path = \"../outside/secret.csv\"\ncommand = [\"sh\", \"/etc/x\", \"../y\"]"},
		{name: "explicitly not allowed", settings: "allow_outside_paths = false", body: `path = "/etc/passwd"`, want: []string{`"/etc/passwd"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(project, strings.ReplaceAll(tc.name, " ", "_")+".hcl")
			src := "sweetspot {\n" + tc.settings + "\n}\nstage \"files\" \"f\" {\n" + tc.body + "\n}\n"
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(file)
			p, diags := Load([]string{file}, fileCatalog())
			var got []string
			for _, d := range diags {
				if d.Summary != "Path escapes the project directory" {
					t.Errorf("unexpected diagnostic: %s", render(p.Files, hcl.Diagnostics{d}))
					continue
				}
				if d.Subject == nil {
					t.Errorf("no range: %s", d.Detail)
					continue
				}
				got = append(got, string(d.Subject.SliceBytes([]byte(src))))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("escaping paths (-want +got):\n%s", diff)
			}
		})
	}
}

// The project is the directory given to Load; a file in a subdirectory may
// name files anywhere in it.
func TestPathsProjectIsTheDirectoryLoaded(t *testing.T) {
	project := t.TempDir()
	if err := os.MkdirAll(filepath.Join(project, "stages"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(project, "p.hcl"), "stage \"files\" \"f\" {\n  path = \"data.csv\"\n}\n")
	p, diags := Load([]string{project}, fileCatalog())
	if len(diags) > 0 {
		t.Fatalf("unexpected diagnostics:\n%s", render(p.Files, diags))
	}
	if p.ProjectDir != project {
		t.Errorf("ProjectDir = %q, want %q", p.ProjectDir, project)
	}
}

func TestPassEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.hcl")
	write(t, path, `
stage "requirements" "sla" {
  pass_env = ["AWS_PROFILE", "HF_TOKEN"]
}
stage "requirements" "plain" {}
`)
	p := mustLoad(t, []string{path})
	got := map[string][]string{}
	for _, s := range p.Stages {
		got[s.Addr] = s.PassEnv
		if s.Config.Type().IsObjectType() && s.Config.Type().HasAttribute(attrPassEnv) {
			t.Errorf("%s: the plugin's config holds pass_env", s.Addr)
		}
	}
	if diff := cmp.Diff(map[string][]string{"requirements.sla": {"AWS_PROFILE", "HF_TOKEN"}, "requirements.plain": nil}, got); diff != "" {
		t.Errorf("pass_env (-want +got):\n%s", diff)
	}
}
