package prune

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// HistoryFile is the file, in a stage's work directory, where a stage
// that prunes records each finished trial's curve, so that its later
// rounds (new stage runs, maybe in new plugin processes) and a resumed run
// judge their trials against every trial before them.
const HistoryFile = "pruner-history.jsonl"

// maxHistoryLine bounds one line of the history file as it is read back.
const maxHistoryLine = 16 << 20

// Stage is a stage run's pruner: one Pruner shared by every trial of the
// run, fed first with the curves of the history file.
//
// A trial of a model the stage has trained before, in this round or an
// earlier one (Trained), is a measurement the search asked for again: a
// repeat to measure the noise, or a pruned model its bracket needs. The
// stages train it to its end: its values still go to the pruner, but its
// verdict is not followed, since stopping it again would leave the search
// without the full measurement it asked for.
//
// A stage may judge its trials in studies (Study): a trial is compared
// with the trials of its own study only. The exec stage's search makes
// each model size a study, so that a setting is judged against the other
// settings of its size, never against other sizes, whose curves differ by
// design (a narrow size's best setting trails a wide size's worst, and is
// not hopeless for it). The embedded Pruner is the study "", the whole
// stage's.
type Stage struct {
	Pruner
	Settings Settings
	history  string
	log      hclog.Logger
	mu       sync.Mutex // serializes appends to history, trained and studies
	trained  map[string]bool
	studies  map[string]Pruner
}

// historyRecord is one line of the history file.
type historyRecord struct {
	Trial    string       `json:"trial"`
	Curve    [][2]float64 `json:"curve"` // [step, value] in the order reported
	Complete bool         `json:"complete"`
	Model    string       `json:"model,omitempty"` // the model trained, as the stage names it
	Study    string       `json:"study,omitempty"` // the study it was judged in ("": the stage's)
}

// Open returns a fresh pruner of s that has seen the trials recorded in
// work's history file.
func Open(s Settings, work string, log hclog.Logger) *Stage {
	st := &Stage{Pruner: New(s), Settings: s, history: filepath.Join(work, HistoryFile), log: log, trained: map[string]bool{}, studies: map[string]Pruner{}}
	st.replay()
	return st
}

// replay feeds the pruner the curves of earlier rounds' trials. The file
// is the stage's own, but a damaged line (a host killed mid-write) is
// skipped with a warning rather than trusted.
func (st *Stage) replay() {
	f, err := os.Open(st.history)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		st.log.Warn("pruner history unreadable; earlier rounds are not compared with", "file", st.history, "error", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxHistoryLine)
	line, trials := 0, 0
	for sc.Scan() {
		line++
		var rec historyRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || !validRecord(rec) {
			st.log.Warn("pruner history: a damaged line is skipped", "file", st.history, "line", line)
			continue
		}
		p := st.Study(rec.Study)
		for _, sv := range rec.Curve {
			p.Report(rec.Trial, int(sv[0]), sv[1])
		}
		p.Finish(rec.Trial, rec.Complete)
		if rec.Model != "" {
			st.trained[rec.Model] = true
		}
		trials++
	}
	if err := sc.Err(); err != nil {
		st.log.Warn("pruner history: reading stopped", "file", st.history, "line", line+1, "error", err)
	}
	st.log.Info("pruner history", "trials", trials)
}

func validRecord(r historyRecord) bool {
	if r.Trial == "" {
		return false
	}
	for _, sv := range r.Curve {
		if sv[0] < 0 || sv[0] != math.Trunc(sv[0]) || sv[0] > math.MaxInt32 || math.IsNaN(sv[1]) || math.IsInf(sv[1], 0) {
			return false
		}
	}
	return true
}

// Trained reports whether a trial of model ended before (in this stage
// run or a recorded one): a trial of it now is trained to its end.
func (st *Stage) Trained(model string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return model != "" && st.trained[model]
}

// Study is the pruner of a study: the stage's for "", else one of its
// own, made on first use (and fed by the history's trials of that study).
func (st *Stage) Study(name string) Pruner {
	if name == "" {
		return st.Pruner
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	p, ok := st.studies[name]
	if !ok {
		p = New(st.Settings)
		st.studies[name] = p
	}
	return p
}

// Done records the end of a trial of the stage's study: in the pruner
// (complete when it ran its whole budget), and in the history for the
// rounds to come, with the curve it reported and the model it trained.
func (st *Stage) Done(trial, model string, curve [][2]float64, complete bool) {
	st.DoneIn("", trial, model, curve, complete)
}

// DoneIn is Done for a trial of a study.
func (st *Stage) DoneIn(study, trial, model string, curve [][2]float64, complete bool) {
	st.Study(study).Finish(trial, complete)
	b, err := json.Marshal(historyRecord{Trial: trial, Curve: curve, Complete: complete, Model: model, Study: study})
	if err == nil {
		st.mu.Lock()
		defer st.mu.Unlock()
		if model != "" {
			st.trained[model] = true
		}
		var f *os.File
		if f, err = os.OpenFile(st.history, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, err = f.Write(append(b, '\n'))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		st.log.Warn("pruner history not written: later rounds will not compare with this trial", "trial", trial, "error", err)
	}
}
