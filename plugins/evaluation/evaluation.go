// Package evaluation is the "evaluation" stage: it trains every candidate
// for real on the dataset's training rows and measures it on the test rows.
//
// Input port "input" is a candidates table (model_choice's or
// optimization's); input port "dataset" is a dataset stage's data port.
// Output port "results" has every candidates column, then:
//
//	accuracy          float64  test accuracy (classification; null for regression or a failed trial)
//	loss              float64  test loss: mean cross-entropy, or mean squared error in the target's units²
//	latency_p50_ms    float64  median time of a batch-1 forward pass, over latency_samples passes
//	latency_p95_ms    float64  95th percentile of the same (nearest rank)
//	throughput_per_s  float64  rows per second of forward passes at throughput_batch rows
//	model_bytes       int64    size of the serialized model (int8 and sparse layers as stored)
//	peak_bytes        int64    high-water mark of the trial's tensors (see below)
//	train_seconds     float64  wall time of training
//	epochs_run        int32
//	status            utf8     ok | failed | pruned
//	error             utf8     why a trial failed; empty when ok
//	trace_id          utf8     the trace of the trial's span
//	rmse, r2          float64  test RMSE and R² (regression; null otherwise)
//	accuracy_before, loss_before, rmse_before
//	                  float64  the float32 model's scores, when the candidate is
//	                           quantized or pruned (null otherwise): the change
//	                           the compression cost is accuracy - accuracy_before
//	nonzero_params    int64    weights and biases that are not zero
//	val_loss          float64  validation loss of the weights kept by early stopping
//	best_epoch        int32    the epoch of those weights
//	stopped_by        utf8     epochs | early_stopping | max_train_time | pruner; empty when failed
//
// Output port "models" keeps each ok trial's model, one row of
// tables.ModelsSchema per trial, in the sweetspot-mlp/1 format
// (plugins/internal/modelfile): the dataset's feature columns, the
// preprocessing fitted on the training rows and the weights in their
// compact form. The model measured is the model kept: the compact form
// (int8, pruned or plain float32 as the candidate asks), so predicting
// the test rows with the kept file gives the accuracy the row records. A
// file over MaxModelRowBytes is not kept (said in the log). On resume, a
// finished trial's models row comes back with its results row.
//
// A candidate whose params is 0 leaves the counting to this stage: its row
// gets the exact params and flops of the model trained (for the dataset's
// inputs after preprocessing). Any other params that disagree with that
// model fail the trial: the candidate was made for other data.
//
// Measurements that do not apply are null. A trial that fails (a candidate
// that cannot be built, a loss that turns NaN) is a row with status failed
// and its error; the stage goes on with the others.
//
// # Trials
//
// Each candidate is trained with its learning_rate, batch_size, epochs
// (unless the epochs attribute overrides them) and preprocess, by the nn
// package's gonum trainer, from a seed derived from the stage's seed and
// those settings (TrainingKey), so that a trial's result depends neither on
// the other candidates nor on parallelism. Candidates that differ only in
// quantize, prune_fraction, round or candidate_id (the optimization stage's
// variants) share one float model, trained once in the first variant's
// trial: their train_seconds, epochs_run and *_before columns are that
// training's.
//
// A candidate's samples (tables.Candidate.Samples) is its training
// resource in fresh data: it trains on that many training rows, the same
// subsample for every candidate of a samples count and the smaller
// subsamples nested in the larger (SubsampleRows, drawn from the stage's
// seed), its early-stopping holdout included when the dataset has no
// validation rows. The validation and test rows are untouched, and the
// preprocessing is fitted on the whole training split. samples above the
// training rows fails the trial. The results row's samples is the rows
// the trial trained on: the training split's count when the candidate
// left it unset (a candidate asking for exactly that count trains as one
// without samples).
//
// With repeats = N, each candidate is measured N times, as repeats 0 to
// N-1 (the repeat column), each trained from its own seed (RepeatSeed:
// the stage's seed, the training key and the repeat; repeat 0's seed is
// the one a stage without repeats uses), one results row each; the
// resize stage averages them and reads the noise from their spread. A
// candidate that names a later repeat (resize asking for one more
// measurement near its target) is measured once, as that repeat. Each
// repeat is a trial: its own span, journalled as it finishes, and a
// resumed stage trains only the repeats that had not finished. Early
// stopping watches the dataset's
// validation rows, or a seeded holdout_fraction of the training rows when it
// has none; the model kept is the one with the lowest validation loss. The
// preprocessing is fitted on the training rows only, once per distinct
// preprocess value. Then the model is quantized to int8 (quantize = "int8")
// and pruned (prune_fraction > 0) after training, without retraining.
//
// With noise_patience = true, early stopping's patience follows the
// validation curve: while the validation loss still improves by more than
// its measured epoch-to-epoch noise explains, the trial waits the epochs
// that improvement needs to beat a lucky epoch (up to four times
// patience), so a noisy model still learning is not cut (nn's
// NoisePatience has the rule).
//
// # Pruning
//
// With a pruner block (plugins/internal/prune: median or asha, the exec
// stage's rules and attributes but grace), each epoch's validation
// accuracy (metric = "accuracy", the default for classification) or loss
// ("val_loss", the default for regression) is reported to one pruner
// shared by the stage's trials, which may stop the training at the end of
// that epoch. The trial's row then has status pruned, the pruner's reason
// as its error, stopped_by "pruner", the epochs it ran and its last
// values: the measurements of the best weights of those epochs (no model
// kept). Each finished training's curve is appended to
// pruner-history.jsonl in the work directory, which the stage's later
// rounds and a resumed run read back, as the exec stage does; a resumed
// run does not train a pruned trial again (its journalled row is
// finished). A model trained before (a repeat, or a pruned model the
// resize stage proposes again) is trained to its end: its values feed
// the pruner, whose verdict it does not follow.
//
// When max_train_time is set, a trial still training when it runs out
// stops at the end of its current mini-batch, keeps its best weights so
// far, and is measured and recorded as ok with stopped_by max_train_time
// and the epochs it ran: a model cut short is a result, the cost of the
// time limit, not an error.
//
// # Measurements
//
// Latency is the wall time of real batch-1 forward passes over test rows
// (after a few warm-up passes), taken one by one. Throughput times full
// batches of throughput_batch rows for at least 50 ms. With parallelism
// above 1 these run beside other trials' training, on shared cores:
// latency figures are then pessimistic.
//
// peak_bytes is counted, not sampled: the sum of the tensors the trial
// allocates, which all live until it ends: parameters, gradients, Adam's
// two moments, the best-weights snapshot, mini-batch activations and their
// gradients, validation and measurement buffers, the compressed model. The
// dataset, shared by all trials, is not counted. Go's heap statistics
// cannot tell concurrent trials apart, and counting makes the column
// reproducible.
//
// # Traces
//
// Each trial is a span "trial <candidate_id>" ("trial <candidate_id>
// repeat R" from the second repeat on; a child of the stage's span) with
// the candidate's hyperparameters, its repeat and seed, and its
// measurements as attributes
// and one "epoch" event per epoch carrying the training and validation
// loss. A failed trial's span has error status.
package evaluation

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prep"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/prune"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "evaluation"

