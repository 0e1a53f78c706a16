// Package optimization is the "optimization" stage: it picks each size
// band's learning rate and preprocessing by short training runs with
// successive halving, and expands every candidate into the post-training
// compressions to try (int8 quantization, magnitude pruning).
//
// Input port "input" is a candidates table; input port "dataset" is a
// dataset stage's data port. Output port "candidates" is the candidates
// table again, with learning_rate and preprocess chosen per band and one row
// per candidate × quantize × prune option. Output port "tuning" records
// every short run (see TuningSchema), the evidence for each choice.
//
// # Bands
//
// Candidates of one family and depth whose widths fall in the same
// band_octaves-wide octave band (floor(log2(width) / band_octaves)) share a
// band and its choice; the linear baseline is a band of its own. Each band
// is tuned on its representative, the candidate of median width.
//
// # Successive halving
//
// Jamieson & Talwalkar (2016), the inner loop of Hyperband: every
// (preprocess, learning_rate) pair trains the representative for
// halving_epochs epochs; the ceil(n/eta) pairs with the lowest validation
// loss go on to a rung of eta times the epochs (retrained from scratch),
// until one remains. A run whose loss diverges ranks last. Validation rows
// are the dataset's, or a seeded share of the training rows when it has none
// (never the test rows, which only evaluation may see). A band with a
// single pair is not tuned.
//
// # Search
//
// A search block (plugins/internal/space: search "grid", "random" or
// "halving" with param blocks) replaces the bands: each candidate is
// searched on its own over the trainer's learning_rate, batch_size, epochs
// and preprocess. Every setting trains the candidate (halving: a rung's
// epochs, up to the candidate's own) and is compared by its best
// validation loss, on the dataset's validation rows or the held-out share
// of the training rows, never the test rows. The least-loss setting's
// values become the candidate's columns, which the evaluation stage
// trains with; every setting's run is a tuning row with its setting as
// JSON, the chosen one marked.
//
// # Expansion
//
// Every candidate becomes one row per (quantize, prune) pair, in that
// order; the candidate_id gets "-int8" for int8 and "-p50" for a prune
// fraction of 0.5 (the fraction in percent), e.g. "mlp-d1-w64-int8-p50".
// The evaluation stage trains each float model once for all its variants.
package optimization

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/space"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "optimization"

// Port names.
const (
	InputPort   = sdk.PrimaryInput
	DatasetPort = "dataset"
	OutputPort  = "candidates"
	TuningPort  = "tuning"
)

// TracerName is the instrumentation scope of the band spans.
const TracerName = "github.com/sweetspot-ml/sweetspot/plugins/optimization"

// Defaults.
var (
	DefaultLearningRates = []float64{1e-3, 3e-3, 1e-2}
	DefaultPreprocess    = []string{prep.Standardize}
	DefaultQuantize      = []string{tables.None}
	DefaultPrune         = []float64{0}
)

const (
	DefaultHalvingEpochs = 4
	DefaultEta           = 2
	DefaultBandOctaves   = 2
	DefaultSeed          = 1
)

// Limits that keep a typo from asking for days.
const (
	maxOptions     = 64
	maxEpochs      = 100_000
	maxParallelism = 1024
)

