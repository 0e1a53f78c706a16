package exec

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/space"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A search block (plugins/internal/space) turns each candidate, a model
// size, into one trial per setting: the command runs with the setting's
// values, by name, and reports the search's validation metric with its
// final metrics; the best setting on that metric is the size's. Every
// trial's row is written, with its setting; the chosen one is marked
// setting_chosen, and it is the size's result for the resize stage.
//
// A param named like a training column of the candidates table sets that
// column (and so SWEETSPOT_LEARNING_RATE and the like); any other param is
// a knob: at the top of the candidate's object, in "knobs" and in
// SWEETSPOT_<NAME>, replacing a knob of the same name.

// settingColumns are the candidates columns a param may set.
var settingColumns = []string{tables.ColLearningRate, tables.ColBatchSize, tables.ColEpochs, tables.ColPreprocess}

// reservedParams are the candidates columns a param may not set: they say
// which model the trial trains and where it sits in the run, not how it is
// trained.
var reservedParams = []string{
	tables.ColCandidateID, tables.ColName, tables.ColFamily, tables.ColFamilyKind, tables.ColSize,
	tables.ColDepth, tables.ColWidth, tables.ColParams, tables.ColFLOPs, tables.ColQuantize,
	tables.ColPruneFraction, tables.ColRound, tables.ColRepeat, tables.ColKnobs, "seed",
}

// checkSearch checks a search block's params against what the exec stage
// can hand the command.
func checkSearch(b space.Block) (*space.Space, sdk.Diagnostics) {
	sp, diags := space.Check("search", b)
	bad := func(i int, field, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail,
			Path: []string{"search", "param", strconv.Itoa(i), field}})
	}
	for i, pb := range b.Params {
		if slices.Contains(reservedParams, pb.Name) {
			what := "the candidate's identity or shape"
			if pb.Name == "seed" {
				what = "the trial's seed, which the stage derives (SWEETSPOT_SEED)"
			}
			bad(i, "name", "Reserved param name", fmt.Sprintf("%q is %s, not a training setting; name the knob otherwise.", pb.Name, what))
			continue
		}
		p, ok := sp.Param(pb.Name)
		if !ok {
			continue // refused by space.Check
		}
		switch pb.Name {
		case tables.ColLearningRate:
			if !p.Numeric() || !(p.Least() > 0) {
				bad(i, p.Kind, "Invalid learning_rate param", "learning_rate sets the candidates' learning rate: every value is a number above 0.")
			}
		case tables.ColBatchSize, tables.ColEpochs:
			if !p.Numeric() || !p.Integral() || !(p.Least() >= 1) || p.Hi > math.MaxInt32 {
				bad(i, p.Kind, "Invalid "+pb.Name+" param", fmt.Sprintf("%s sets the candidates' %s: every value is a whole number of at least 1 (int_range or values).", pb.Name, pb.Name))
			}
			if pb.Name == tables.ColEpochs && sp.Kind == space.KindHalving {
				bad(i, "name", "Epochs searched by halving", "The halving search gives each rung its own epochs (the candidate's epochs are the last rung's); search epochs with grid or random.")
			}
		case tables.ColPreprocess:
			if p.Numeric() {
				bad(i, p.Kind, "Invalid preprocess param", "preprocess sets the candidates' preprocessing: list its values as strings, such as [\"standardize\", \"minmax\"].")
			}
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return &sp, diags
}

// withSetting is c trained with a setting (and, for a halving rung, with
// epochs epochs; 0 keeps the candidate's).
func withSetting(c candidate, set space.Setting, epochs int) candidate {
	tc, rest := set.Apply(c.Candidate)
	knobs := maps.Clone(tc.Knobs)
	for _, v := range rest {
		if knobs == nil {
			knobs = tables.Knobs{}
		}
		knobs[v.Name] = v.V
	}
	tc.Knobs = knobs
	if epochs > 0 {
		tc.Epochs = int32(epochs)
	}
	return newCandidate(tc, c.extra)
}

// searchScore reads the search's validation metric from a trial's final
// metrics: its value, or an error saying why there is none.
func (s *Stage) searchScore(values map[string]any) (float64, error) {
	m := s.search.Metric
	switch v := values[m].(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.NaN(), fmt.Errorf("%s is not a finite number", m)
		}
		return v, nil
	case nil:
		return math.NaN(), fmt.Errorf("no %s: the search picks each size's setting by this validation metric; report it with the final metrics", m)
	default:
		return math.NaN(), fmt.Errorf("%s is %s, want a number", m, describe(v))
	}
}

