package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the catalogue's want.txt files")

// catalogueDir holds one directory per bad pipeline or bad dataset:
// pipeline.hcl, the files it names, an optional args file (the command
// line, `validate pipeline.hcl` when absent) and want.txt, the exit code
// and stderr the real binary must produce, with the case's directory,
// run ids, clock times, durations and pids normalised, and the wrapped
// paragraphs of diagnostics joined.
const catalogueDir = "testdata/catalogue"

// Every message must point at what is wrong: a file with its line and
// column, or a stage (KIND.NAME), or a file of data with its line or the
// column at fault.
var pointsAtFault = regexp.MustCompile(`\.(hcl|tfvars):\d+:\d+|<value for var\.\w+>:\d+:\d+|stage [a-z_]+\.[a-z_]+|\$DIR/[^ :]+(:\d+)?|-var-file \S+`)

var normalisers = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b\d{8}-\d{6}-[0-9a-f]{6}\b`), "RUNID"},
	{regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d `), "hh:mm:ss "},
	{regexp.MustCompile(`\b(after|in) \d+(\.\d+)?(ns|µs|ms|s)\b`), "$1 DURATION"},
	{regexp.MustCompile(`\bpid[ =]\d+`), "pid PID"},
	{regexp.MustCompile(`\b[0-9a-f]{32}\b`), "TRACEID"},
}

func normalise(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "$DIR")
	for _, n := range normalisers {
		s = n.re.ReplaceAllString(s, n.with)
	}
	return s
}

// unwrap joins the lines of each paragraph of a diagnostic's detail,
// which the CLI wraps at 78 columns: where it wraps depends on how long
// the case's directory is, which $DIR hides.
func unwrap(s string) string {
	var out []string
	prose := false
	for _, line := range strings.Split(s, "\n") {
		isProse := line != "" && !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "Error: ") &&
			!strings.HasPrefix(line, "Warning: ") && !strings.HasPrefix(line, "hh:mm:ss ")
		if isProse && prose {
			out[len(out)-1] += " " + line
			continue
		}
		out = append(out, line)
		prose = isProse
	}
	return strings.Join(out, "\n")
}

// TestCatalogue runs every bad pipeline and bad dataset of the catalogue
// through the CLI and compares what a user sees with its want.txt
// (go test ./cmd/sweetspot -run TestCatalogue -update rewrites them).
func TestCatalogue(t *testing.T) {
	entries, err := os.ReadDir(catalogueDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 30 {
		t.Errorf("the catalogue holds %d cases, want at least 30", len(entries))
	}
	// Two cases at a time: each starts plugin processes of its own, and a
	// machine's cores are few.
	sem := make(chan struct{}, 2)
	var mu sync.Mutex // serialises -update's writes, for tidy output
	t.Run("cases", func(t *testing.T) {
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			t.Run(e.Name(), func(t *testing.T) {
				t.Parallel()
				sem <- struct{}{}
				defer func() { <-sem }()
				src := filepath.Join(catalogueDir, e.Name())
				dir := t.TempDir()
				args := []string{"validate", "pipeline.hcl"}
				files, err := os.ReadDir(src)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range files {
					b, err := os.ReadFile(filepath.Join(src, f.Name()))
					if err != nil {
						t.Fatal(err)
					}
					switch f.Name() {
					case "want.txt":
						continue
					case "args":
						args = strings.Fields(string(b))
						continue
					}
					if err := os.WriteFile(filepath.Join(dir, f.Name()), b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				r := sweetspot(t, dir, args...)
				real, err := filepath.EvalSymlinks(dir)
				if err != nil {
					t.Fatal(err)
				}
				stderr := unwrap(normalise(normalise(r.stderr, real), dir))
				got := fmt.Sprintf("$ sweetspot %s\nexit %d\n\n%s", strings.Join(args, " "), r.code, stderr)

				if r.code == 0 {
					t.Errorf("the case passed: every case is a mistake")
				}
				if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
					t.Errorf("a panic:\n%s", r.stderr)
				}
				if !pointsAtFault.MatchString(stderr) {
					t.Errorf("the message names no file:line,col, stage or data file:\n%s", stderr)
				}
				want := filepath.Join(src, "want.txt")
				if *update {
					mu.Lock()
					defer mu.Unlock()
					if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				b, err := os.ReadFile(want)
				if err != nil {
					t.Fatalf("%v (go test ./cmd/sweetspot -run TestCatalogue -update writes it)", err)
				}
				if diff := cmp.Diff(string(b), got); diff != "" {
					t.Errorf("%s differs (-want +got):\n%s", want, diff)
				}
			})
		}
	})
}