// Port names.
const (
	InputPort   = sdk.PrimaryInput
	DatasetPort = "dataset"
	OutputPort  = "results"
	// ResumePort brings back, when an interrupted run is resumed, the
	// result rows of the trials that had finished.
	ResumePort = "resume"
	// ModelsPort keeps each ok trial's model (tables.ModelsSchema), in the
	// sweetspot-mlp/1 format (plugins/internal/modelfile).
	ModelsPort = "models"
	// ResumeModelsPort brings back the models rows of the trials that had
	// finished.
	ResumeModelsPort = "resume_models"
)

// Defaults.
const (
	DefaultPatience        = 10
	DefaultParallelism     = 1
	DefaultSeed            = 1
	DefaultLatencySamples  = 200
	DefaultThroughputBatch = 256
	DefaultHoldoutFraction = 0.1
	DefaultRepeats         = 1
)

// Limits that keep a typo from asking for days or terabytes.
const (
	maxEpochs      = 1_000_000
	maxParallelism = 1024
	maxSamples     = 1_000_000
	maxBatch       = 1 << 20
	// MaxRepeats bounds the repeats attribute of the stages that train.
	MaxRepeats = 100
)

// Config is the body of a `stage "evaluation" "NAME" {}` block.
type Config struct {
	Epochs          *int           `hcl:"epochs,optional" doc:"Training epochs of every trial, overriding the candidates' epochs column."`
	Patience        *int           `hcl:"patience,optional" doc:"Early stopping: a trial stops after this many epochs without a lower validation loss (default 10; 0 trains every epoch and still keeps the best weights)."`
	Parallelism     *int           `hcl:"parallelism,optional" doc:"Trials trained at once, each on one goroutine (default 1)."`
	Seed            *int64         `hcl:"seed,optional" doc:"Seed of the trials' initialization, shuffling and holdout, combined with each candidate_id (default 1)."`
	LatencySamples  *int           `hcl:"latency_samples,optional" doc:"Batch-1 forward passes timed for latency_p50_ms and latency_p95_ms (default 200)."`
	ThroughputBatch *int           `hcl:"throughput_batch,optional" doc:"Rows per forward pass when measuring throughput_per_s (default 256)."`
	MaxTrainTime    *time.Duration `hcl:"max_train_time,optional" doc:"Longest training of one trial, as a duration such as \"30s\": a trial still training then stops, keeps its best weights and is recorded as ok with stopped_by = max_train_time."`
	HoldoutFraction *float64       `hcl:"holdout_fraction,optional" doc:"Share of the training rows held out for early stopping when the dataset has no validation split (default 0.1)."`
	Repeats         *int           `hcl:"repeats,optional" doc:"Measurements of each candidate, each trained from a seed of its own (default 1): a candidate gives repeats 0 to repeats-1, one results row each, so resize can measure the noise. A candidate that names a later repeat (resize asking for one more) is measured once, as that repeat."`
	NoisePatience   *bool          `hcl:"noise_patience,optional" doc:"Early stopping waits as long as the validation loss's measured noise justifies while it is still improving: patience is then the least patience, and at most four times it is waited (default false)."`
	Pruner          *prune.Block   `hcl:"pruner,block" doc:"Stop trials early across trials: pruner \"median\" (a trial whose best value so far is worse than the median of the finished trials at the same epoch; warmup_trials, warmup_steps) or pruner \"asha\" (asynchronous successive halving; min_resource, reduction_factor), judging each epoch's validation accuracy (metric = \"accuracy\", the default for classification) or validation loss (\"val_loss\", the default for regression). A stopped trial's status is pruned."`
}

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		Description: "Trains every candidate on the dataset and measures its test quality, latency, throughput, size, memory and training time.",
		Inputs: []sdk.Port{
			{Name: InputPort, Description: "The candidates to train (model_choice's or optimization's candidates table).", Schema: tables.CandidatesSchema},
			{Name: DatasetPort, Schema: tables.DatasetSchema, Description: "The dataset (a dataset stage's data port): train, optional validation, and test rows."},
			{Name: ResumePort, Optional: true, Schema: tables.ResultsSchema, Description: "Set by the host when it resumes an interrupted run: the results of the trials that had finished, which are not trained again."},
			{Name: ResumeModelsPort, Optional: true, Schema: tables.ModelsSchema, Description: "Set by the host when it resumes an interrupted run: the models of the trials that had finished."},
		},
		Outputs: []sdk.Port{{
			Name:        OutputPort,
			Description: "One row per candidate: its columns, its test metrics and measurements, status and error.",
			Schema:      tables.ResultsSchema,
		}, {
			Name:        ModelsPort,
			Description: "One row per ok trial: its model file (format sweetspot-mlp/1: the input columns, the fitted preprocessing and the weights as measured), for `sweetspot model export` and `model predict`.",
			Schema:      tables.ModelsSchema,
		}},
		Resume: &sdk.Resume{Output: OutputPort, Input: ResumePort, More: []sdk.ResumePort{{Output: ModelsPort, Input: ResumeModelsPort}}},
	}
}

