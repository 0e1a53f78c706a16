// Package dataset is the "dataset" stage: it loads a dataset file or
// generates a synthetic one, splits it into train, validation and test rows,
// and emits it as Arrow batches on its "data" port.
//
// Users write `dataset "NAME" { ... }`; the host turns that block into a
// stage of kind "dataset".
//
// The data port carries one float64 column per feature (in file order), the
// target column (int64 class index for classification, float64 for
// regression) and a utf8 "split" column (train|validation|test), in batches
// of at most 64Ki rows. Its schema metadata says how to read it:
//
//	sweetspot.target       name of the target column
//	sweetspot.task         classification | regression
//	sweetspot.classes      number of classes ("0" for regression)
//	sweetspot.class_names  JSON list of the original label of each class
//	                       index, present when the labels were strings,
//	                       were named by the file, or were not 0..k-1
//	sweetspot.source       the file path, or generator:NAME
//
// Files are CSV, TSV or whitespace-separated text, gzip-compressed when the
// name ends in .gz. The first line may name the columns, be scikit-learn's
// count header ("n_samples,n_features,class_0,class_1,..."), or be data;
// this is detected unless `header` is set. Missing or non-numeric feature
// cells, ragged lines and unknown target columns are errors naming the file,
// the 1-based line and the column: nothing is imputed silently.
//
// A relative path is resolved against base_dir, an attribute the host sets
// to the directory of the pipeline file that declared the dataset (users
// need not set it), so a pipeline runs the same from any working directory.
package dataset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Kind is the stage kind.
const Kind = "dataset"

// Port is the name of the output port.
const Port = "data"

// Config is the body of a `dataset "NAME" {}` block.
type Config struct {
	Path        string `hcl:"path,optional" doc:"Dataset file: CSV, TSV or whitespace-separated text, gzip-compressed when the name ends in .gz. A relative path is relative to the pipeline file's directory. Exactly one of path and generator."`
	Format      string `hcl:"format,optional" doc:"csv, tsv or whitespace. Detected from the first line when unset."`
	Header      *bool  `hcl:"header,optional" doc:"Whether the first line names the columns. Detected when unset; scikit-learn's count header (n_samples,n_features,class names) is recognised either way."`
	Target      string `hcl:"target,optional" doc:"Name of the target column; the file needs a header line."`
	TargetIndex *int   `hcl:"target_index,optional" doc:"0-based position of the target column; negative counts from the end. The last column when neither target nor target_index is set."`
	TargetPath  string `hcl:"target_path,optional" doc:"A second file holding only the target, one value per data row of path (as scikit-learn's diabetes set); every column of path is then a feature."`
	Task        string `hcl:"task,optional" doc:"classification or regression. Inferred when unset: string labels, or whole numbers with at most 100 distinct values and no more than half the rows, mean classification."`

	Generator string   `hcl:"generator,optional" doc:"A synthetic dataset instead of a file: spirals, blobs, checkerboard (classification) or regression (a sum of sines)."`
	Rows      *int     `hcl:"rows,optional" doc:"Generator: number of rows (default 1000)."`
	Noise     *float64 `hcl:"noise,optional" doc:"Generator: noise level (defaults: spirals 0.05, blobs 0.8, checkerboard 0.03, regression 0.1)."`
	Classes   *int     `hcl:"classes,optional" doc:"Generator: number of classes (defaults: blobs 3, others 2; checkerboard at most 7)."`
	Features  *int     `hcl:"features,optional" doc:"Generator: number of features (blobs default 4, at least 2; regression default 4; spirals and checkerboard are 2-D)."`

	TestFraction       *float64 `hcl:"test_fraction,optional" doc:"Share of rows in the test split (default 0.2)."`
	ValidationFraction *float64 `hcl:"validation_fraction,optional" doc:"Share of rows in the validation split (default 0)."`
	Seed               *int64   `hcl:"seed,optional" doc:"Seed of the split and of the generator (default 1)."`

	BaseDir string `hcl:"base_dir,optional" doc:"Set by the host to the pipeline file's directory; relative paths are resolved against it. Users need not set it."`
}

// Limits on generator sizes, so that a typo cannot ask for terabytes.
const (
	maxGenRows     = 10_000_000
	maxGenFeatures = 1000
	maxGenClasses  = 1000
)

var formats = []string{string(FormatCSV), string(FormatTSV), string(FormatWhitespace)}
var tasks = []string{string(Classification), string(Regression)}

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		Description: "Loads a dataset file or generates a synthetic dataset, and splits it into train, validation and test rows.",
		Outputs: []sdk.Port{{
			Name:        Port,
			Description: "One float64 column per feature, the target column (int64 class index or float64 value) and a utf8 split column; schema metadata sweetspot.target, sweetspot.task, sweetspot.classes.",
			// Features and the target are named by the data, so the only
			// column every dataset has is the split.
			Schema: arrow.NewSchema([]arrow.Field{{Name: SplitColumn, Type: arrow.BinaryTypes.String}}, nil),
		}},
	}
}

