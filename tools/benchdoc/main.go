// Command benchdoc writes docs/benchmarks.md from the output of
// `go test -bench` (`make bench` runs it): the command, the date and the
// machine, then each goal of the benchmark suite with its figures, the
// ratio it is judged on and whether it is met. A benchmark absent from the
// output (skipped, failed, not written yet) shows as not measured; the page
// is still written. The page keeps the OpenBLAS section (blas.go) it had;
// with -blas and no OUTPUT, that section alone is written anew from the
// output of `make bench-blas`.
//
//	go run ./tools/benchdoc -o docs/benchmarks.md -command 'make bench' OUTPUT...
//	go run ./tools/benchdoc -o docs/benchmarks.md -blas BLAS_OUTPUT
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchdoc", flag.ContinueOnError)
	out := fs.String("o", "docs/benchmarks.md", "file to write")
	command := fs.String("command", "make bench", "the command that produced the outputs, quoted on the page")
	loadavg := fs.String("loadavg", "", "a copy of /proc/loadavg taken when the benchmarks ended (default: /proc/loadavg now)")
	notes := fs.String("notes", "tools/benchdoc/notes.md", "hand-written notes appended to the page (skipped when absent)")
	blas := fs.String("blas", "", "the output of `make bench-blas`: write the page's OpenBLAS section from it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	old, err := os.ReadFile(*out)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := blasPart(string(old))
	if *blas != "" {
		if section, err = blasFrom(*blas, *loadavg); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return writeAtomic(*out, []byte(withBLAS(string(old), section)))
		}
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no benchmark output named: usage: benchdoc [-o FILE] [-command CMD] OUTPUT... | benchdoc [-o FILE] -blas OUTPUT")
	}
	res := newResults()
	// The date is when the benchmarks finished (the outputs' last write),
	// not when this page was written from them.
	var date time.Time
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		if fi, err := f.Stat(); err == nil && fi.ModTime().After(date) {
			date = fi.ModTime()
		}
		err = res.Parse(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	rep := Report{Command: *command, Date: date, Machine: thisMachine(res.CPU), Results: res}
	if *loadavg != "" {
		b, err := os.ReadFile(*loadavg)
		if err != nil {
			return err
		}
		rep.Machine.LoadAvg = loadAvg(string(b))
	}
	if b, err := os.ReadFile(*notes); err == nil {
		rep.Notes = string(b)
	} else if !os.IsNotExist(err) {
		return err
	}
	var buf bytes.Buffer
	if err := Render(&buf, rep); err != nil {
		return err
	}
	page := buf.String()
	if section != "" {
		page = withBLAS(page, section)
	}
	return writeAtomic(*out, []byte(page))
}

// blasFrom renders the OpenBLAS section from a `make bench-blas` output,
// dated by its last write.
func blasFrom(path, loadavg string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	res := newResults()
	if err := res.Parse(f); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	m := thisMachine(res.CPU)
	if loadavg != "" {
		b, err := os.ReadFile(loadavg)
		if err != nil {
			return "", err
		}
		m.LoadAvg = loadAvg(string(b))
	}
	return blasSection(res, fi.ModTime(), m), nil
}

// writeAtomic writes through a temporary file, so an interrupted run
// leaves the old page.
func writeAtomic(out string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".benchmarks-*.md")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), out)
}