// Register adds the evaluation stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage trains and measures the candidates when run.
type Stage struct {
	epochs          int // 0: the candidates'
	patience        int
	parallelism     int
	seed            uint64
	latencySamples  int
	throughputBatch int
	maxTrainTime    time.Duration
	holdout         float64
	repeats         int
	noisePatience   bool
	prune           *prune.Settings // nil: no pruner
	pruneMetricSet  bool            // the pruner block names its metric
	trainer         nn.Trainer
}

var _ sdk.Stage = (*Stage)(nil)

// New checks a config and returns the stage.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: []string{path}})
	}
	s := &Stage{
		patience: DefaultPatience, parallelism: DefaultParallelism, seed: DefaultSeed,
		latencySamples: DefaultLatencySamples, throughputBatch: DefaultThroughputBatch,
		holdout: DefaultHoldoutFraction, repeats: DefaultRepeats, trainer: nn.Gonum{},
	}
	between := func(name string, v *int, lo, hi int, dst *int) {
		if v == nil {
			return
		}
		if *v < lo || *v > hi {
			bad(name, "Invalid "+strings.ReplaceAll(name, "_", " "), fmt.Sprintf("%s must be between %d and %d; found %d.", name, lo, hi, *v))
			return
		}
		*dst = *v
	}
	between("epochs", c.Epochs, 1, maxEpochs, &s.epochs)
	between("patience", c.Patience, 0, maxEpochs, &s.patience)
	between("parallelism", c.Parallelism, 1, maxParallelism, &s.parallelism)
	between("latency_samples", c.LatencySamples, 1, maxSamples, &s.latencySamples)
	between("throughput_batch", c.ThroughputBatch, 1, maxBatch, &s.throughputBatch)
	between("repeats", c.Repeats, 1, MaxRepeats, &s.repeats)
	if c.Seed != nil {
		s.seed = uint64(*c.Seed)
	}
	if c.MaxTrainTime != nil {
		if *c.MaxTrainTime <= 0 {
			bad("max_train_time", "Invalid max train time", fmt.Sprintf("max_train_time must be a positive duration; found %s.", *c.MaxTrainTime))
		}
		s.maxTrainTime = *c.MaxTrainTime
	}
	if c.HoldoutFraction != nil {
		s.holdout = *c.HoldoutFraction
		if !(s.holdout >= 0 && s.holdout < 1) {
			bad("holdout_fraction", "Invalid holdout fraction", fmt.Sprintf("holdout_fraction must be at least 0 and below 1; found %g.", s.holdout))
		}
		if s.holdout == 0 {
			// nn reads 0 as its default; negative holds out nothing.
			s.holdout = -1
		}
	}
	if c.NoisePatience != nil {
		s.noisePatience = *c.NoisePatience
	}
	if c.Pruner != nil {
		p, d := prune.Check("pruner", *c.Pruner)
		diags = append(diags, d...)
		if c.Pruner.Metric != "" && !slices.Contains(pruneMetrics, c.Pruner.Metric) {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Unknown pruner metric", Path: []string{"pruner", "metric"},
				Detail: fmt.Sprintf("The evaluation stage's pruner judges each epoch's accuracy or val_loss on the validation rows; found %q.%s", c.Pruner.Metric, suggest.Hint(c.Pruner.Metric, pruneMetrics))})
		}
		if c.Pruner.Grace != nil {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Attribute of another stage", Path: []string{"pruner", "grace"},
				Detail: "grace is the time an exec stage's command gets to end once told to stop; the evaluation stage trains in process and stops a trial at the end of its epoch. Remove grace."})
		}
		s.prune, s.pruneMetricSet = &p, c.Pruner.Metric != ""
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, nil
}

