package main

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where the benchmarks ran.
type Machine struct {
	CPU       string
	Cores     int
	MemoryGiB float64
	GoVersion string
	GOOS      string
	GOARCH    string
	// LoadAvg is /proc/loadavg's 1, 5 and 15 minute figures when the
	// benchmarks ended: a shared machine's load explains noisy figures.
	LoadAvg string
}

// thisMachine reads the machine the generator runs on, which `make bench`
// makes the machine the benchmarks ran on; cpu is the model go test
// printed, used when /proc/cpuinfo has none.
func thisMachine(cpu string) Machine {
	m := Machine{
		CPU:       cpu,
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		GOOS:      runtime.GOOS,
		GOARCH:    runtime.GOARCH,
	}
	if v := procField("/proc/cpuinfo", "model name", ":"); v != "" {
		m.CPU = v
	}
	if v := procField("/proc/meminfo", "MemTotal", ":"); v != "" {
		// "16314564 kB"
		if kb, err := strconv.ParseFloat(strings.Fields(v)[0], 64); err == nil {
			m.MemoryGiB = kb / (1 << 20)
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = loadAvg(string(b))
	}
	return m
}

// loadAvg keeps the three load averages of a /proc/loadavg line.
func loadAvg(s string) string {
	if f := strings.Fields(s); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return ""
}

// procField returns the value of the first "key<sep> value" line of a
// /proc file, or "" when the file or the key is absent (not Linux).
func procField(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), sep)
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