// searchPlan is the trials one size's search runs, rung by rung (grid and
// random: one rung at the candidate's epochs).
type searchPlan struct {
	settings []space.Setting
	rungs    []space.Rung // Resource 0: the candidate's epochs
}

func (s *Stage) plan(c candidate) (searchPlan, error) {
	p := searchPlan{settings: s.settings}
	if s.search.Kind != space.KindHalving {
		p.rungs = []space.Rung{{Settings: len(p.settings)}}
		return p, nil
	}
	if c.Epochs < 1 {
		return p, fmt.Errorf("candidate %s has epochs %d: the halving search splits the candidate's epochs into rungs, so it needs at least 1", c.ID, c.Epochs)
	}
	p.rungs = s.search.Rungs(len(p.settings), int(c.Epochs))
	return p, nil
}

func (p searchPlan) trials() int {
	n := 0
	for _, r := range p.rungs {
		n += r.Settings
	}
	return n
}

// runOne runs one trial and gives its models row (nil: none).
type runOne func(ctx context.Context, c candidate, dir string) (tables.Result, *tables.Model, error)

// searchTrial runs one trial of a search with setting set (c has it
// applied), or takes it from its journal when an earlier run of the stage
// finished it (searchjournal.go), and journals it when it ends. Its row
// carries the setting; its error is only ctx's.
func (s *Stage) searchTrial(ctx context.Context, run runOne, c candidate, dir string, set space.Setting) (tables.Result, *tables.Model, error) {
	js := set.JSON()
	mem, log := sdk.Allocator(ctx), sdk.Logger(ctx).With("candidate", c.Name)
	if r, m, ok := journalled(mem, dir, c, js, log); ok {
		log.Info("trial finished before, not run again", "setting", js, "repeat", c.Repeat, "status", r.Status)
		return r, m, nil
	}
	r, m, err := run(ctx, c, dir)
	if err != nil {
		return r, m, err
	}
	r.Setting = js
	if r.Status != tables.StatusOK {
		r.SettingScore = math.NaN()
	}
	if err := journalTrial(mem, dir, r, m); err != nil {
		log.Warn("a search trial is not journalled: a resumed run trains it again", "dir", dir, "error", err)
	}
	return r, m, nil
}

// searchSize runs one size's search and returns every trial's row, the
// chosen one marked, the chosen trial's models row (nil: none; the other
// settings' models are not kept) and the chosen setting's index. Its
// error is only ctx's (or a plan that cannot run).
func (s *Stage) searchSize(ctx context.Context, c candidate, dir string, run runOne, done func(tables.Result)) ([]tables.Result, *tables.Model, int, error) {
	p, err := s.plan(c)
	if err != nil {
		return nil, nil, 0, err
	}
	log := sdk.Logger(ctx).With("candidate", c.Name)
	alive := make([]int, len(p.settings))
	for i := range alive {
		alive[i] = i
	}
	var rows []tables.Result
	var models []*tables.Model // by row
	var last []int             // rows of the last rung
	var lastSettings []int     // their settings
	for k, rung := range p.rungs {
		rs := make([]tables.Result, len(alive))
		ms := make([]*tables.Model, len(alive))
		err := evaluation.ForEach(ctx, len(alive), len(alive), func(j int) error {
			i := alive[j]
			tc := withSetting(c, p.settings[i], rung.Resource)
			tdir := filepath.Join(dir, fmt.Sprintf("s%d", i))
			if len(p.rungs) > 1 {
				tdir += fmt.Sprintf("-rung%d", k)
			}
			r, m, err := s.searchTrial(ctx, run, tc, tdir, p.settings[i])
			if err != nil {
				return err
			}
			rs[j], ms[j] = r, m
			done(r)
			return nil
		})
		if err != nil {
			return nil, nil, 0, err
		}
		last, lastSettings = last[:0], slices.Clone(alive)
		scores := make([]float64, len(rs))
		for j, r := range rs {
			scores[j] = r.SettingScore
			last = append(last, len(rows)+j)
		}
		rows = append(rows, rs...)
		models = append(models, ms...)
		if k+1 == len(p.rungs) {
			break
		}
		order := s.search.Rank(scores)
		next := make([]int, 0, p.rungs[k+1].Settings)
		for _, j := range order[:p.rungs[k+1].Settings] {
			next = append(next, alive[j])
		}
		slices.Sort(next)
		log.Info("search rung", "rung", k, "epochs", rung.Resource, "settings", len(alive), "kept", len(next))
		alive = next
	}
	// The size's setting is the best of the last rung on validation; when
	// none has a score (every trial failed), the last rung's first row
	// stands for the size, so that the size's failure is seen.
	scores := make([]float64, len(last))
	for j, i := range last {
		scores[j] = rows[i].SettingScore
	}
	best := s.search.Best(scores)
	if best < 0 {
		best = 0
	}
	rows[last[best]].SettingChosen = true
	log.Info("setting chosen", "setting", rows[last[best]].Setting, "metric", s.search.Metric, "score", rows[last[best]].SettingScore, "status", rows[last[best]].Status)
	return rows, models[last[best]], lastSettings[best], nil
}