// Config is the body of a `stage "optimization" "NAME" {}` block.
type Config struct {
	LearningRate    []float64    `hcl:"learning_rate,optional" doc:"Learning rates to choose from, per size band (default [0.001, 0.003, 0.01])."`
	Preprocess      []string     `hcl:"preprocess,optional" doc:"Preprocessings to choose from, per size band, such as \"standardize\", \"minmax\", \"pca:0.95\" or \"standardize+pca:0.95\" (default [\"standardize\"])."`
	Quantize        []string     `hcl:"quantize,optional" doc:"Post-training quantizations to try on every candidate: none or int8 (default [\"none\"])."`
	Prune           []float64    `hcl:"prune,optional" doc:"Magnitude pruning fractions to try on every candidate, each at least 0 and below 1 (default [0])."`
	HalvingEpochs   *int         `hcl:"halving_epochs,optional" doc:"Epochs of successive halving's first rung (default 4)."`
	Eta             *int         `hcl:"eta,optional" doc:"Successive halving keeps the best 1/eta of the pairs at each rung and multiplies their epochs by eta (default 2)."`
	BandOctaves     *int         `hcl:"band_octaves,optional" doc:"Width of a size band, in octaves of width: candidates of one depth within it share a learning rate (default 2)."`
	Parallelism     *int         `hcl:"parallelism,optional" doc:"Short runs trained at once (default 1)."`
	Seed            *int64       `hcl:"seed,optional" doc:"Seed of the short runs (default 1)."`
	Search          *space.Block `hcl:"search,block" doc:"Search each candidate on its own instead of tuning bands: search \"grid\", \"random\" (trials, seed) or \"halving\" (successive halving over random settings, the candidate's epochs split into rungs; eta, min_resource), with param blocks naming the trainer's learning_rate, batch_size, epochs and preprocess (values, uniform, log_uniform or int_range). The setting with the best validation loss is written into the candidate's columns; the tuning port records every setting's run."`
	HoldoutFraction *float64     `hcl:"holdout_fraction,optional" doc:"Share of the training rows held out to compare runs when the dataset has no validation split (default 0.1)."`
}

