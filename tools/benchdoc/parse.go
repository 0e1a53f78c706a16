package main

import (
	"bufio"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Results is what `go test -bench` printed, over one or more outputs.
type Results struct {
	// Runs holds each benchmark's metrics by unit ("ns/op", "GFLOP/s"),
	// keyed by its full name without the -GOMAXPROCS suffix. A benchmark
	// reported more than once (-count) keeps its last report.
	Runs map[string]Metrics
	// All holds every report of each benchmark, in order.
	All map[string][]Metrics
	// Order is the names in the order they were first reported.
	Order []string
	// Pkg is the package each benchmark was reported in.
	Pkg map[string]string
	// CPU is the cpu: line of the first output that has one.
	CPU string
	// Skipped maps a skipped benchmark to the reason it gave.
	Skipped map[string]string
	// Failed lists the packages whose benchmarks failed or did not build.
	Failed []string
}

// Metrics maps a unit to its value.
type Metrics map[string]float64

// Get returns a metric and whether the benchmark reported it.
func (r *Results) Get(name, unit string) (float64, bool) {
	m, ok := r.Runs[name]
	if !ok {
		return 0, false
	}
	v, ok := m[unit]
	return v, ok
}

func newResults() *Results {
	return &Results{Runs: map[string]Metrics{}, All: map[string][]Metrics{}, Pkg: map[string]string{}, Skipped: map[string]string{}}
}

var (
	// BenchmarkName-8   	  100	  1234 ns/op	  5.6 GB/s
	resultLine = regexp.MustCompile(`^(Benchmark\S*?)(?:-\d+)?\s+(\d+)\s+(.*)$`)
	skipLine   = regexp.MustCompile(`^\s*--- SKIP: (Benchmark\S*?)(?:-\d+)?(?:\s|$)`)
	failLine   = regexp.MustCompile(`^FAIL\s+(\S+)`)
	logLine    = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
)

// Parse reads one output of `go test -bench` (several packages' output
// concatenated, as `go test ./...` prints it) into r. Lines it does not
// know are ignored: compiler errors, logs, PASS.
func (r *Results) Parse(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(nil, 1<<20)
	pkg := ""
	skipped := ""
	for sc.Scan() {
		line := sc.Text()
		if skipped != "" {
			if m := logLine.FindStringSubmatch(line); m != nil && r.Skipped[skipped] == "" {
				r.Skipped[skipped] = m[1]
				continue
			}
			skipped = ""
		}
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimPrefix(line, "pkg: ")
		case strings.HasPrefix(line, "cpu: "):
			if r.CPU == "" {
				r.CPU = strings.TrimPrefix(line, "cpu: ")
			}
		case skipLine.MatchString(line):
			skipped = skipLine.FindStringSubmatch(line)[1]
			r.Skipped[skipped] = ""
		case failLine.MatchString(line):
			r.Failed = append(r.Failed, failLine.FindStringSubmatch(line)[1])
		default:
			m := resultLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			metrics, ok := parseMetrics(m[3])
			if !ok {
				continue
			}
			name := m[1]
			if _, seen := r.Runs[name]; !seen {
				r.Order = append(r.Order, name)
			}
			r.Runs[name] = metrics
			r.All[name] = append(r.All[name], metrics)
			r.Pkg[name] = pkg
		}
	}
	return sc.Err()
}

// parseMetrics reads "value unit" pairs.
func parseMetrics(s string) (Metrics, bool) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%2 != 0 {
		return nil, false
	}
	m := Metrics{}
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, false
		}
		m[f[i+1]] = v
	}
	return m, true
}