// pruneMetrics are the values an evaluation trial reports to its pruner
// after each epoch, measured on the validation rows.
var pruneMetrics = []string{"accuracy", "val_loss"}

// ReadCandidates reads a candidates port to its end.
func ReadCandidates(in sdk.Inputs, port string) ([]tables.Candidate, error) {
	r, err := in.Reader(port)
	if err != nil {
		return nil, err
	}
	var out []tables.Candidate
	for r.Next() {
		b := r.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		cs, err := tables.ReadCandidates(b)
		if err != nil {
			return nil, &sdk.InputError{Port: port, Row: -1, Err: err}
		}
		out = append(out, cs...)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("read port %s: %w", port, err)
	}
	return out, nil
}

// ReadDataset reads a dataset port to its end.
func ReadDataset(in sdk.Inputs, port string) (*prep.Dataset, error) {
	r, err := in.Reader(port)
	if err != nil {
		return nil, err
	}
	return prep.ReadDataset(port, r)
}

// Preparations prepares a dataset once per distinct preprocess value, on
// first use, for concurrent trials.
type Preparations struct {
	ds *prep.Dataset
	mu sync.Mutex
	m  map[string]*preparation
}

type preparation struct {
	once sync.Once
	p    *prep.Prepared
	err  error
}

// NewPreparations returns an empty cache over ds.
func NewPreparations(ds *prep.Dataset) *Preparations {
	return &Preparations{ds: ds, m: map[string]*preparation{}}
}

