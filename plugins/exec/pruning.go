package exec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
)

// Files of pruning: the stage's history of judged curves (in its work
// directory, shared by its rounds) and each trial's control file, where
// the stage answers the command's epoch lines (docs/exec.md, "Stopping
// early").
const (
	pruneHistoryFile = "pruner-history.jsonl"
	controlFileName  = ".sweetspot-control.json"
)

// maxHistoryLine bounds one line of the history file as it is read back.
const maxHistoryLine = 16 << 20

// pruning is a stage run's pruner. Its history file records each finished
// trial's curve, so that a later round (a new stage run, maybe in a new
// plugin process) judges its trials against every earlier round's.
type pruning struct {
	settings prune.Settings
	p        prune.Pruner
	history  string
	log      hclog.Logger
	mu       sync.Mutex // serializes appends to history
}

// historyRecord is one line of the history file.
type historyRecord struct {
	Trial    string       `json:"trial"`
	Curve    [][2]float64 `json:"curve"` // [step, value] in the order reported
	Complete bool         `json:"complete"`
}

func newPruning(s prune.Settings, work string, log hclog.Logger) *pruning {
	pr := &pruning{settings: s, p: prune.New(s), history: filepath.Join(work, pruneHistoryFile), log: log}
	pr.replay()
	return pr
}

// replay feeds the pruner the curves of earlier rounds' trials. The file
// is the stage's own, but a damaged line (a host killed mid-write) is
// skipped with a warning rather than trusted.
func (pr *pruning) replay() {
	f, err := os.Open(pr.history)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		pr.log.Warn("pruner history unreadable; earlier rounds are not compared with", "file", pr.history, "error", err)
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
			pr.log.Warn("pruner history: a damaged line is skipped", "file", pr.history, "line", line)
			continue
		}
		for _, sv := range rec.Curve {
			pr.p.Report(rec.Trial, int(sv[0]), sv[1])
		}
		pr.p.Finish(rec.Trial, rec.Complete)
		trials++
	}
	if err := sc.Err(); err != nil {
		pr.log.Warn("pruner history: reading stopped", "file", pr.history, "line", line+1, "error", err)
	}
	pr.log.Info("pruner history", "trials", trials)
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

// trialPruning is one trial's side of the pruner.
type trialPruning struct {
	*pruning
	key     string // the trial's directory, relative to the work directory
	control string // its control file
}

// forTrial is the pruner as trial dir sees it; nil without a pruner.
func (pr *pruning) forTrial(work, dir string) *trialPruning {
	if pr == nil {
		return nil
	}
	key, err := filepath.Rel(work, dir)
	if err != nil {
		key = dir
	}
	return &trialPruning{pruning: pr, key: filepath.ToSlash(key), control: filepath.Join(dir, controlFileName)}
}

// answer replaces the trial's control file with the answer to its step.
func (tp *trialPruning) answer(step int, reason string) error {
	a := struct {
		Step   int    `json:"step"`
		Stop   bool   `json:"stop"`
		Reason string `json:"reason,omitempty"`
	}{step, reason != "", reason}
	b, _ := json.Marshal(a)
	return writeAtomic(tp.control, func(f *os.File) error {
		_, err := f.Write(append(b, '\n'))
		return err
	})
}

// done records the trial's end: in the pruner, and in the history for the
// rounds to come.
func (tp *trialPruning) done(curve [][2]float64, complete bool) {
	tp.p.Finish(tp.key, complete)
	b, err := json.Marshal(historyRecord{Trial: tp.key, Curve: curve, Complete: complete})
	if err == nil {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		var f *os.File
		if f, err = os.OpenFile(tp.history, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, err = f.Write(append(b, '\n'))
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil {
		tp.log.Warn("pruner history not written: later rounds will not compare with this trial", "trial", tp.key, "error", err)
	}
}

// judge hands an epoch line to the pruner and answers it. Called by the
// stdout reader only.
func (o *outcome) judge(obj map[string]any) {
	tp := o.prune
	step := int(obj["epoch"].(float64)) // checked by epochAttributes
	if v, ok := obj[tp.settings.Metric].(float64); ok {
		o.curve = append(o.curve, [2]float64{float64(step), v})
		if o.pruneReason == "" {
			if stop, reason := tp.p.Report(tp.key, step, v); stop {
				o.pruneReason = reason
				o.log.Info("trial pruned", "step", step, "reason", reason)
				o.graceTimer = time.AfterFunc(tp.settings.Grace, o.endGrace)
			}
		}
	}
	if err := tp.answer(step, o.pruneReason); err != nil {
		o.log.Warn("cannot answer the command's epoch line", "file", tp.control, "error", err)
	}
}

// endGrace ends a pruned command's grace: run kills its process group.
func (o *outcome) endGrace() { o.graceOnce.Do(func() { close(o.graceOver) }) }

// prunedNote is the end of a pruned trial's error when its command had to
// be killed.
func prunedNote(grace fmt.Stringer) string {
	return fmt.Sprintf("; the command did not end within the pruner's grace of %s and its process group was killed", grace)
}
