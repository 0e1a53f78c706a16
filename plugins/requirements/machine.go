package requirements

import (
	"bufio"
	"io/fs"
	"math"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
)

// Machine is what the stage measures of the computer it runs on.
type Machine struct {
	Cores int
	// MemoryBytes is 0 when unknown.
	MemoryBytes int64
}

// MeasureMachine measures this machine.
func MeasureMachine() Machine {
	return Machine{Cores: runtime.NumCPU(), MemoryBytes: memoryBytes(os.DirFS("/"))}
}

// memoryBytes is the memory this process may use: MemTotal from
// /proc/meminfo, lowered to the memory limit of the process's cgroup (v2,
// or v1) or of any cgroup above it. fsys is the root file system, so tests
// can stand in a fake one. 0 means unknown (not Linux).
func memoryBytes(fsys fs.FS) int64 {
	total := memTotal(fsys)
	if limit := cgroupLimit(fsys); limit > 0 && (total == 0 || limit < total) {
		return limit
	}
	return total
}

func memTotal(fsys fs.FS) int64 {
	f, err := fsys.Open("proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb <= 0 || kb > math.MaxInt64/1024 {
			return 0
		}
		return kb * 1024
	}
	return 0
}

// cgroupLimit returns the smallest memory limit on the way from the
// process's cgroup up to the root, or 0 when there is none.
func cgroupLimit(fsys fs.FS) int64 {
	data, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return 0
	}
	best := int64(0)
	consider := func(limit int64) {
		if limit > 0 && (best == 0 || limit < best) {
			best = limit
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = "sys/fs/cgroup", "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = "sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		// Inside a container the cgroup path is often not visible under
		// its full name; the root of the mount is then the container's own
		// cgroup, so it is always considered.
		p := path.Clean("/" + parts[2])
		for {
			consider(readLimit(fsys, path.Join(dir, p, file)))
			if p == "/" {
				break
			}
			p = path.Dir(p)
		}
	}
	return best
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readLimit reads a cgroup memory limit file: "max" (v2) or a huge number
// (v1, "no limit") mean no limit.
func readLimit(fsys fs.FS, name string) int64 {
	data, err := fs.ReadFile(fsys, strings.TrimPrefix(name, "/"))
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(data))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v >= 1<<62 {
		return 0
	}
	return v
}