// TuningSchema is the "tuning" port's schema: one row per short run.
var TuningSchema = arrow.NewSchema([]arrow.Field{
	{Name: "band", Type: arrow.BinaryTypes.String},
	{Name: "candidate_id", Type: arrow.BinaryTypes.String},
	{Name: "rung", Type: arrow.PrimitiveTypes.Int32},
	{Name: "epochs", Type: arrow.PrimitiveTypes.Int32},
	{Name: "learning_rate", Type: arrow.PrimitiveTypes.Float64},
	{Name: "preprocess", Type: arrow.BinaryTypes.String},
	{Name: "val_loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "error", Type: arrow.BinaryTypes.String},
	{Name: "promoted", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "chosen", Type: arrow.FixedWidthTypes.Boolean},
	{Name: "setting", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		Description: "Chooses learning rate and preprocessing per size band by successive halving, and expands candidates by quantization and pruning.",
		Inputs: []sdk.Port{
			{Name: InputPort, Description: "The candidates (model_choice's candidates table).", Schema: tables.CandidatesSchema},
			{Name: DatasetPort, Schema: tables.DatasetSchema, Description: "The dataset the short runs train on (a dataset stage's data port)."},
		},
		Outputs: []sdk.Port{
			{Name: OutputPort, Description: "The candidates with learning_rate and preprocess chosen, one row per quantize × prune option.", Schema: tables.CandidatesSchema},
			{Name: TuningPort, Description: "Every short run of successive halving: band, rung, epochs, learning rate, preprocessing, validation loss, promoted, chosen.", Schema: TuningSchema},
		},
	}
}

// Register adds the optimization stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage tunes and expands the candidates when run.
type Stage struct {
	lrs           []float64
	preprocess    []string
	quantize      []string
	prune         []float64
	halvingEpochs int
	eta           int
	bandOctaves   int
	parallelism   int
	seed          uint64
	holdout       float64
	trainer       nn.Trainer
	search        *space.Space    // nil: the bands are tuned
	settings      []space.Setting // the search's, the same for every candidate
}

var _ sdk.Stage = (*Stage)(nil)

// New checks a config and returns the stage.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	s := &Stage{
		lrs: DefaultLearningRates, preprocess: DefaultPreprocess, quantize: DefaultQuantize, prune: DefaultPrune,
		halvingEpochs: DefaultHalvingEpochs, eta: DefaultEta, bandOctaves: DefaultBandOctaves, parallelism: 1,
		seed: DefaultSeed, holdout: evaluation.DefaultHoldoutFraction, trainer: nn.Gonum{},
	}
	list := func(name string, n int) bool {
		switch {
		case n == 0:
			bad([]string{name}, "Empty "+strings.ReplaceAll(name, "_", " ")+" list", fmt.Sprintf("%s lists the options to try; give at least one or leave it out for the default.", name))
		case n > maxOptions:
			bad([]string{name}, "Too many options", fmt.Sprintf("%s has %d options; at most %d are allowed.", name, n, maxOptions))
		default:
			return true
		}
		return false
	}
	if c.LearningRate != nil && list("learning_rate", len(c.LearningRate)) {
		s.lrs = slices.Clone(c.LearningRate)
		for i, lr := range s.lrs {
			if !(lr > 0 && lr < math.Inf(1)) {
				bad([]string{"learning_rate", strconv.Itoa(i)}, "Invalid learning rate", fmt.Sprintf("A learning rate must be a positive number; found %g.", lr))
			} else if slices.Index(s.lrs, lr) < i {
				bad([]string{"learning_rate", strconv.Itoa(i)}, "Duplicate learning rate", fmt.Sprintf("%g is listed twice.", lr))
			}
		}
	}
	if c.Preprocess != nil && list("preprocess", len(c.Preprocess)) {
		s.preprocess = nil
		for i, p := range c.Preprocess {
			spec, err := prep.Parse(p)
			if err != nil {
				bad([]string{"preprocess", strconv.Itoa(i)}, "Invalid preprocessing", err.Error()+".")
				continue
			}
			name := spec.String()
			if slices.Contains(s.preprocess, name) {
				bad([]string{"preprocess", strconv.Itoa(i)}, "Duplicate preprocessing", fmt.Sprintf("%q is listed twice.", name))
			}
			s.preprocess = append(s.preprocess, name)
		}
	}
	quantizers := []string{tables.None, evaluation.QuantizeInt8}
	if c.Quantize != nil && list("quantize", len(c.Quantize)) {
		s.quantize = nil
		for i, q := range c.Quantize {
			if !slices.Contains(quantizers, q) {
				bad([]string{"quantize", strconv.Itoa(i)}, "Unknown quantization", fmt.Sprintf("quantize options are none and int8; found %q.%s", q, suggest.Hint(q, quantizers)))
			} else if slices.Contains(s.quantize, q) {
				bad([]string{"quantize", strconv.Itoa(i)}, "Duplicate quantization", fmt.Sprintf("%q is listed twice.", q))
			}
			s.quantize = append(s.quantize, q)
		}
	}
	if c.Prune != nil && list("prune", len(c.Prune)) {
		s.prune = slices.Clone(c.Prune)
		for i, p := range s.prune {
			if !(p >= 0 && p < 1) {
				bad([]string{"prune", strconv.Itoa(i)}, "Invalid prune fraction", fmt.Sprintf("A prune fraction is the share of weights set to zero, at least 0 and below 1; found %g.", p))
			} else if slices.Index(s.prune, p) < i {
				bad([]string{"prune", strconv.Itoa(i)}, "Duplicate prune fraction", fmt.Sprintf("%g is listed twice.", p))
			}
		}
	}
	between := func(name string, v *int, lo, hi int, dst *int) {
		if v == nil {
			return
		}
		if *v < lo || *v > hi {
			bad([]string{name}, "Invalid "+strings.ReplaceAll(name, "_", " "), fmt.Sprintf("%s must be between %d and %d; found %d.", name, lo, hi, *v))
			return
		}
		*dst = *v
	}
	between("halving_epochs", c.HalvingEpochs, 1, maxEpochs, &s.halvingEpochs)
	between("eta", c.Eta, 2, maxOptions, &s.eta)
	between("band_octaves", c.BandOctaves, 1, 32, &s.bandOctaves)
	between("parallelism", c.Parallelism, 1, maxParallelism, &s.parallelism)
	if c.Seed != nil {
		s.seed = uint64(*c.Seed)
	}
	if c.HoldoutFraction != nil {
		s.holdout = *c.HoldoutFraction
		if !(s.holdout > 0 && s.holdout < 1) {
			bad([]string{"holdout_fraction"}, "Invalid holdout fraction", fmt.Sprintf("holdout_fraction must be above 0 and below 1: the short runs are compared on held-out rows; found %g.", s.holdout))
		}
	}
	if c.Search != nil {
		sp, d := checkSearch(c)
		diags = append(diags, d...)
		if sp != nil {
			s.search, s.settings = sp, sp.Settings()
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, nil
}

// Band is a group of candidates sharing a choice.
type Band struct {
	Name string
	// Members index the candidates, in width order.
	Members []int
	// Representative indexes the candidate tuned for the band.
	Representative int
}

// Bands groups candidates by family, depth and width band, in order of
// first appearance.
func Bands(cands []tables.Candidate, octaves int) []Band {
	var bands []Band
	index := map[string]int{}
	for i, c := range cands {
		name := c.Family
		if c.Family != tables.FamilyLinear {
			band := 0
			if c.Width > 0 {
				band = int(math.Floor(math.Log2(float64(c.Width)) / float64(octaves)))
			}
			lo, hi := 1<<(band*octaves), 1<<((band+1)*octaves)
			name = fmt.Sprintf("%s-d%d-w%d..%d", c.Family, c.Depth, lo, hi-1)
		}
		b, ok := index[name]
		if !ok {
			b = len(bands)
			index[name] = b
			bands = append(bands, Band{Name: name})
		}
		bands[b].Members = append(bands[b].Members, i)
	}
	for i := range bands {
		m := bands[i].Members
		slices.SortStableFunc(m, func(a, b int) int { return cmp.Compare(cands[a].Width, cands[b].Width) })
		bands[i].Representative = m[(len(m)-1)/2]
	}
	return bands
}

// pair is one configuration successive halving compares.
type pair struct {
	preprocess string
	lr         float64
}

// run is one short run.
type run struct {
	band, candidate string
	rung, epochs    int
	pair
	valLoss  float64 // +Inf when the run failed
	err      string
	promoted bool
	chosen   bool
	setting  string // a search's setting as JSON; "" for a band's pair
}

// Run tunes each band, then writes the expanded candidates and the runs.
func (s *Stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(OutputPort)
	if err != nil {
		return err
	}
	tw, err := out.Writer(TuningPort)
	if err != nil {
		return err
	}
	cands, err := evaluation.ReadCandidates(in, InputPort)
	if err != nil {
		return err
	}
	ds, err := evaluation.ReadDataset(in, DatasetPort)
	if err != nil {
		return err
	}
	preps := evaluation.NewPreparations(ds)
	if s.search != nil {
		return s.runSearch(ctx, cands, preps, w, tw)
	}
	bands := Bands(cands, s.bandOctaves)
	var pairs []pair
	for _, p := range s.preprocess {
		for _, lr := range s.lrs {
			pairs = append(pairs, pair{p, lr})
		}
	}
	total := 0
	if len(pairs) > 1 {
		total = len(bands) * s.runsPerBand(len(pairs))
	}
	prog := &progress{ctx: ctx, total: int64(total)}
	sdk.Logger(ctx).Info("tuning", "candidates", len(cands), "bands", len(bands), "pairs", len(pairs), "short_runs", total)

	var runs []run
	for _, b := range bands {
		choice, bandRuns, err := s.tune(ctx, cands, b, pairs, preps, prog)
		if err != nil {
			return err
		}
		runs = append(runs, bandRuns...)
		for _, i := range b.Members {
			cands[i].Preprocess, cands[i].LearningRate = choice.preprocess, choice.lr
			recount(&cands[i], preps)
		}
	}
	return s.write(ctx, cands, runs, w, tw)
}

// recount sets c's counts for its preprocessing, which may change the
// number of inputs (PCA), and with it the counts.
func recount(c *tables.Candidate, preps *evaluation.Preparations) {
	prepared, err := preps.Get(c.Preprocess)
	if err != nil {
		return
	}
	if spec, err := evaluation.SpecFor(*c, prepared.Inputs, preps.Dataset()); err == nil {
		c.Params, c.FLOPs = spec.Params(), spec.FLOPs()
	}
}

// runSearch searches each candidate on its own, then writes them with
// their chosen settings, expanded, and every run.
func (s *Stage) runSearch(ctx context.Context, cands []tables.Candidate, preps *evaluation.Preparations, w, tw sdk.BatchWriter) error {
	total := s.searchTrials(cands)
	prog := &progress{ctx: ctx, total: int64(total)}
	sdk.Logger(ctx).Info("searching", "candidates", len(cands), "search", s.search.Kind, "settings", len(s.settings), "short_runs", total)
	var runs []run
	for i := range cands {
		c, rs, err := s.searchSize(ctx, cands[i], preps, prog)
		if err != nil {
			return err
		}
		runs = append(runs, rs...)
		cands[i] = c
		recount(&cands[i], preps)
	}
	return s.write(ctx, cands, runs, w, tw)
}

// write writes the candidates, expanded, and the runs.
func (s *Stage) write(ctx context.Context, cands []tables.Candidate, runs []run, w, tw sdk.BatchWriter) error {
	expanded := s.Expand(cands)
	rec := tables.BuildCandidates(sdk.Allocator(ctx), expanded)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("write port %s: %w", OutputPort, err)
	}
	trec := buildTuning(ctx, runs)
	defer trec.Release()
	if err := tw.Write(trec); err != nil {
		return fmt.Errorf("write port %s: %w", TuningPort, err)
	}
	return nil
}

// runsPerBand is the number of short runs successive halving makes from n
// pairs.
func (s *Stage) runsPerBand(n int) int {
	total := 0
	for n > 1 {
		total += n
		n = (n + s.eta - 1) / s.eta
	}
	return total
}

type progress struct {
	ctx         context.Context
	mu          sync.Mutex
	done, total int64
}

func (p *progress) step(r run) {
	p.mu.Lock()
	p.done++
	ev := sdk.Progress{Done: p.done, Total: p.total,
		Message: fmt.Sprintf("band %s rung %d: lr %g %s, val_loss %.4g", r.band, r.rung, r.lr, r.preprocess, r.valLoss),
		Metrics: map[string]float64{"learning_rate": r.lr, "epochs": float64(r.epochs)}}
	if !math.IsInf(r.valLoss, 0) {
		ev.Metrics["val_loss"] = r.valLoss
	}
	p.mu.Unlock()
	sdk.ReportProgress(p.ctx, ev)
}

// tune runs successive halving on a band's representative and returns the
// winning pair. Its error is only ctx's.
func (s *Stage) tune(ctx context.Context, cands []tables.Candidate, b Band, pairs []pair, preps *evaluation.Preparations, prog *progress) (pair, []run, error) {
	if len(pairs) == 1 {
		return pairs[0], nil, nil
	}
	rep := cands[b.Representative]
	ctx, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName).Start(ctx, "tune "+b.Name, trace.WithAttributes(
		attribute.String("representative", rep.ID),
		attribute.Int("members", len(b.Members)),
		attribute.Int("pairs", len(pairs)),
	))
	defer span.End()
	var all []run
	alive := slices.Clone(pairs)
	epochs := s.halvingEpochs
	for rung := 0; len(alive) > 1; rung++ {
		rs := make([]run, len(alive))
		err := evaluation.ForEach(ctx, len(alive), s.parallelism, func(i int) error {
			r, err := s.shortRun(ctx, rep, alive[i], epochs, preps)
			if err != nil {
				return err
			}
			r.band, r.rung = b.Name, rung
			rs[i] = r
			prog.step(r)
			return nil
		})
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			return pair{}, nil, err
		}
		order := make([]int, len(rs))
		for i := range order {
			order[i] = i
		}
		// Ties (two failed runs) keep the listed order, so the choice is
		// deterministic.
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(rs[a].valLoss, rs[b].valLoss) })
		keep := (len(alive) + s.eta - 1) / s.eta
		for _, i := range order[:keep] {
			rs[i].promoted = true
		}
		next := make([]pair, 0, keep)
		for i, r := range rs {
			if r.promoted {
				next = append(next, alive[i])
			}
		}
		losses := make([]float64, len(rs))
		names := make([]string, len(rs))
		for i, r := range rs {
			losses[i], names[i] = r.valLoss, fmt.Sprintf("%s lr=%g", r.preprocess, r.lr)
		}
		span.AddEvent("rung", trace.WithAttributes(
			attribute.Int("rung", rung), attribute.Int("epochs", epochs),
			attribute.StringSlice("pairs", names), attribute.Float64Slice("val_loss", losses), attribute.Int("kept", keep)))
		all = append(all, rs...)
		alive = next
		epochs = min(epochs*s.eta, maxEpochs)
	}
	winner := alive[0]
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].pair == winner {
			all[i].chosen = true
			break
		}
	}
	span.SetAttributes(attribute.Float64("learning_rate", winner.lr), attribute.String("preprocess", winner.preprocess))
	sdk.Logger(ctx).Info("band tuned", "band", b.Name, "representative", rep.ID, "learning_rate", winner.lr, "preprocess", winner.preprocess)
	return winner, all, nil
}

