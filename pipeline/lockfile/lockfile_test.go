package lockfile

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden lock file")

var (
	sumA = FormatHash(bytes.Repeat([]byte{0xab}, sha256.Size))
	sumB = FormatHash(bytes.Repeat([]byte{0x01}, sha256.Size))
)

func sample() *File {
	return &File{Plugins: map[string]*Plugin{
		"standardize": {
			Name: "standardize", Source: "../plugins/standardize", Version: "0.1.0", Constraints: ">= 0.1, < 1",
			Hashes: map[string]string{"linux_amd64": sumA, "darwin_arm64": sumB},
		},
		"prune": {Name: "prune", Source: "example.com/acme/sweetspot-plugin-prune", Version: "v1.2.0", Hashes: map[string]string{"linux_amd64": sumB}},
	}}
}

var ignoreRanges = cmpopts.IgnoreFields(Plugin{}, "DeclRange")

func TestRoundTripAndGolden(t *testing.T) {
	f := sample()
	data := f.Bytes()
	golden := filepath.Join("testdata", "sample.lock.hcl")
	if *update {
		if err := os.WriteFile(golden, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(data)); diff != "" {
		t.Errorf("rendered lock file (-golden +got):\n%s", diff)
	}
	back, diags := Parse(data, "x.hcl")
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if diff := cmp.Diff(f, back, ignoreRanges); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// Map order must not leak into the bytes.
	for range 20 {
		if !bytes.Equal(sample().Bytes(), data) {
			t.Fatal("rendering is not deterministic")
		}
	}
}

func TestWriteLeavesAnEqualFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := Write(path, sample()); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, sample()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(past) {
		t.Errorf("an unchanged lock was rewritten (mtime %v, want %v; %v)", fi.ModTime(), past, err)
	}
	f := sample()
	f.Plugins["prune"].Version = "v1.3.0"
	if err := Write(path, f); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Plugins["prune"].Version != "v1.3.0" {
		t.Errorf("version after rewrite = %q", got.Plugins["prune"].Version)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // diagnostic summaries
	}{
		{"missing version", `plugin "a" { source = "x" }`, []string{"Missing required argument"}},
		{"bad hash", `plugin "a" {
  source = "x"
  version = "1"
  hashes = { linux_amd64 = "md5:00" }
}`, []string{"Invalid hash"}},
		{"short hash", `plugin "a" {
  source = "x"
  version = "1"
  hashes = { linux_amd64 = "sha256:00ff" }
}`, []string{"Invalid hash"}},
		{"duplicate", `plugin "a" {
  source = "x"
  version = "1"
}
plugin "a" {
  source = "x"
  version = "1"
}`, []string{"Duplicate plugin block"}},
		{"not literal", `plugin "a" {
  source = var.x
  version = "1"
}`, []string{"Variables not allowed"}},
		{"wrong type", `plugin "a" {
  source = 3
  version = ["1"]
}`, []string{"Incorrect attribute value type", "Incorrect attribute value type"}},
		{"unknown attribute", `plugin "a" {
  source = "x"
  version = "1"
  path = "/tmp"
}`, []string{"Unsupported argument"}},
		{"hashes not a map", `plugin "a" {
  source = "x"
  version = "1"
  hashes = "sha256:00"
}`, []string{"Invalid expression"}},
		{"syntax", `plugin "a" {`, []string{"Unclosed configuration block"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := Parse([]byte(tt.src), "lock.hcl")
			var got []string
			for _, d := range diags {
				got = append(got, d.Summary)
				if d.Subject == nil {
					t.Errorf("diagnostic %q has no range", d.Summary)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\n%v", diff, diags)
			}
		})
	}
}

func TestReadMissingAndInvalid(t *testing.T) {
	dir := t.TempDir()
	_, err := Read(filepath.Join(dir, FileName))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	f, ok, err := ReadOptional(filepath.Join(dir, FileName))
	if err != nil || ok || len(f.Plugins) != 0 {
		t.Errorf("ReadOptional(missing) = %v, %v, %v", f, ok, err)
	}
	bad := filepath.Join(dir, "bad.hcl")
	if err := os.WriteFile(bad, []byte(`plugin "a" {}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Read(bad)
	if err == nil || !strings.Contains(err.Error(), "bad.hcl:1") || !strings.Contains(err.Error(), "sweetspot init") {
		t.Errorf("invalid file: %v", err)
	}
}

func TestPathFor(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		dir:  filepath.Join(dir, FileName),
		file: filepath.Join(dir, FileName),
		"":   FileName,
	} {
		if got := PathFor([]string{in}); got != want {
			t.Errorf("PathFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHash(t *testing.T) {
	p := sample().Plugins["standardize"]
	got, ok := p.Hash("linux_amd64")
	if !ok || FormatHash(got) != sumA {
		t.Errorf("Hash(linux_amd64) = %x, %v", got, ok)
	}
	if _, ok := p.Hash("plan9_386"); ok {
		t.Error("Hash of an absent platform reported ok")
	}
	if _, err := ParseHash("sha256:zz"); err == nil {
		t.Error("ParseHash accepted non-hex")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := HashFile(path)
	want := sha256.Sum256([]byte("abc"))
	if err != nil || !bytes.Equal(sum, want[:]) {
		t.Errorf("HashFile = %x, %v", sum, err)
	}
}

// FuzzParse: a lock file is outside input (it is committed, edited, merged).
// Parsing must never panic, every diagnostic must carry a range, and what
// parses cleanly must render and parse back to the same content.
func FuzzParse(f *testing.F) {
	f.Add(sample().Bytes())
	f.Add([]byte(`plugin "a" { source = "x" version = "1" }`))
	f.Add([]byte(`plugin "a" {
  source = "x"
  version = "1"
  hashes = { (x) = "sha256:00", "a b" = 1 }
}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		got, diags := Parse(src, "fuzz.hcl")
		for _, d := range diags {
			if d.Severity == hcl.DiagError && d.Subject == nil {
				t.Fatalf("diagnostic without a range: %v", d)
			}
		}
		if diags.HasErrors() {
			return
		}
		back, diags := Parse(got.Bytes(), "again.hcl")
		if diags.HasErrors() {
			t.Fatalf("rendered lock does not parse: %v\n%s", diags, got.Bytes())
		}
		if diff := cmp.Diff(got, back, ignoreRanges); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}