// Register adds the dataset stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage loads or generates the dataset when run.
type Stage struct {
	load          func() (*Table, error)
	testFraction  float64
	validFraction float64
	seed          uint64
}

var _ sdk.Stage = (*Stage)(nil)

// New checks a config and returns the stage. Every problem is reported, each
// with the attribute at fault.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: strings.Split(path, ".")})
	}
	fileOnly := map[string]bool{
		"format": c.Format != "", "header": c.Header != nil, "target": c.Target != "",
		"target_index": c.TargetIndex != nil, "target_path": c.TargetPath != "", "task": c.Task != "",
	}
	genOnly := map[string]bool{
		"rows": c.Rows != nil, "noise": c.Noise != nil, "classes": c.Classes != nil, "features": c.Features != nil,
	}

	st := &Stage{testFraction: 0.2, seed: 1}
	if c.TestFraction != nil {
		st.testFraction = *c.TestFraction
		if !(st.testFraction >= 0 && st.testFraction < 1) {
			bad("test_fraction", "Invalid test fraction", fmt.Sprintf("test_fraction must be at least 0 and below 1; found %g.", st.testFraction))
		}
	}
	if c.ValidationFraction != nil {
		st.validFraction = *c.ValidationFraction
		if !(st.validFraction >= 0 && st.validFraction < 1) {
			bad("validation_fraction", "Invalid validation fraction", fmt.Sprintf("validation_fraction must be at least 0 and below 1; found %g.", st.validFraction))
		}
	}
	if st.testFraction+st.validFraction >= 1 && st.testFraction < 1 && st.validFraction < 1 {
		bad("validation_fraction", "No rows left for training", fmt.Sprintf("test_fraction (%g) and validation_fraction (%g) add up to 1 or more, leaving no training rows.", st.testFraction, st.validFraction))
	}
	if c.Seed != nil {
		st.seed = uint64(*c.Seed)
	}

	switch {
	case c.Path != "" && c.Generator != "":
		bad("generator", "Conflicting data sources", "Set either path (a file) or generator (a synthetic dataset), not both.")
	case c.Path == "" && c.Generator == "":
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Missing data source",
			Detail: fmt.Sprintf("A dataset needs path (a CSV or TSV file) or generator (one of %s).", strings.Join(Generators, ", "))})
	case c.Path != "":
		for _, name := range sortedTrue(genOnly) {
			bad(name, "Argument only for generators", fmt.Sprintf("%s applies to a generated dataset; this one is read from %q.", name, c.Path))
		}
		opts, d := fileOptions(c)
		diags = append(diags, d...)
		path := resolve(c.BaseDir, c.Path)
		st.load = func() (*Table, error) { return LoadFile(path, opts) }
	default:
		for _, name := range sortedTrue(fileOnly) {
			bad(name, "Argument only for files", fmt.Sprintf("%s applies to a dataset read from a file; this one is generated.", name))
		}
		opts, d := genOptions(c, st.seed)
		diags = append(diags, d...)
		st.load = func() (*Table, error) { return Generate(opts) }
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return st, nil
}

func sortedTrue(m map[string]bool) []string {
	var out []string
	for k, v := range m {
		if v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}

func fileOptions(c Config) (LoadOptions, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	bad := func(path, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: []string{path}})
	}
	o := LoadOptions{Format: Format(c.Format), Header: c.Header, Target: c.Target, TargetIndex: c.TargetIndex, Task: Task(c.Task)}
	if c.Format != "" && !slices.Contains(formats, c.Format) {
		bad("format", "Unknown format", fmt.Sprintf("format must be one of %s; found %q.%s", strings.Join(formats, ", "), c.Format, suggest.Hint(c.Format, formats)))
	}
	if c.Task != "" && !slices.Contains(tasks, c.Task) {
		bad("task", "Unknown task", fmt.Sprintf("task must be classification or regression; found %q.%s", c.Task, suggest.Hint(c.Task, tasks)))
	}
	if c.Target != "" && c.TargetIndex != nil {
		bad("target_index", "Conflicting target arguments", "Set target (a column name) or target_index (a position), not both.")
	}
	if c.TargetPath != "" {
		if c.Target != "" || c.TargetIndex != nil {
			name := "target"
			if c.Target == "" {
				name = "target_index"
			}
			bad(name, "Conflicting target arguments", "With target_path the target comes from its own file and every column of path is a feature; remove "+name+".")
		}
		o.TargetPath = resolve(c.BaseDir, c.TargetPath)
		if d := checkFile("target_path", c.TargetPath, o.TargetPath); d != nil {
			diags = append(diags, *d)
		}
	}
	if d := checkFile("path", c.Path, resolve(c.BaseDir, c.Path)); d != nil {
		diags = append(diags, *d)
	}
	return o, diags
}

