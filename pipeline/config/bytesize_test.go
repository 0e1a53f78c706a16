package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// memory_limit is a host attribute: it reaches Stage.MemoryLimit, never the
// plugin's config, and a bad value is a diagnostic on the attribute.
func TestMemoryLimitIsAHostAttribute(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.hcl")
	src := `
stage "requirements" "capped" {
  memory_limit = "512MiB"
}
stage "requirements" "plain" {}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustLoad(t, []string{path})
	got := map[string]int64{}
	for _, s := range p.Stages {
		got[s.Addr] = s.MemoryLimit
		if s.Config.Type().IsObjectType() && s.Config.Type().HasAttribute(attrMemoryLimit) {
			t.Errorf("%s: the plugin's config holds memory_limit", s.Addr)
		}
	}
	if diff := cmp.Diff(map[string]int64{"requirements.capped": 512 << 20, "requirements.plain": 0}, got); diff != "" {
		t.Errorf("memory limits (-want +got):\n%s", diff)
	}

	for _, c := range []struct{ value, detail string }{
		{"512", "needs a unit"},
		{"1MiB", "below 16 MiB"},
	} {
		bad := filepath.Join(dir, "bad.hcl")
		if err := os.WriteFile(bad, []byte("stage \"requirements\" \"x\" {\n  memory_limit = \""+c.value+"\"\n}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, diags := Load([]string{bad}, newFakeCatalog())
		if len(diags) != 1 || diags[0].Summary != "Invalid memory_limit" || !strings.Contains(diags[0].Detail, c.detail) ||
			diags[0].Subject == nil || diags[0].Subject.Start.Line != 2 {
			t.Errorf("memory_limit = %q: diagnostics %v, want one \"Invalid memory_limit\" on line 2 saying %q", c.value, diags, c.detail)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		err  string // part of the error; "" for success
	}{
		{in: "512MiB", want: 512 << 20},
		{in: "512 MiB", want: 512 << 20},
		{in: "1.5GiB", want: 3 << 29},
		{in: "64KiB", want: 64 << 10},
		{in: "2TiB", want: 2 << 40},
		{in: "800MB", want: 800e6},
		{in: "1kB", want: 1000},
		{in: "1KB", want: 1000},
		{in: "7B", want: 7},
		{in: "0.5B", err: "at least one byte"},
		{in: "0MiB", err: "at least one byte"},
		{in: "12", err: "needs a unit"},
		{in: "MiB", err: "start with a number"},
		{in: "", err: "start with a number"},
		{in: "-1GiB", err: "start with a number"},
		{in: " 1MiB", err: "start with a number"},
		{in: "1  MiB", err: `" MiB" is not a unit`},
		{in: "1 mib", err: `"mib" is not a unit`},
		{in: "1e9B", err: `"e9B" is not a unit`},
		{in: "1..2MiB", err: "is not a number"},
		{in: ".5MiB", err: "is not a number"},
		{in: "5.MiB", err: "is not a number"},
		{in: "2000000TiB", err: "more than"},
		{in: strings.Repeat("9", 40) + "B", err: "too long"},
	} {
		t.Run(c.in, func(t *testing.T) {
			got, err := ParseByteSize(c.in)
			if c.err == "" {
				if err != nil || got != c.want {
					t.Fatalf("ParseByteSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("ParseByteSize(%q) = %d, %v; want an error containing %q", c.in, got, err, c.err)
			}
		})
	}
}

// FuzzParseByteSize: the seeds are in testdata/fuzz/FuzzParseByteSize.
// Whatever the text, the parser returns a positive size or an error, and a
// size it accepts written back in bytes parses to itself.
func FuzzParseByteSize(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseByteSize(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 1 || n > maxByteSize {
			t.Fatalf("ParseByteSize(%q) = %d, out of range", s, n)
		}
		again, err := ParseByteSize(strconv.FormatInt(n, 10) + "B")
		if err != nil || again != n {
			t.Fatalf("%q = %d bytes, but %dB parses to %d, %v", s, n, n, again, err)
		}
	})
}
