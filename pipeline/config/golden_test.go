package config

import (
	"github.com/sweetspot-ml/sweetspot/internal/diagtext"

	"bufio"
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/config and the seed corpus in testdata/fuzz/FuzzLoad")

// repoRoot is where the golden cases name their files from, so that the
// rendered diagnostics read "testdata/config/x.hcl" as a user would see them.
const repoRoot = "../.."

const caseDir = "testdata/config"

// goldenCases lists the cases: every *.hcl file in testdata/config (but
// *.vars.hcl, which are -var-file inputs) and every directory but "valid".
func goldenCases(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir(caseDir)
	if err != nil {
		t.Fatal(err)
	}
	var cases []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case e.IsDir() && name != "valid":
			cases = append(cases, name)
		case !e.IsDir() && strings.HasSuffix(name, ".hcl") && !strings.HasSuffix(name, ".vars.hcl"):
			cases = append(cases, strings.TrimSuffix(name, ".hcl"))
		}
	}
	return cases
}

// caseOptions reads <case>.args: one "-var k=v" or "-var-file path" per line.
func caseOptions(t testing.TB, name string) []LoadOption {
	t.Helper()
	f, err := os.Open(filepath.Join(caseDir, name+".args"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := map[string]string{}
	var opts []LoadOption
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "-var-file "):
			opts = append(opts, WithVarFiles(strings.TrimSpace(strings.TrimPrefix(line, "-var-file "))))
		case strings.HasPrefix(line, "-var "):
			k, v, ok := strings.Cut(strings.TrimPrefix(line, "-var "), "=")
			if !ok {
				t.Fatalf("%s.args: bad line %q", name, line)
			}
			vars[k] = v
		default:
			t.Fatalf("%s.args: bad line %q", name, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return append(opts, WithVars(vars))
}

func render(files map[string]*hcl.File, diags hcl.Diagnostics) string {
	var buf bytes.Buffer
	if err := diagtext.Write(&buf, files, diags, 78, false); err != nil {
		return "render: " + err.Error()
	}
	return buf.String()
}

// TestGoldenDiagnostics loads each broken pipeline in testdata/config and
// compares the rendered diagnostics with <case>.diags.golden.
func TestGoldenDiagnostics(t *testing.T) {
	t.Chdir(repoRoot)
	cat := newFakeCatalog()
	cases := goldenCases(t)
	if len(cases) < 15 {
		t.Errorf("only %d golden cases", len(cases))
	}
	for _, name := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(caseDir, name)
			if _, err := os.Stat(path); err != nil {
				path += ".hcl"
			}
			p, diags := Load([]string{path}, cat, caseOptions(t, name)...)
			if p == nil || p.Files == nil {
				t.Fatal("Load returned no files to render diagnostics with")
			}
			if !diags.HasErrors() {
				t.Errorf("no errors; every golden case is a broken pipeline")
			}
			checkRanges(t, p.Files, diags)
			got := render(p.Files, diags)
			golden := filepath.Join(caseDir, name+".diags.golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./pipeline/config -update)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("diagnostics differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
	if *update {
		writeSeedCorpus(t, cases)
	}
}

// checkRanges asserts what the renderer relies on: every Subject and
// Context names a loaded file and lies within it, start before end, and
// line/column agree with the byte offset.
func checkRanges(t testing.TB, files map[string]*hcl.File, diags hcl.Diagnostics) {
	t.Helper()
	for _, d := range diags {
		for what, r := range map[string]*hcl.Range{"Subject": d.Subject, "Context": d.Context} {
			if r == nil {
				continue
			}
			f, ok := files[r.Filename]
			if !ok || f == nil {
				t.Errorf("%q: %s names unknown file %q", d.Summary, what, r.Filename)
				continue
			}
			n := len(f.Bytes)
			if r.Start.Byte < 0 || r.End.Byte > n || r.Start.Byte > r.End.Byte {
				t.Errorf("%q: %s %v is outside the %d bytes of %s", d.Summary, what, r, n, r.Filename)
				continue
			}
			for _, p := range []hcl.Pos{r.Start, r.End} {
				line := 1 + bytes.Count(f.Bytes[:p.Byte], []byte("\n"))
				// HCL puts a position just after a newline (the end of a
				// newline token, or EOF) on the line the newline closes.
				if p.Byte > 0 && f.Bytes[p.Byte-1] == '\n' && p.Line == line-1 {
					continue
				}
				if p.Line != line || p.Column < 1 {
					t.Errorf("%q: %s position %v: byte %d is on line %d", d.Summary, what, p, p.Byte, line)
				}
			}
		}
	}
}

// writeSeedCorpus stores every case's sources as a FuzzLoad seed in the
// `go test fuzz v1` format, so a corpus file can also be copied into the
// package's own testdata/fuzz/FuzzLoad to replay it.
func writeSeedCorpus(t *testing.T, cases []string) {
	dir := "testdata/fuzz/FuzzLoad"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, src []byte) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(src)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range append(cases, "valid") {
		path := filepath.Join(caseDir, name)
		if info, err := os.Stat(path); err == nil && info.IsDir() {
			entries, _ := os.ReadDir(path)
			for _, e := range entries {
				src, err := os.ReadFile(filepath.Join(path, e.Name()))
				if err != nil {
					t.Fatal(err)
				}
				write(name+"_"+strings.TrimSuffix(e.Name(), ".hcl"), src)
			}
			continue
		}
		src, err := os.ReadFile(path + ".hcl")
		if err != nil {
			t.Fatal(err)
		}
		write(name, src)
	}
}