// shortRun trains the representative with a pair for some epochs and
// returns its best validation loss. Its error is only ctx's.
func (s *Stage) shortRun(ctx context.Context, c tables.Candidate, p pair, epochs int, preps *evaluation.Preparations) (run, error) {
	r := run{candidate: c.ID, epochs: epochs, pair: p, valLoss: math.Inf(1)}
	prepared, err := preps.Get(p.preprocess)
	if err != nil {
		r.err = err.Error()
		return r, nil
	}
	spec, err := evaluation.SpecFor(c, prepared.Inputs, preps.Dataset())
	if err != nil {
		r.err = err.Error()
		return r, nil
	}
	// Every pair of a rung starts from the same seed (common random
	// numbers): their losses then differ by their settings, not by luck.
	key := fmt.Sprintf("tune|%s", evaluation.TrainingKey(c, epochs))
	cfg := nn.Config{
		LearningRate: p.lr, BatchSize: max(1, int(c.BatchSize)), Epochs: epochs,
		Seed: evaluation.TrialSeed(s.seed, key), HoldoutFraction: s.holdout,
	}
	_, rep, err := s.trainer.Fit(ctx, spec, prepared.Train, prepared.Validation, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return r, ctx.Err()
		}
		r.err = err.Error()
		return r, nil
	}
	r.valLoss = rep.BestValLoss
	if math.IsNaN(r.valLoss) {
		// Too few rows to hold any out: the training loss is all there is.
		r.valLoss = rep.TrainLoss
	}
	return r, nil
}

