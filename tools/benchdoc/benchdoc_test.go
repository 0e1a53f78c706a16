package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testReport is a report of testdata's outputs on a fixed machine and date,
// so the page depends on nothing else.
func testReport(t *testing.T, files ...string) Report {
	t.Helper()
	res := newResults()
	for _, name := range files {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Parse(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return Report{
		Command: "make bench",
		Date:    time.Date(2026, 11, 29, 1, 30, 0, 0, time.UTC),
		Machine: Machine{CPU: res.CPU, Cores: 2, MemoryGiB: 7.8, GoVersion: "go1.26.10", GOOS: "linux", GOARCH: "amd64", LoadAvg: "2.10 1.90 1.70"},
		Results: res,
		Notes:   "Hand-written notes.\n",
	}
}

// The page from a partial run: skipped, failed and absent benchmarks show
// as such, the rest are judged against their goals.
func TestRenderGolden(t *testing.T) {
	for _, c := range []struct {
		name  string
		files []string
	}{
		{"partial", []string{"main.txt", "gomlx.txt"}},
		{"empty", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, testReport(t, c.files...)); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", c.name+".md.golden")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("page (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParse(t *testing.T) {
	res := testReport(t, "main.txt", "gomlx.txt").Results
	for _, c := range []struct {
		name, unit string
		want       float64
		ok         bool
	}{
		{"BenchmarkTrain/width=1024", "GFLOP/s", 10.80, true},
		{"BenchmarkGoMLXTrain/width=16", "GFLOP/s", 0.2011, true},
		{"BenchmarkGoMLXTrain/width=1024", "GFLOP/s", 0, false},
		{"BenchmarkLoopGridRandom/seed=2", "loop/grid", 0.3, true},
		{"BenchmarkSgemm/blas32/n=256", "B/op", 3545, true},
		{"BenchmarkTracing", "overhead-%", 0, false},
	} {
		got, ok := res.Get(c.name, c.unit)
		if ok != c.ok || got != c.want {
			t.Errorf("Get(%s, %s) = %v, %v; want %v, %v", c.name, c.unit, got, ok, c.want, c.ok)
		}
	}
	if got, want := res.Skipped["BenchmarkTracing"], "no Jaeger at /x/.bin/jaeger: run `make jaeger` to build it"; got != want {
		t.Errorf("skip reason %q, want %q", got, want)
	}
	if diff := cmp.Diff([]string{"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"}, res.Failed); diff != "" {
		t.Errorf("failed packages (-want +got):\n%s", diff)
	}
	if got := res.Pkg["BenchmarkGoMLXTrain/width=64"]; got != "github.com/sweetspot-ml/sweetspot/bench/gomlx" {
		t.Errorf("package of the GoMLX benchmark: %q", got)
	}
}

// The command writes the page even when no benchmark ran, and refuses to
// run with no output to read.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "benchmarks.md")
	empty := filepath.Join(dir, "empty.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	loadavg := filepath.Join(dir, "loadavg")
	if err := os.WriteFile(loadavg, []byte("11.20 13.23 12.25 3/900 12345\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-o", out, "-loadavg", loadavg, "-notes", filepath.Join(dir, "absent.md"), empty}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "| tracing overhead under 2% | not measured | not measured |") {
		t.Errorf("page without results does not say the tracing goal was not measured:\n%s", b)
	}
	if !strings.Contains(string(b), "| load average at the end of the run (1, 5, 15 min) | 11.20 13.23 12.25 |") {
		t.Errorf("page does not give the load average of the -loadavg file:\n%s", b)
	}
	if err := run([]string{"-o", out}); err == nil {
		t.Error("run with no output named: no error")
	}
}

// `make bench-blas`'s output gives the OpenBLAS section: each figure of the
// tagged build beside the pure-Go one and their ratio, a figure reported
// several times by its median (serial n=64: 10, 2 and 11 GFLOP/s); the section
// replaces the page's own and survives a page written anew by make bench.
func TestBLASSection(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "benchmarks.md")
	if err := os.WriteFile(page, []byte("# Benchmarks\n\nbody\n\n## Notes\n\nnotes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-o", page, "-blas", filepath.Join("testdata", "blas.txt")}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(page)
	got := string(b)
	for _, want := range []string{
		"| Sgemm | 64 | 10.0 | 50.0 | 5.00× |",
		"| Sgemm | 256 | not measured | not measured | not measured |",
		"| Train | 16 | 640000 | 960000 | 1.50× |",
		"| Train | 64 | 320000 | 800000 | 2.50× |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
	if !strings.HasPrefix(got, "# Benchmarks\n\nbody\n\n"+blasBegin) || !strings.HasSuffix(got, blasEnd+"\n## Notes\n\nnotes\n") {
		t.Errorf("the section is not between the body and the notes:\n%s", got)
	}
	section := blasPart(got)
	// Written again from a make bench output: the section stays, once.
	if err := run([]string{"-o", page, "-notes", filepath.Join(dir, "none.md"), filepath.Join("testdata", "main.txt")}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(page)
	if n := strings.Count(string(b), blasBegin); n != 1 || blasPart(string(b)) != section {
		t.Errorf("make bench's page holds %d BLAS sections, want the old one once", n)
	}
}

// The CSV ingest goal shows the wall rate it is judged by and the rate per
// CPU second, from the benchmark's own line.
func TestCSVIngestGoal(t *testing.T) {
	res := newResults()
	line := "BenchmarkCSVIngest-2   \t       3\t       375.2 MB/cpu-s\t        75.34 arrow-csv-MB/s\t       248.2 ingest-MB/s\t      9741 newline-scan-MB/s\t         0.02549 of-newline-scan\t         1.181 peak-rss/file\t         1.243 peak-rss/kept\t         3.295 x-arrow-csv\n"
	if err := res.Parse(strings.NewReader("pkg: github.com/sweetspot-ml/sweetspot/plugins/dataset\n" + line)); err != nil {
		t.Fatal(err)
	}
	rep := testReport(t)
	rep.Results = res
	var buf bytes.Buffer
	if err := Render(&buf, rep); err != nil {
		t.Fatal(err)
	}
	want := "| CSV ingest at least 300 MB/s (256 MiB CSV, 2 cores) | 248 MB/s wall, 375 MB per CPU second | no |"
	if !strings.Contains(buf.String(), want) {
		t.Fatalf("no line %q in\n%s", want, buf.String())
	}
}
