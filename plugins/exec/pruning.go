package exec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
)

// controlFileName is each trial's control file, where the stage answers
// the command's epoch lines (docs/exec.md, "Stopping early"). The stage's
// history of judged curves is prune.HistoryFile in its work directory,
// shared by its rounds.
const controlFileName = ".sweetspot-control.json"

// pruning is a stage run's pruner (prune.Stage: one pruner for all its
// trials, which has read the earlier rounds' curves).
type pruning struct{ *prune.Stage }

func newPruning(s prune.Settings, work string, log hclog.Logger) *pruning {
	return &pruning{prune.Open(s, work, log)}
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
func (tp *trialPruning) done(curve [][2]float64, complete bool) { tp.Done(tp.key, curve, complete) }

// judge hands an epoch line to the pruner and answers it. Called by the
// stdout reader only.
func (o *outcome) judge(obj map[string]any) {
	tp := o.prune
	step := int(obj["epoch"].(float64)) // checked by epochAttributes
	if v, ok := obj[tp.Settings.Metric].(float64); ok {
		o.curve = append(o.curve, [2]float64{float64(step), v})
		if o.pruneReason == "" {
			if stop, reason := tp.Report(tp.key, step, v); stop {
				o.pruneReason = reason
				o.log.Info("trial pruned", "step", step, "reason", reason)
				o.graceTimer = time.AfterFunc(tp.Settings.Grace, o.endGrace)
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