// Expand returns one row per candidate × quantize × prune option, with the
// options in candidate_id.
func (s *Stage) Expand(cands []tables.Candidate) []tables.Candidate {
	out := make([]tables.Candidate, 0, len(cands)*len(s.quantize)*len(s.prune))
	for _, c := range cands {
		for _, q := range s.quantize {
			for _, p := range s.prune {
				v := c
				v.Quantize, v.PruneFraction = q, p
				v.ID = c.ID + Suffix(q, p)
				out = append(out, v)
			}
		}
	}
	return out
}

// Suffix is the candidate_id suffix of a quantize and prune option:
// "-int8" for int8, "-p50" for a prune fraction of 0.5.
func Suffix(quantize string, prune float64) string {
	var b strings.Builder
	if quantize != "" && quantize != tables.None {
		b.WriteString("-" + quantize)
	}
	if prune > 0 {
		b.WriteString("-p" + strconv.FormatFloat(math.Round(prune*1e6)/1e4, 'f', -1, 64))
	}
	return b.String()
}

func buildTuning(ctx context.Context, runs []run) arrow.RecordBatch {
	b := array.NewRecordBuilder(sdk.Allocator(ctx), TuningSchema)
	defer b.Release()
	for _, r := range runs {
		b.Field(0).(*array.StringBuilder).Append(r.band)
		b.Field(1).(*array.StringBuilder).Append(r.candidate)
		b.Field(2).(*array.Int32Builder).Append(int32(r.rung))
		b.Field(3).(*array.Int32Builder).Append(int32(r.epochs))
		b.Field(4).(*array.Float64Builder).Append(r.lr)
		b.Field(5).(*array.StringBuilder).Append(r.preprocess)
		if math.IsInf(r.valLoss, 0) || math.IsNaN(r.valLoss) {
			b.Field(6).AppendNull()
		} else {
			b.Field(6).(*array.Float64Builder).Append(r.valLoss)
		}
		b.Field(7).(*array.StringBuilder).Append(r.err)
		b.Field(8).(*array.BooleanBuilder).Append(r.promoted)
		b.Field(9).(*array.BooleanBuilder).Append(r.chosen)
		if r.setting == "" {
			b.Field(10).AppendNull()
		} else {
			b.Field(10).(*array.StringBuilder).Append(r.setting)
		}
	}
	return b.NewRecordBatch()
}
