package optimization

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/space"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// A search block (plugins/internal/space) replaces the bands' tuning: each
// candidate (each size) is searched on its own. Every setting trains the
// candidate with the built-in trainer on the training rows and is judged
// by its best validation loss (the dataset's validation rows, or the
// held-out share of the training rows; never the test rows); the best
// setting's values are written into the candidate's columns, which the
// evaluation stage trains with, so the size's result is the chosen
// setting's. Every setting's run is a row of the tuning port, with its
// setting, the chosen one marked.

// searchParams are the candidates columns the built-in trainer reads, the
// names a param may take.
var searchParams = []string{tables.ColLearningRate, tables.ColBatchSize, tables.ColEpochs, tables.ColPreprocess}

// checkSearch checks a search block for this stage: its params are the
// trainer's training columns, and its metric the validation loss the
// trainer measures.
func checkSearch(c Config) (*space.Space, sdk.Diagnostics) {
	sp, diags := space.Check("search", *c.Search)
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	if c.Search.Metric != "" && c.Search.Metric != space.DefaultMetric {
		bad([]string{"search", "metric"}, "Unknown validation metric", fmt.Sprintf("The built-in trainer's settings are compared by their best validation loss (val_loss); found %q.", c.Search.Metric))
	}
	for _, a := range []struct {
		name string
		set  bool
	}{
		{"learning_rate", c.LearningRate != nil}, {"preprocess", c.Preprocess != nil},
		{"halving_epochs", c.HalvingEpochs != nil}, {"eta", c.Eta != nil}, {"band_octaves", c.BandOctaves != nil},
	} {
		if a.set {
			bad([]string{a.name}, "Tuning twice", fmt.Sprintf("%s belongs to the bands' tuning, which a search block replaces: search each size with param blocks (param \"learning_rate\", param \"preprocess\") and the search's own eta instead.", a.name))
		}
	}
	for i, pb := range c.Search.Params {
		path := func(field string) []string { return []string{"search", "param", strconv.Itoa(i), field} }
		if !slices.Contains(searchParams, pb.Name) {
			bad(path("name"), "Unknown param", fmt.Sprintf("The built-in trainer reads learning_rate, batch_size, epochs and preprocess; found %q.%s", pb.Name, suggest.Hint(pb.Name, searchParams)))
			continue
		}
		p, ok := sp.Param(pb.Name)
		if !ok {
			continue
		}
		switch pb.Name {
		case tables.ColLearningRate:
			if !p.Numeric() || !(p.Least() > 0) {
				bad(path(p.Kind), "Invalid learning_rate param", "learning_rate is a number above 0.")
			}
		case tables.ColBatchSize, tables.ColEpochs:
			if !p.Numeric() || !p.Integral() || !(p.Least() >= 1) || p.Hi > maxEpochs {
				bad(path(p.Kind), "Invalid "+pb.Name+" param", fmt.Sprintf("%s is a whole number from 1 to %d (int_range or values).", pb.Name, maxEpochs))
			}
			if pb.Name == tables.ColEpochs && sp.Kind == space.KindHalving {
				bad(path("name"), "Epochs searched by halving", "The halving search gives each rung its own epochs (the candidate's epochs are the last rung's); search epochs with grid or random.")
			}
		case tables.ColPreprocess:
			if p.Kind != space.Values || p.Numeric() {
				bad(path(p.Kind), "Invalid preprocess param", "preprocess lists preprocessings as strings, such as values = [\"standardize\", \"minmax\"].")
				continue
			}
			for _, v := range p.Values {
				if _, err := prep.Parse(v.(string)); err != nil {
					bad(path(space.Values), "Invalid preprocessing", err.Error()+".")
				}
			}
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return &sp, diags
}

// rungs are the search's rungs for c (Resource 0: the candidate's epochs).
func (s *Stage) rungs(c tables.Candidate) []space.Rung {
	if s.search.Kind == space.KindHalving {
		return s.search.Rungs(len(s.settings), max(1, int(c.Epochs)))
	}
	return []space.Rung{{Settings: len(s.settings)}}
}

// searchTrials is the number of runs the search makes for cands.
func (s *Stage) searchTrials(cands []tables.Candidate) int {
	n := 0
	for _, c := range cands {
		for _, r := range s.rungs(c) {
			n += r.Settings
		}
	}
	return n
}

// searchSize searches one candidate and returns it with its chosen
// setting (unchanged when no setting trained), and every run. Its error is
// only ctx's.
func (s *Stage) searchSize(ctx context.Context, c tables.Candidate, preps *evaluation.Preparations, prog *progress) (tables.Candidate, []run, error) {
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName).Start(ctx, "search "+c.ID, trace.WithAttributes(
		attribute.String("candidate_id", c.ID), attribute.String("search", s.search.Kind), attribute.Int("settings", len(s.settings))))
	defer span.End()
	rungs := s.rungs(c)
	alive := make([]int, len(s.settings))
	for i := range alive {
		alive[i] = i
	}
	var all []run
	var last []int
	for k, rung := range rungs {
		rs := make([]run, len(alive))
		err := evaluation.ForEach(ctx, len(alive), s.parallelism, func(j int) error {
			set := s.settings[alive[j]]
			tc, _ := set.Apply(c)
			epochs := int(tc.Epochs)
			if rung.Resource > 0 {
				epochs = rung.Resource
			}
			r, err := s.shortRun(ctx, tc, pair{tc.Preprocess, tc.LearningRate}, max(1, epochs), preps)
			if err != nil {
				return err
			}
			r.band, r.rung, r.setting = c.ID, k, set.JSON()
			rs[j] = r
			prog.step(r)
			return nil
		})
		if err != nil {
			return c, nil, err
		}
		scores := make([]float64, len(rs))
		last = last[:0]
		for j, r := range rs {
			scores[j] = r.valLoss
			if math.IsInf(r.valLoss, 0) {
				scores[j] = math.NaN()
			}
			last = append(last, len(all)+j)
		}
		all = append(all, rs...)
		if k+1 == len(rungs) {
			break
		}
		order := s.search.Rank(scores)
		next := make([]int, 0, rungs[k+1].Settings)
		for _, j := range order[:rungs[k+1].Settings] {
			next = append(next, alive[j])
			all[last[j]].promoted = true
		}
		slices.Sort(next)
		alive = next
	}
	scores := make([]float64, len(last))
	for j, i := range last {
		scores[j] = all[i].valLoss
		if math.IsInf(scores[j], 0) {
			scores[j] = math.NaN()
		}
	}
	best := s.search.Best(scores)
	if best < 0 {
		sdk.Logger(ctx).Warn("no setting trained; the candidate keeps its own settings", "candidate", c.ID)
		return c, all, nil
	}
	all[last[best]].chosen = true
	set := s.settings[alive[best]]
	span.SetAttributes(attribute.String("setting", set.JSON()), attribute.Float64("val_loss", all[last[best]].valLoss))
	sdk.Logger(ctx).Info("setting chosen", "candidate", c.ID, "setting", set.JSON(), "val_loss", all[last[best]].valLoss)
	tc, _ := set.Apply(c)
	return tc, all, nil
}