// Dataset returns the dataset the preparations are made of.
func (p *Preparations) Dataset() *prep.Dataset { return p.ds }

// Get returns the dataset preprocessed as name says.
func (p *Preparations) Get(name string) (*prep.Prepared, error) {
	p.mu.Lock()
	e, ok := p.m[name]
	if !ok {
		e = &preparation{}
		p.m[name] = e
	}
	p.mu.Unlock()
	e.once.Do(func() {
		spec, err := prep.Parse(name)
		if err != nil {
			e.err = err
			return
		}
		e.p, e.err = p.ds.Prepare(spec)
	})
	return e.p, e.err
}

// Run trains and measures every candidate and writes the results.
func (s *Stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(OutputPort)
	if err != nil {
		return err
	}
	mw, err := out.Writer(ModelsPort)
	if err != nil {
		return err
	}
	cands, err := ReadCandidates(in, InputPort)
	if err != nil {
		return err
	}
	ds, err := ReadDataset(in, DatasetPort)
	if err != nil {
		return err
	}
	if ds.Test.N == 0 {
		return &sdk.InputError{Port: DatasetPort, Row: -1, Column: prep.SplitColumn,
			Err: errors.New("the dataset has no test rows to measure on: give the dataset a test_fraction above 0")}
	}
	for i := range cands {
		// Every training row is no subsample: such a candidate (one
		// made from a results row, which names the rows it trained on)
		// trains as one without samples, with the same key and seed.
		if cands[i].Samples == int64(ds.Train.N) {
			cands[i].Samples = 0
		}
	}
	preps := NewPreparations(ds)
	log := sdk.Logger(ctx)
	pr, cleanup, err := s.openPruner(ctx, ds)
	if err != nil {
		return err
	}
	defer cleanup()

	cands = Repeats(cands, s.repeats)
	results, models := NewResultWriter(ctx, w), NewModelWriter(ctx, mw)
	cands, resumed, err := SkipFinished(in, results, models, cands, func(c tables.Candidate) tables.Candidate { return c })
	if err != nil {
		return err
	}
	if resumed > 0 {
		log.Info("resuming", "finished_before", resumed, "to_train", len(cands))
	}
	log.Info("evaluating", "trials", len(cands), "repeats", s.repeats, "parallelism", s.parallelism,
		"train", ds.Train.N, "validation", ds.Validation.N, "test", ds.Test.N)

	// Candidates that train the same float model (quantize and prune
	// variants) form a group, trained once, in one worker.
	var groups [][]int
	first := map[string]int{}
	for i, c := range cands {
		key := GroupKey(c, s.epochsOf(c))
		g, ok := first[key]
		if !ok {
			g = len(groups)
			first[key] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	var mu sync.Mutex
	done := 0
	err = ForEach(ctx, len(groups), s.parallelism, func(g int) error {
		var shared *trained
		for _, i := range groups[g] {
			r, file, t, err := s.trial(ctx, cands[i], preps, shared, pr)
			if err != nil {
				return err
			}
			shared = t
			if err := models.keep(r, file); err != nil {
				return err
			}
			if err := results.Write(r); err != nil {
				return err
			}
			mu.Lock()
			done++
			p := sdk.Progress{Done: int64(done), Total: int64(len(cands)), Message: progressMessage(r), Metrics: progressMetrics(r)}
			mu.Unlock()
			sdk.ReportProgress(ctx, p)
			switch r.Status {
			case tables.StatusPruned:
				log.Info("trial pruned", "candidate", r.ID, "repeat", r.Repeat, "epochs_run", r.EpochsRun, "accuracy", r.Accuracy, "reason", r.Error)
			case tables.StatusOK:
				log.Info("trial", "candidate", r.ID, "repeat", r.Repeat, "accuracy", r.Accuracy, "loss", r.Loss, "latency_p95_ms", r.LatencyP95Ms,
					"train_seconds", r.TrainSeconds, "epochs_run", r.EpochsRun, "stopped_by", r.StoppedBy)
			default:
				log.Warn("trial failed", "candidate", r.ID, "error", r.Error)
			}
		}
		return nil
	})
	return err
}

// ForEach calls f(0..n-1) on up to parallelism goroutines, in index order
// of start. It stops starting calls at the first error or when ctx is
// done, and returns the first error (ctx's when it ended first).
func ForEach(ctx context.Context, n, parallelism int, f func(i int) error) error {
	parallelism = max(1, min(parallelism, n))
	next := make(chan int)
	errs := make(chan error, parallelism)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var once sync.Once
	for range parallelism {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
					once.Do(func() { close(stop) })
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-stop:
			break feed
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

func progressMessage(r tables.Result) string {
	switch {
	case r.Status == tables.StatusPruned:
		return fmt.Sprintf("%s pruned at epoch %d: %s", TrialName(r.Candidate), r.EpochsRun, r.Error)
	case r.Status != tables.StatusOK:
		return fmt.Sprintf("%s failed: %s", TrialName(r.Candidate), r.Error)
	case !math.IsNaN(r.Accuracy):
		return fmt.Sprintf("%s: accuracy %.4f, p95 %.3f ms", TrialName(r.Candidate), r.Accuracy, r.LatencyP95Ms)
	default:
		return fmt.Sprintf("%s: rmse %.4g, p95 %.3f ms", TrialName(r.Candidate), r.RMSE, r.LatencyP95Ms)
	}
}

func progressMetrics(r tables.Result) map[string]float64 {
	m := map[string]float64{"train_seconds": r.TrainSeconds, "epochs_run": float64(r.EpochsRun)}
	add := func(k string, v float64) {
		if !math.IsNaN(v) {
			m[k] = v
		}
	}
	add("accuracy", r.Accuracy)
	add("loss", r.Loss)
	add("rmse", r.RMSE)
	add("latency_p95_ms", r.LatencyP95Ms)
	if r.ModelBytes >= 0 {
		m["model_bytes"] = float64(r.ModelBytes)
	}
	return m
}

// openPruner returns the stage run's pruner (nil without a pruner block),
// shared by its trials and fed with the trials of its earlier rounds and
// of an interrupted run (prune.HistoryFile in the work directory), as the
// exec stage does; cleanup removes a temporary work directory.
func (s *Stage) openPruner(ctx context.Context, ds *prep.Dataset) (*prune.Stage, func(), error) {
	nothing := func() {}
	if s.prune == nil {
		return nil, nothing, nil
	}
	settings := *s.prune
	if ds.Task == nn.Regression {
		switch {
		case !s.pruneMetricSet:
			settings.Metric, settings.Maximize = "val_loss", false
		case settings.Metric == "accuracy":
			return nil, nothing, &sdk.InputError{Port: DatasetPort, Row: -1, Column: prep.SplitColumn,
				Err: errors.New("the pruner judges accuracy, but the dataset is a regression: set the pruner's metric to val_loss")}
		}
	}
	work, cleanup := sdk.Info(ctx).WorkDir, nothing
	if work == "" {
		// A host that gives no work directory (an in-process test) gets
		// a temporary one, gone with the run.
		dir, err := os.MkdirTemp("", "sweetspot-evaluation-")
		if err != nil {
			return nil, nothing, fmt.Errorf("make a work directory: %w", err)
		}
		work, cleanup = dir, func() { os.RemoveAll(dir) }
	} else if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, nothing, fmt.Errorf("work directory: %w", err)
	}
	if abs, err := filepath.Abs(work); err == nil {
		work = abs
	}
	return prune.Open(settings, work, sdk.Logger(ctx)), cleanup, nil
}