// sizeTrials is one size of a stage run: its candidates, one per repeat
// (repeats, or resize asking for one more measurement), lowest repeat
// first, and their working directories.
type sizeTrials struct {
	cands []candidate
	dirs  []string
}

// bySize groups the candidates of each size (round and candidate_id),
// each size's lowest repeat first.
func bySize(cands []candidate, dirs []string) []sizeTrials {
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return int(cands[a].Repeat) - int(cands[b].Repeat) })
	var out []sizeTrials
	at := map[string]int{}
	for _, i := range order {
		c := cands[i]
		k := sizeKey(c.Candidate)
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, sizeTrials{})
		}
		out[j].cands = append(out[j].cands, c)
		out[j].dirs = append(out[j].dirs, dirs[i])
	}
	return out
}

// sizeKey names a size of a stage run, whatever its repeat.
func sizeKey(c tables.Candidate) string { return fmt.Sprintf("%d/%s", c.Round, c.ID) }

// settingIndex is the index of the setting whose JSON is js, or -1.
func (s *Stage) settingIndex(js string) int {
	return slices.IndexFunc(s.settings, func(set space.Setting) bool { return set.JSON() == js })
}

// searchRepeats runs one size: its setting is searched once, with its
// lowest repeat, and its other repeats measure the chosen setting again,
// each a trial of its own seed. A size whose lowest repeat is a later one
// (resize asking for one more measurement) measures the setting an
// earlier round chose for it (chosen), and is searched only when none was
// recorded. It returns every row (each repeat's marked chosen, as the
// size's measurements) and the models rows to keep.
func (s *Stage) searchRepeats(ctx context.Context, g sizeTrials, chosen *chosenSettings, run runOne, done func(tables.Result)) ([]tables.Result, []tables.Model, error) {
	first := g.cands[0]
	log := sdk.Logger(ctx).With("candidate", first.Name)
	idx := -1
	if first.Repeat > 0 {
		if js, ok := chosen.get(first.ID); ok {
			idx = s.settingIndex(js)
		}
		if idx < 0 {
			log.Info("no setting was chosen for this size before (or it is no longer in the search): repeat searched anew", "repeat", first.Repeat)
		}
	}
	var rows []tables.Result
	var keep []tables.Model
	measure, dirs := g.cands, g.dirs
	if idx < 0 {
		rs, m, i, err := s.searchSize(ctx, first, g.dirs[0], run, done)
		if err != nil {
			return nil, nil, err
		}
		rows, idx = rs, i
		if m != nil {
			keep = append(keep, *m)
		}
		if err := chosen.add(chosenRecord{ID: first.ID, Round: first.Round, Setting: s.settings[idx].JSON()}); err != nil {
			log.Warn("the chosen setting is not recorded: a later repeat of this size searches anew", "error", err)
		}
		measure, dirs = g.cands[1:], g.dirs[1:]
	}
	set := s.settings[idx]
	rs := make([]tables.Result, len(measure))
	ms := make([]*tables.Model, len(measure))
	err := evaluation.ForEach(ctx, len(measure), len(measure), func(j int) error {
		r, m, err := s.searchTrial(ctx, run, withSetting(measure[j], set, 0), filepath.Join(dirs[j], fmt.Sprintf("s%d", idx)), set)
		if err != nil {
			return err
		}
		r.SettingChosen = true
		rs[j], ms[j] = r, m
		done(r)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for j := range rs {
		if ms[j] != nil {
			keep = append(keep, *ms[j])
		}
	}
	return append(rows, rs...), keep, nil
}

// runSearch runs every size's search, at most parallelism trials at once
// across sizes, and writes each size's rows as one batch once its search
// and its repeats are done (its chosen row is known only then). A resumed
// run keeps the sizes whose rows had been written; a size cut short runs
// again, but its finished trials come from their journals.
func (s *Stage) runSearch(ctx context.Context, in sdk.Inputs, results *evaluation.ResultWriter, models *evaluation.ModelWriter, cands []candidate, work string, parallelism int, run runOne) error {
	cands, resumed, err := s.skipSearched(in, results, models, cands)
	if err != nil {
		return err
	}
	log := sdk.Logger(ctx)
	if resumed > 0 {
		log.Info("resuming", "sizes_searched_before", resumed, "to_search", len(cands))
	}
	chosen := openChosen(work, log)
	sizes := bySize(cands, trialDirs(filepath.Join(work, "trials"), cands))
	total := 0
	for _, g := range sizes {
		total += len(g.cands) - 1
		if js, ok := chosen.get(g.cands[0].ID); ok && g.cands[0].Repeat > 0 && s.settingIndex(js) >= 0 {
			total++
			continue
		}
		p, err := s.plan(g.cands[0])
		if err != nil {
			return &sdk.InputError{Port: InputPort, Row: -1, Column: tables.ColEpochs, Err: err}
		}
		total += p.trials()
	}
	log.Info("searching", "sizes", len(sizes), "search", s.search.Kind, "settings", len(s.settings), "trials", total, "parallelism", parallelism)
	sem := make(chan struct{}, parallelism)
	limited := func(ctx context.Context, c candidate, dir string) (tables.Result, *tables.Model, error) {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return tables.Result{}, nil, ctx.Err()
		}
		defer func() { <-sem }()
		return run(ctx, c, dir)
	}
	var mu sync.Mutex
	done := 0
	progress := func(r tables.Result) {
		mu.Lock()
		done++
		p := sdk.Progress{Done: int64(done), Total: int64(total), Message: progressMessage(r) + " [" + r.Setting + "]", Metrics: progressMetrics(r)}
		mu.Unlock()
		sdk.ReportProgress(ctx, p)
	}
	return evaluation.ForEach(ctx, len(sizes), len(sizes), func(i int) error {
		rows, ms, err := s.searchRepeats(ctx, sizes[i], chosen, limited, progress)
		if err != nil {
			return err
		}
		// The models rows first: the results rows mark the size searched
		// on resume, so its models are in the journal with them.
		for _, m := range ms {
			if _, err := models.Keep(m); err != nil {
				return err
			}
		}
		return results.Write(rows...)
	})
}

// skipSearched picks up an interrupted run: the rows of each size whose
// search had finished (its chosen rows are among them), and its models
// rows, are written again and the size, every repeat of it, is not run
// again.
func (s *Stage) skipSearched(in sdk.Inputs, results *evaluation.ResultWriter, models *evaluation.ModelWriter, cands []candidate) ([]candidate, int, error) {
	r, err := in.Reader(ResumePort)
	if errors.Is(err, sdk.ErrNotConnected) {
		return cands, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	key := sizeKey
	rowsOf := map[string][]tables.Result{}
	finished := map[string]bool{}
	for r.Next() {
		rs, err := tables.ReadResults(r.RecordBatch())
		if err != nil {
			return nil, 0, &sdk.InputError{Port: ResumePort, Row: -1, Err: err}
		}
		for _, res := range rs {
			k := key(res.Candidate)
			rowsOf[k] = append(rowsOf[k], res)
			if res.SettingChosen {
				finished[k] = true
			}
		}
	}
	if err := r.Err(); err != nil {
		return nil, 0, err
	}
	kept := map[string][]tables.Model{}
	if mr, err := in.Reader(ResumeModelsPort); err == nil {
		for mr.Next() {
			ms, err := tables.ReadModels(mr.RecordBatch())
			if err != nil {
				return nil, 0, &sdk.InputError{Port: ResumeModelsPort, Row: -1, Err: err}
			}
			for _, m := range ms {
				k := key(tables.Candidate{ID: m.ID, Round: m.Round})
				kept[k] = append(kept[k], m)
			}
		}
		if err := mr.Err(); err != nil {
			return nil, 0, err
		}
	} else if !errors.Is(err, sdk.ErrNotConnected) {
		return nil, 0, err
	}
	var todo []candidate
	written := map[string]bool{}
	for _, c := range cands {
		k := key(c.Candidate)
		if !finished[k] {
			todo = append(todo, c)
			continue
		}
		if written[k] {
			continue // another repeat of the size
		}
		written[k] = true
		if err := models.Write(kept[k]...); err != nil {
			return nil, 0, err
		}
		if err := results.Write(rowsOf[k]...); err != nil {
			return nil, 0, err
		}
	}
	n := len(written)
	return todo, n, nil
}
