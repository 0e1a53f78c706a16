package exec

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
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
	study   string       // the study it is judged in ("": the stage's)
	judge   prune.Pruner // that study's pruner
	key     string       // the trial's directory, relative to the work directory
	control string       // its control file
	model   string       // modelKey of its candidate
	again   bool         // the model was trained before: run to its end
}

// forTrial is the pruner as trial dir, of candidate c, judged in study,
// sees it; nil without a pruner.
func (pr *pruning) forTrial(work, dir string, c tables.Candidate, study string) *trialPruning {
	if pr == nil {
		return nil
	}
	model := modelKey(c)
	key, err := filepath.Rel(work, dir)
	if err != nil {
		key = dir
	}
	return &trialPruning{pruning: pr, study: study, judge: pr.Study(study), key: filepath.ToSlash(key), control: filepath.Join(dir, controlFileName),
		model: model, again: pr.Trained(model)}
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
	tp.DoneIn(tp.study, tp.key, tp.model, curve, complete)
}

// sizeStudy is the study a search trial of candidate c is judged in: its
// size, whatever the setting, round or repeat (prune.Stage).
func sizeStudy(c tables.Candidate) string {
	return fmt.Sprintf("size|%s|%s", c.Family, c.Name)
}

// modelKey names the model a candidate trains for the pruner's record of
// trained models: its name, with what the command is told about it (its
// family, knobs and training settings), whatever round or repeat it is.
func modelKey(c tables.Candidate) string {
	key := fmt.Sprintf("%s|%s|%s|lr%g|b%d|e%d|%s", c.Family, c.Name, c.Knobs.String(), c.LearningRate, c.BatchSize, c.Epochs, c.Preprocess)
	if c.Samples > 0 {
		// Fewer rows are another training (and an unset samples keeps
		// the keys of histories written before the column).
		key += fmt.Sprintf("|s%d", c.Samples)
	}
	return key
}

// judge hands an epoch line to the pruner and answers it. Called by the
// stdout reader only.
func (o *outcome) judge(obj map[string]any) {
	tp := o.prune
	step := int(obj["epoch"].(float64)) // checked by epochAttributes
	if v, ok := obj[tp.Settings.Metric].(float64); ok {
		o.curve = append(o.curve, [2]float64{float64(step), v})
		if o.pruneReason == "" {
			// A model trained before is asked for again, at full budget
			// (prune.Stage): its values are reported, its verdict not
			// followed.
			if stop, reason := tp.judge.Report(tp.key, step, v); stop && !tp.again {
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
