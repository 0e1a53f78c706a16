// Command benchdoc writes docs/benchmarks.md from the output of
// `go test -bench` (`make bench` runs it): the command, the date and the
// machine, then each goal of the benchmark suite with its figures, the
// ratio it is judged on and whether it is met. A benchmark absent from the
// output (skipped, failed, not written yet) shows as not measured; the page
// is still written.
//
//	go run ./internal/benchdoc -o docs/benchmarks.md -command 'make bench' OUTPUT...
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
	notes := fs.String("notes", "internal/benchdoc/notes.md", "hand-written notes appended to the page (skipped when absent)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("no benchmark output named: usage: benchdoc [-o FILE] [-command CMD] OUTPUT...")
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
	// Through a temporary file, so an interrupted run leaves the old page.
	tmp, err := os.CreateTemp(filepath.Dir(*out), ".benchmarks-*.md")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
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
	return os.Rename(tmp.Name(), *out)
}