// checkFile reports a missing or unreadable file at config time, so that
// `sweetspot validate` finds it before anything runs.
func checkFile(attr, given, resolved string) *sdk.Diagnostic {
	fi, err := os.Stat(resolved)
	switch {
	case errors.Is(err, os.ErrNotExist):
		detail := fmt.Sprintf("No file at %q", resolved)
		if given != resolved {
			detail += fmt.Sprintf(" (%q relative to the pipeline's directory)", given)
		}
		return &sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Dataset file not found", Detail: detail + ".", Path: []string{attr}}
	case err != nil:
		return &sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Unreadable dataset file", Detail: err.Error() + ".", Path: []string{attr}}
	case fi.IsDir():
		return &sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Dataset path is a directory", Detail: fmt.Sprintf("%q is a directory; name a file.", resolved), Path: []string{attr}}
	}
	return nil
}

func genOptions(c Config, seed uint64) (GenOptions, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	bad := func(path, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: []string{path}})
	}
	if !slices.Contains(Generators, c.Generator) {
		bad("generator", "Unknown generator", fmt.Sprintf("generator must be one of %s; found %q.%s", strings.Join(Generators, ", "), c.Generator, suggest.Hint(c.Generator, Generators)))
		return GenOptions{}, diags
	}
	o := GenDefaults(c.Generator)
	o.Seed = seed
	if c.Rows != nil {
		o.Rows = *c.Rows
		if o.Rows < 1 || o.Rows > maxGenRows {
			bad("rows", "Invalid row count", fmt.Sprintf("rows must be between 1 and %d; found %d.", maxGenRows, o.Rows))
		}
	}
	if c.Noise != nil {
		o.Noise = *c.Noise
		if !(o.Noise >= 0) || math.IsInf(o.Noise, 0) {
			bad("noise", "Invalid noise", fmt.Sprintf("noise must be a finite number, 0 or more; found %g.", o.Noise))
		}
	}
	if c.Features != nil {
		o.Features = *c.Features
		switch c.Generator {
		case GenSpirals, GenCheckerboard:
			if o.Features != 2 {
				bad("features", "Invalid feature count", fmt.Sprintf("The %s generator makes 2-D data; features must be 2 or unset, found %d.", c.Generator, o.Features))
			}
		case GenBlobs:
			if o.Features < 2 || o.Features > maxGenFeatures {
				bad("features", "Invalid feature count", fmt.Sprintf("The blobs generator needs between 2 and %d features; found %d.", maxGenFeatures, o.Features))
			}
		default:
			if o.Features < 1 || o.Features > maxGenFeatures {
				bad("features", "Invalid feature count", fmt.Sprintf("features must be between 1 and %d; found %d.", maxGenFeatures, o.Features))
			}
		}
	}
	if c.Classes != nil {
		o.Classes = *c.Classes
		most := maxGenClasses
		if c.Generator == GenCheckerboard {
			most = MaxCheckerboardClasses
		}
		switch {
		case c.Generator == GenRegression:
			bad("classes", "Argument only for classification", "The regression generator makes a numeric target; remove classes.")
		case o.Classes < 2 || o.Classes > most:
			bad("classes", "Invalid class count", fmt.Sprintf("The %s generator takes between 2 and %d classes; found %d.", c.Generator, most, o.Classes))
		}
	}
	if c.Generator != GenRegression && o.Rows >= 1 && o.Classes >= 2 && o.Rows < o.Classes {
		bad("rows", "Fewer rows than classes", fmt.Sprintf("%d rows cannot hold %d classes; every class needs rows to learn from.", o.Rows, o.Classes))
	}
	return o, diags
}

// Run loads or generates the dataset, splits it and writes it to "data".
func (s *Stage) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(Port)
	if err != nil {
		return err
	}
	t, err := s.load()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	strata, n := t.Strata()
	parts := StratifiedSplit(strata, n, s.testFraction, s.validFraction, s.seed)
	var counts [3]int
	for _, p := range parts {
		counts[p]++
	}
	sdk.Logger(ctx).Info("dataset ready", "source", t.Source, "rows", t.Rows(), "features", len(t.FeatureNames),
		"task", string(t.Task), "classes", t.Classes, "train", counts[Train], "validation", counts[Validation], "test", counts[Test])
	done := int64(0)
	return t.WriteBatches(sdk.Allocator(ctx), parts, MaxBatchRows, func(b arrow.RecordBatch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.Write(b); err != nil {
			return fmt.Errorf("write port %s: %w", Port, err)
		}
		done += b.NumRows()
		sdk.ReportProgress(ctx, sdk.Progress{Done: done, Total: int64(t.Rows()), Message: "rows written"})
		return nil
	})
}
