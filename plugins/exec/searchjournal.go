package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A size's rows reach the results port together, when its search ends:
// only then is its chosen setting known, and the host's journal holds what
// the port was given. So that a run killed in the middle of a search does
// not train that size's finished settings again, each finished trial of a
// search is journalled in its own working directory: its results row, and
// its models row when it kept an artifact, each an Arrow IPC file written
// whole (the models row first: the results row marks the trial finished).
// A stage run that meets a journalled trial again (a resumed run, whose
// work directory is the killed run's) takes it from there. A trial cut
// short has no journal, and runs again from the start (the trial clears
// its directory first).
//
// The setting each size chose is journalled in the work directory too
// (chosenFile), for a later round that asks for one more repeat of a size:
// that repeat measures the chosen setting again rather than search anew.
const (
	trialResultFile = ".sweetspot-result.arrow"
	trialModelFile  = ".sweetspot-model.arrow"
	chosenFile      = "search-chosen.jsonl"
)

// journalTrial journals a finished trial of a search in its directory.
func journalTrial(mem memory.Allocator, dir string, r tables.Result, m *tables.Model) error {
	if m != nil {
		rec := tables.BuildModels(mem, []tables.Model{*m})
		err := writeRecord(filepath.Join(dir, trialModelFile), rec)
		rec.Release()
		if err != nil {
			return err
		}
	}
	rec := tables.BuildResults(mem, []tables.Result{r})
	defer rec.Release()
	return writeRecord(filepath.Join(dir, trialResultFile), rec)
}

func writeRecord(path string, rec arrow.RecordBatch) error {
	return writeAtomic(path, func(f *os.File) error {
		w, err := ipc.NewFileWriter(f, ipc.WithSchema(rec.Schema()))
		if err != nil {
			return err
		}
		if err := w.Write(rec); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
}

// journalled is the trial of c with setting in dir, when an earlier run of
// the stage finished it: its row and its models row (nil: none). A
// journal that is missing, unreadable or of another trial (the search
// block changed) gives ok false, and the trial runs.
func journalled(mem memory.Allocator, dir string, c candidate, setting string, log hclog.Logger) (r tables.Result, m *tables.Model, ok bool) {
	var rs []tables.Result
	err := readRecords(mem, filepath.Join(dir, trialResultFile), func(rec arrow.RecordBatch) error {
		more, err := tables.ReadResults(rec)
		rs = append(rs, more...)
		return err
	})
	if errors.Is(err, fs.ErrNotExist) {
		return r, nil, false
	}
	if err == nil && len(rs) != 1 {
		err = fmt.Errorf("%d rows, want 1", len(rs))
	}
	if err == nil {
		r = rs[0]
		if r.ID != c.ID || r.Round != c.Round || r.Repeat != c.Repeat || r.Epochs != c.Epochs || r.Setting != setting {
			err = fmt.Errorf("it is of %s round %d repeat %d at %d epochs with setting %s, not of this trial", r.ID, r.Round, r.Repeat, r.Epochs, r.Setting)
		}
	}
	if err == nil && r.Status == tables.StatusOK {
		var ms []tables.Model
		err = readRecords(mem, filepath.Join(dir, trialModelFile), func(rec arrow.RecordBatch) error {
			more, err := tables.ReadModels(rec)
			ms = append(ms, more...)
			return err
		})
		switch {
		case errors.Is(err, fs.ErrNotExist):
			err = nil // the trial kept no artifact
		case err == nil && len(ms) != 1:
			err = fmt.Errorf("%d models rows, want 1", len(ms))
		case err == nil:
			m = &ms[0]
			err = m.Check()
		}
	}
	if err != nil {
		log.Warn("a search trial's journal is not used: the trial runs again", "dir", dir, "error", err)
		return tables.Result{}, nil, false
	}
	return r, m, true
}

// readRecords hands each batch of an Arrow IPC file, verified, to f.
func readRecords(mem memory.Allocator, path string, f func(arrow.RecordBatch) error) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	r, err := ipcverify.NewFileReader(file, mem)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer r.Close()
	for i := range r.NumRecords() {
		rec, err := r.RecordBatch(i)
		if err != nil {
			return fmt.Errorf("%s: batch %d: %w", path, i, err)
		}
		if err := f(rec); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	return nil
}

// chosenRecord is one line of chosenFile: the setting a size chose.
type chosenRecord struct {
	ID      string `json:"candidate_id"`
	Round   int32  `json:"round"`
	Setting string `json:"setting"`
}

// chosenSettings is the work directory's record of the settings the
// sizes chose, by candidate_id (the latest round's wins).
type chosenSettings struct {
	path string
	mu   sync.Mutex
	byID map[string]chosenRecord
}

// openChosen reads the record; a damaged line (a plugin killed mid-write)
// is skipped.
func openChosen(work string, log hclog.Logger) *chosenSettings {
	cs := &chosenSettings{path: filepath.Join(work, chosenFile), byID: map[string]chosenRecord{}}
	f, err := os.Open(cs.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			log.Warn("the record of chosen settings is unreadable: later repeats search again", "file", cs.path, "error", err)
		}
		return cs
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var rec chosenRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.ID == "" || rec.Setting == "" {
			log.Warn("the record of chosen settings: a damaged line is skipped", "file", cs.path, "line", line)
			continue
		}
		if old, ok := cs.byID[rec.ID]; !ok || rec.Round >= old.Round {
			cs.byID[rec.ID] = rec
		}
	}
	if err := sc.Err(); err != nil {
		// A line past the buffer's 1 MiB stops the scan: what follows it
		// is not read, and those sizes search again.
		log.Warn("the record of chosen settings is read only in part: later repeats of the sizes after it search again", "file", cs.path, "error", err)
	}
	return cs
}

// get is the setting candidate id chose in an earlier search.
func (cs *chosenSettings) get(id string) (string, bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	rec, ok := cs.byID[id]
	return rec.Setting, ok
}

// add records a size's chosen setting.
func (cs *chosenSettings) add(rec chosenRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.byID[rec.ID] = rec
	f, err := os.OpenFile(cs.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
