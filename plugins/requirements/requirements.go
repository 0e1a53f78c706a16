// Package requirements is the "requirements" stage: it states what a model
// must reach and what the search may spend, profiles the dataset, and
// measures the machine, as the one-row table every later stage reads.
//
// Input port "dataset" (optional) is a dataset stage's "data" table; the
// stage counts its rows, its features (every column but the target and
// split) and reads the task and class count from its schema metadata.
//
// Output port "requirements" is one row:
//
//	task               utf8     classification | regression
//	metric             utf8     the quality metric (default accuracy, or rmse for regression)
//	min_accuracy       float64  null when unset
//	max_loss           float64  null when unset
//	max_latency_ms     float64  null when unset (p95 per sample)
//	max_params         int64    null when unset
//	max_model_bytes    int64    null when unset
//	max_train_seconds  float64  null when unset
//	max_trials         int32    null when unset
//	max_wall_seconds   float64  null when unset
//	n_rows             int64    null without a dataset
//	n_features         int32    null without a dataset
//	n_classes          int32    null without a dataset; 0 for regression
//	cores              int32    runtime.NumCPU()
//	memory_bytes       int64    MemTotal, or the cgroup memory limit when lower; null when unknown
//
// An unset target is null rather than zero, so that "no latency limit" and
// "a limit of 0 ms" cannot be confused.
package requirements

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "requirements"

// Port names.
const (
	InputPort  = "dataset"
	OutputPort = "requirements"
)

// Dataset schema metadata this stage reads (written by the dataset stage).
const (
	metaTarget  = "sweetspot.target"
	metaTask    = "sweetspot.task"
	metaClasses = "sweetspot.classes"
	splitColumn = "split"
)

// Tasks and metrics. A metric belongs to one task.
const (
	Classification = "classification"
	Regression     = "regression"
)

var metricTask = map[string]string{
	"accuracy": Classification,
	"log_loss": Classification,
	"rmse":     Regression,
	"mae":      Regression,
	"r2":       Regression,
}

func metricNames() []string {
	names := make([]string, 0, len(metricTask))
	for m := range metricTask {
		names = append(names, m)
	}
	slices.Sort(names)
	return names
}

// Config is the body of a `stage "requirements" "NAME" {}` block.
type Config struct {
	MinAccuracy   *float64       `hcl:"min_accuracy,optional" doc:"Least test accuracy a model must reach (classification), in (0, 1]."`
	MaxLoss       *float64       `hcl:"max_loss,optional" doc:"Largest test loss a model may have (cross-entropy for classification, mean squared error for regression)."`
	MaxLatencyMs  *float64       `hcl:"max_latency_ms,optional" doc:"Largest p95 inference latency per sample, in milliseconds."`
	MaxParams     *int64         `hcl:"max_params,optional" doc:"Largest number of model parameters."`
	MaxModelBytes *int64         `hcl:"max_model_bytes,optional" doc:"Largest serialized model size, in bytes."`
	MaxTrainTime  *time.Duration `hcl:"max_train_time,optional" doc:"Longest training time of one model, as a duration such as \"90s\" or \"15m\"."`
	Metric        string         `hcl:"metric,optional" doc:"Quality metric: accuracy or log_loss (classification), rmse, mae or r2 (regression). Default: accuracy, or rmse for regression."`
	Budget        *Budget        `hcl:"budget,block" doc:"What the whole search may spend."`
}

// Budget is the `budget {}` block.
type Budget struct {
	MaxTrials *int           `hcl:"max_trials,optional" doc:"Most models trained in the whole search."`
	MaxWall   *time.Duration `hcl:"max_wall,optional" doc:"Longest wall-clock time of the whole search, as a duration such as \"15m\"."`
}

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		Description: "States the quality and cost targets and the search budget, profiles the dataset and measures the machine.",
		Inputs: []sdk.Port{{
			Name:        InputPort,
			Description: "The dataset to profile (a dataset stage's data port). Without it the profile columns are null.",
			Schema:      tables.DatasetSchema,
			Optional:    true,
		}},
		Outputs: []sdk.Port{{
			Name:        OutputPort,
			Description: "One row: targets (null when unset), budget, dataset profile and machine.",
			Schema:      tables.RequirementsSchema,
		}},
	}
}

