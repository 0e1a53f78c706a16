package report

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// While a stage that journals its output (the evaluation stage, one batch
// per finished trial) runs, its round's port file is not committed yet:
// the finished trials are in the journal beside it
// (runstore.JournalPath), each batch synced and digested as it was
// written. A report of a running run (IncludeRunning) reads those
// journals for the rounds the manifest does not record yet, through
// runstore.ReadJournal, which keeps only the batches whose digests match.

func isJournal(rel string) bool { return strings.HasSuffix(rel, ".journal.arrows") }

// withJournals adds to stages, the committed files of port per stage, the
// journals of that port in rounds the manifest does not record yet.
func withJournals(run *runstore.Run, m *runstore.Manifest, port string, stages []portFiles) []portFiles {
	byStage := map[string]int{}
	for i, s := range stages {
		byStage[s.stage] = i
	}
	for _, s := range m.Stages {
		if s.Status != runstore.StatusRunning || !plainName(s.Addr) {
			continue
		}
		committed := map[int]bool{}
		for _, o := range s.Outputs {
			if o.Port == port {
				committed[o.Round] = true
			}
		}
		var extra []runstore.OutputFile
		entries, _ := os.ReadDir(run.Path("stages", s.Addr))
		for _, e := range entries {
			round, ok := roundDir(e.Name())
			if !ok || !e.IsDir() || committed[round] {
				continue
			}
			rel := runstore.JournalPath(runstore.OutputRel(s.Addr, round, port))
			if fi, err := os.Lstat(run.Path(rel)); err == nil && fi.Mode().IsRegular() {
				extra = append(extra, runstore.OutputFile{Port: port, Round: round, Path: rel})
			}
		}
		if len(extra) == 0 {
			continue
		}
		i, ok := byStage[s.Addr]
		if !ok {
			stages = append(stages, portFiles{stage: s.Addr})
			i = len(stages) - 1
			byStage[s.Addr] = i
		}
		stages[i].files = append(stages[i].files, extra...)
		sort.SliceStable(stages[i].files, func(a, b int) bool { return stages[i].files[a].Round < stages[i].files[b].Round })
	}
	return stages
}

// plainName reports whether a stage address from the manifest names one
// directory under stages/ and nothing else.
func plainName(addr string) bool {
	return addr != "" && addr == filepath.Base(addr) && filepath.IsLocal(addr) && !strings.HasPrefix(addr, ".")
}

// roundDir reads a round directory's name, round-NNN.
func roundDir(name string) (int, bool) {
	digits, ok := strings.CutPrefix(name, "round-")
	if !ok || digits == "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n >= 0
}

// readJournal appends the trusted batches of a journal to f.
func readJournal(run *runstore.Run, rel string, f *frame, mem memory.Allocator) error {
	_, batches, err := runstore.ReadJournal(run.Path(rel), mem)
	if err != nil {
		return fmt.Errorf("read %s: %w", rel, err)
	}
	for _, b := range batches {
		f.appendBatch(b)
		b.Release()
	}
	return nil
}
