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
	tc := c.Candidate
	knobs := maps.Clone(tc.Knobs)
	for _, v := range set {
		switch v.Name {
		case tables.ColLearningRate:
			tc.LearningRate = v.V.(float64)
		case tables.ColBatchSize:
			tc.BatchSize = int32(v.V.(float64))
		case tables.ColEpochs:
			tc.Epochs = int32(v.V.(float64))
		case tables.ColPreprocess:
			tc.Preprocess = v.V.(string)
		default:
			if knobs == nil {
				knobs = tables.Knobs{}
			}
			knobs[v.Name] = v.V
		}
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

// searchSize runs one size's search and returns every trial's row, the
// chosen one marked, and the chosen trial's models row (nil: none; the
// other settings' models are not kept). Its error is only ctx's (or a
// plan that cannot run).
func (s *Stage) searchSize(ctx context.Context, c candidate, dir string, run runOne, done func(tables.Result)) ([]tables.Result, *tables.Model, error) {
	p, err := s.plan(c)
	if err != nil {
		return nil, nil, err
	}
	log := sdk.Logger(ctx).With("candidate", c.Name)
	alive := make([]int, len(p.settings))
	for i := range alive {
		alive[i] = i
	}
	var rows []tables.Result
	var models []*tables.Model // by row
	var last []int             // rows of the last rung
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
			r, m, err := run(ctx, tc, tdir)
			if err != nil {
				return err
			}
			ms[j] = m
			r.Setting = p.settings[i].JSON()
			if r.Status != tables.StatusOK {
				r.SettingScore = math.NaN()
			}
			rs[j] = r
			done(r)
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		last = last[:0]
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
	return rows, models[last[best]], nil
}

// runSearch runs every size's search, at most parallelism trials at once
// across sizes, and writes each size's rows as one batch once its search
// is done (its chosen row is known only then). A resumed run keeps the
// sizes whose search had finished; a size cut short is searched again.
func (s *Stage) runSearch(ctx context.Context, in sdk.Inputs, results *evaluation.ResultWriter, models *evaluation.ModelWriter, cands []candidate, root string, parallelism int, run runOne) error {
	cands, resumed, err := s.skipSearched(in, results, models, cands)
	if err != nil {
		return err
	}
	log := sdk.Logger(ctx)
	if resumed > 0 {
		log.Info("resuming", "sizes_searched_before", resumed, "to_search", len(cands))
	}
	total := 0
	for _, c := range cands {
		p, err := s.plan(c)
		if err != nil {
			return &sdk.InputError{Port: InputPort, Row: -1, Column: tables.ColEpochs, Err: err}
		}
		total += p.trials()
	}
	log.Info("searching", "sizes", len(cands), "search", s.search.Kind, "settings", len(s.settings), "trials", total, "parallelism", parallelism)
	dirs := trialDirs(root, cands)
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
	return evaluation.ForEach(ctx, len(cands), len(cands), func(i int) error {
		rows, m, err := s.searchSize(ctx, cands[i], dirs[i], limited, progress)
		if err != nil {
			return err
		}
		// The models row first: the results rows mark the size searched
		// on resume, so its model is in the journal with them.
		if m != nil {
			if _, err := models.Keep(*m); err != nil {
				return err
			}
		}
		return results.Write(rows...)
	})
}

// skipSearched picks up an interrupted run: the rows of each size whose
// search had finished (its chosen row is among them), and its models row,
// are written again and the size is not searched again.
func (s *Stage) skipSearched(in sdk.Inputs, results *evaluation.ResultWriter, models *evaluation.ModelWriter, cands []candidate) ([]candidate, int, error) {
	r, err := in.Reader(ResumePort)
	if errors.Is(err, sdk.ErrNotConnected) {
		return cands, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	key := func(c tables.Candidate) string { return fmt.Sprintf("%d/%s/%d", c.Round, c.ID, c.Repeat) }
	bySize := map[string][]tables.Result{}
	finished := map[string]bool{}
	for r.Next() {
		rs, err := tables.ReadResults(r.RecordBatch())
		if err != nil {
			return nil, 0, &sdk.InputError{Port: ResumePort, Row: -1, Err: err}
		}
		for _, res := range rs {
			k := key(res.Candidate)
			bySize[k] = append(bySize[k], res)
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
				k := key(tables.Candidate{ID: m.ID, Round: m.Round, Repeat: m.Repeat})
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
	n := 0
	for _, c := range cands {
		k := key(c.Candidate)
		if !finished[k] {
			todo = append(todo, c)
			continue
		}
		if err := models.Write(kept[k]...); err != nil {
			return nil, 0, err
		}
		if err := results.Write(bySize[k]...); err != nil {
			return nil, 0, err
		}
		n++
	}
	return todo, n, nil
}