// Register adds the requirements stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage builds the requirements row when run.
type Stage struct {
	cfg Config
	// machine is measured when the stage runs, not when it is configured:
	// the host may configure on one machine and run on another.
	machine func() Machine
}

var _ sdk.Stage = (*Stage)(nil)

// New checks a config and returns the stage.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: strings.Split(path, ".")})
	}
	positive := func(path string, v *float64, unit string) {
		if v != nil && !(*v > 0 && !math.IsInf(*v, 0)) {
			bad(path, "Invalid "+strings.ReplaceAll(path, "_", " "), fmt.Sprintf("%s must be a positive number%s; found %g.", path, unit, *v))
		}
	}
	if v := c.MinAccuracy; v != nil && !(*v > 0 && *v <= 1) {
		bad("min_accuracy", "Invalid min accuracy", fmt.Sprintf("min_accuracy is a fraction of correct predictions, above 0 and at most 1; found %g.", *v))
	}
	positive("max_loss", c.MaxLoss, "")
	positive("max_latency_ms", c.MaxLatencyMs, " of milliseconds")
	if v := c.MaxParams; v != nil && *v < 1 {
		bad("max_params", "Invalid max params", fmt.Sprintf("max_params must be at least 1; found %d.", *v))
	}
	if v := c.MaxModelBytes; v != nil && *v < 1 {
		bad("max_model_bytes", "Invalid max model bytes", fmt.Sprintf("max_model_bytes must be at least 1; found %d.", *v))
	}
	if v := c.MaxTrainTime; v != nil && *v <= 0 {
		bad("max_train_time", "Invalid max train time", fmt.Sprintf("max_train_time must be a positive duration; found %s.", *v))
	}
	if c.Metric != "" {
		task, ok := metricTask[c.Metric]
		switch {
		case !ok:
			bad("metric", "Unknown metric", fmt.Sprintf("metric must be one of %s; found %q.%s", strings.Join(metricNames(), ", "), c.Metric, suggest.Hint(c.Metric, metricNames())))
		case task == Regression && c.MinAccuracy != nil:
			bad("min_accuracy", "Accuracy target on a regression metric", fmt.Sprintf("min_accuracy applies to classification, but metric %q is a regression metric; state the target as max_loss.", c.Metric))
		}
	}
	if b := c.Budget; b != nil {
		if v := b.MaxTrials; v != nil && (*v < 1 || *v > math.MaxInt32) {
			bad("budget.max_trials", "Invalid max trials", fmt.Sprintf("max_trials must be between 1 and %d; found %d.", math.MaxInt32, *v))
		}
		if v := b.MaxWall; v != nil && *v <= 0 {
			bad("budget.max_wall", "Invalid max wall time", fmt.Sprintf("max_wall must be a positive duration; found %s.", *v))
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return &Stage{cfg: c, machine: MeasureMachine}, nil
}

// Profile is what the stage learns from the dataset.
type Profile struct {
	Task      string
	Rows      int64
	Features  int32
	Classes   int32
	Connected bool
}

// profile reads the whole dataset port, counting rows.
func profile(in sdk.Inputs) (Profile, error) {
	r, err := in.Reader(InputPort)
	if errors.Is(err, sdk.ErrNotConnected) {
		return Profile{}, nil
	}
	if err != nil {
		return Profile{}, err
	}
	p := Profile{Connected: true}
	schema := r.Schema()
	md := schema.Metadata()
	inputErr := func(column string, err error) error {
		return &sdk.InputError{Port: InputPort, Row: -1, Column: column, Err: err}
	}
	task, _ := md.GetValue(metaTask)
	if task != Classification && task != Regression {
		return Profile{}, inputErr("", fmt.Errorf("schema metadata %s is %q, want classification or regression; connect a dataset stage's data port", metaTask, task))
	}
	p.Task = task
	target, ok := md.GetValue(metaTarget)
	if !ok || !schema.HasField(target) {
		return Profile{}, inputErr(target, fmt.Errorf("schema metadata %s names no column of the table (%q)", metaTarget, target))
	}
	if task == Classification {
		cs, _ := md.GetValue(metaClasses)
		k, err := strconv.ParseInt(cs, 10, 32)
		if err != nil || k < 2 {
			return Profile{}, inputErr(target, fmt.Errorf("schema metadata %s is %q, want the number of classes (2 or more)", metaClasses, cs))
		}
		p.Classes = int32(k)
	}
	for _, f := range schema.Fields() {
		if f.Name != target && f.Name != splitColumn {
			p.Features++
		}
	}
	for r.Next() {
		p.Rows += r.RecordBatch().NumRows()
	}
	if err := r.Err(); err != nil {
		return Profile{}, fmt.Errorf("read port %s: %w", InputPort, err)
	}
	return p, nil
}

// Run profiles the dataset and writes the requirements row.
func (s *Stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(OutputPort)
	if err != nil {
		return err
	}
	p, err := profile(in)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := s.cfg
	task := p.Task
	if task == "" {
		// Without a dataset, the metric is the only hint of the task.
		task = Classification
		if t, ok := metricTask[c.Metric]; ok {
			task = t
		}
	}
	metric := c.Metric
	switch {
	case metric == "" && task == Regression:
		metric = "rmse"
	case metric == "":
		metric = "accuracy"
	case metricTask[metric] != task:
		return sdk.AttrError("metric", "Metric does not fit the task",
			fmt.Sprintf("metric %q is for %s, but the dataset is a %s task; use one of %s.", metric, metricTask[metric], task, strings.Join(metricsFor(task), ", ")))
	}
	if task == Regression && c.MinAccuracy != nil {
		return sdk.AttrError("min_accuracy", "Accuracy target on a regression task",
			"min_accuracy applies to classification, but the dataset is a regression task; state the target as max_loss.")
	}
	m := s.machine()
	sdk.Logger(ctx).Info("requirements", "task", task, "metric", metric, "rows", p.Rows, "features", p.Features,
		"classes", p.Classes, "cores", m.Cores, "memory_bytes", m.MemoryBytes)

	row := tables.Requirements{
		Task: task, Metric: metric,
		MinAccuracy: c.MinAccuracy, MaxLoss: c.MaxLoss, MaxLatencyMs: c.MaxLatencyMs,
		MaxParams: c.MaxParams, MaxModelBytes: c.MaxModelBytes, MaxTrainSeconds: seconds(c.MaxTrainTime),
		Cores: int32(m.Cores),
	}
	if c.Budget != nil {
		if c.Budget.MaxTrials != nil {
			v := int32(*c.Budget.MaxTrials)
			row.MaxTrials = &v
		}
		row.MaxWallSeconds = seconds(c.Budget.MaxWall)
	}
	if p.Connected {
		rows, features, classes := p.Rows, p.Features, p.Classes
		row.Rows, row.Features, row.Classes = &rows, &features, &classes
	}
	if m.MemoryBytes > 0 {
		mb := m.MemoryBytes
		row.MemoryBytes = &mb
	}
	rec := tables.BuildRequirements(sdk.Allocator(ctx), row)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("write port %s: %w", OutputPort, err)
	}
	return nil
}

func metricsFor(task string) []string {
	var out []string
	for _, m := range metricNames() {
		if metricTask[m] == task {
			out = append(out, m)
		}
	}
	return out
}

func seconds(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := d.Seconds()
	return &s
}
