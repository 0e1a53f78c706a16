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
//	sweetspot.source       the file path (features + target paths when
//	                       two), or generator:NAME
//	sweetspot.format       csv|tsv|whitespace|parquet|arrow|idx (files only)
//	sweetspot.sample       how max_rows cut the file, e.g. "first 1000
//	                       rows"; absent when every row was kept
//
// Files are CSV, TSV or whitespace-separated text, Parquet, Arrow IPC
// (file or stream; Feather v2 is an IPC file) or IDX (MNIST's format), told
// apart by the `format` attribute, else the name (.parquet, .arrow,
// .arrows, .feather, .ipc, idxN-ubyte), else the first bytes. Text, Arrow
// streams and IDX may be gzip-compressed (a .gz name or gzip's magic
// number); Parquet and Arrow IPC files are read from their footer and so
// must not be.
//
// Text: the first line may name the columns, be scikit-learn's count
// header ("n_samples,n_features,class_0,class_1,..."), or be data; this is
// detected unless `header` is set. Parquet and Arrow: columns keep their
// names; features may be any integer, floating point or bool type, the
// target also a string or a dictionary (pandas categorical) column, and a
// target of any type becomes class indices or values as a CSV cell with the
// same spelling would. IDX: an images file (path) and a labels file
// (target_path); each image is flattened row-major into features pixel_0,
// pixel_1, ... (x0, x1, ... for a 2-D file), unsigned bytes scaled to [0,1]
// unless scale_pixels = false; labels 0..9 are class indices 0..9.
//
// Missing or non-numeric features, NaN, ragged lines and unknown target
// columns are errors naming the file, the 1-based line (text) or row (other
// formats) and the column, plus the byte offset in IDX files: nothing is
// imputed silently. max_rows caps the rows kept (the first ones, or a
// seeded random sample), for quick experiments on large files; the file is
// read once either way, and a "first" sample stops reading early.
//
// Only regular files are read unless allow_special_files is set (a pipe
// may block forever, a device never end), and decompressed data stop at
// max_bytes: by default 64 times the compressed size, at least 64 MiB (a
// pipe or device: 16 GiB). Text is parsed in blocks on every core into
// columns reserved from the file's size, so memory holds the columns kept,
// not the file (text.go, textblocks.go).
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
	"runtime"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/regularfile"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "dataset"

// Port is the name of the output port.
const Port = "data"

// Config is the body of a `dataset "NAME" {}` block.
type Config struct {
	Path        string `hcl:"path,optional" doc:"Dataset file: CSV, TSV or whitespace-separated text, Parquet, Arrow IPC file or stream, or IDX images (with target_path the labels). Text, Arrow streams and IDX may be gzip-compressed. A relative path is relative to the pipeline file's directory. Exactly one of path and generator."`
	Format      string `hcl:"format,optional" doc:"csv, tsv, whitespace, parquet, arrow (IPC file or stream) or idx. When unset: parquet, arrow or idx by the file's name (.parquet, .arrow, .arrows, .feather, .ipc, idxN-ubyte) or first bytes, else a text format detected from the first line."`
	Header      *bool  `hcl:"header,optional" doc:"Text files: whether the first line names the columns. Detected when unset; scikit-learn's count header (n_samples,n_features,class names) is recognised either way."`
	Target      string `hcl:"target,optional" doc:"Name of the target column; the file needs a header line."`
	TargetIndex *int   `hcl:"target_index,optional" doc:"0-based position of the target column; negative counts from the end. The last column when neither target nor target_index is set."`
	TargetPath  string `hcl:"target_path,optional" doc:"A second file holding only the target, one value per data row of path (as scikit-learn's diabetes set, or an IDX labels file such as train-labels-idx1-ubyte.gz); every column of path is then a feature. Required for IDX."`
	Task        string `hcl:"task,optional" doc:"classification or regression. Inferred when unset: string labels, or whole numbers with at most 100 distinct values and no more than half the rows, mean classification."`
	MaxRows     *int   `hcl:"max_rows,optional" doc:"Keep at most this many rows of the file, picked by sample: for quick experiments on large files. Unset keeps every row."`
	Sample      string `hcl:"sample,optional" doc:"How max_rows picks rows: first (default: reads only those rows, the fastest; a file sorted by class loses classes) or random (a uniform sample drawn with seed in one pass over the whole file, kept in file order)."`
	ScalePixels *bool  `hcl:"scale_pixels,optional" doc:"IDX files of unsigned bytes (MNIST images): true (default) divides by 255 so features lie in [0,1]; false keeps 0..255."`

	MaxBytes          string `hcl:"max_bytes,optional" doc:"The most bytes the file may hold once decompressed, such as \"8GiB\": reading stops with an error past it. Default: 64 times the compressed size (at least 64 MiB) for a gzip file, 16 GiB for a pipe or device, and a regular uncompressed file's own size."`
	AllowSpecialFiles *bool  `hcl:"allow_special_files,optional" doc:"true reads a named pipe (FIFO), device or socket as the dataset file; by default only regular files are read, since those others may block forever or never end."`

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

var tasks = []string{string(Classification), string(Regression)}
var samples = []string{string(SampleFirst), string(SampleRandom)}

func formatNames() []string {
	out := make([]string, len(FileFormats))
	for i, f := range FileFormats {
		out[i] = string(f)
	}
	return out
}

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		InputFiles:  []string{"path", "target_path"},
		Description: "Loads a dataset file or generates a synthetic dataset, and splits it into train, validation and test rows.",
		Outputs: []sdk.Port{{
			Name:        Port,
			Description: "One float64 column per feature, the target column (int64 class index or float64 value) and a utf8 split column; schema metadata sweetspot.target, sweetspot.task, sweetspot.classes.",
			// Features and the target are named by the data, so the only
			// column every dataset has is the split.
			Schema: tables.DatasetSchema,
		}},
	}
}

// Register adds the dataset stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage loads or generates the dataset when run.
type Stage struct {
	load          func(context.Context) (*Table, error)
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
		"max_rows": c.MaxRows != nil, "sample": c.Sample != "", "scale_pixels": c.ScalePixels != nil,
		"max_bytes": c.MaxBytes != "", "allow_special_files": c.AllowSpecialFiles != nil,
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
			Detail: fmt.Sprintf("A dataset needs path (a CSV, TSV, Parquet, Arrow or IDX file) or generator (one of %s).", strings.Join(Generators, ", "))})
	case c.Path != "":
		for _, name := range sortedTrue(genOnly) {
			bad(name, "Argument only for generators", fmt.Sprintf("%s applies to a generated dataset; this one is read from %q.", name, c.Path))
		}
		opts, d := fileOptions(c)
		diags = append(diags, d...)
		opts.Seed = st.seed
		path := resolve(c.BaseDir, c.Path)
		st.load = func(ctx context.Context) (*Table, error) { return LoadFileContext(ctx, path, opts) }
	default:
		for _, name := range sortedTrue(fileOnly) {
			bad(name, "Argument only for files", fmt.Sprintf("%s applies to a dataset read from a file; this one is generated.", name))
		}
		opts, d := genOptions(c, st.seed)
		diags = append(diags, d...)
		st.load = func(context.Context) (*Table, error) { return Generate(opts) }
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
	o := LoadOptions{Format: Format(c.Format), Header: c.Header, Target: c.Target, TargetIndex: c.TargetIndex, Task: Task(c.Task), Sample: Sample(c.Sample)}
	format := Format(c.Format)
	if c.Format != "" && !slices.Contains(FileFormats, format) {
		bad("format", "Unknown format", fmt.Sprintf("format must be one of %s; found %q.%s", strings.Join(formatNames(), ", "), c.Format, suggest.Hint(c.Format, formatNames())))
		format = ""
	}
	if format == "" {
		format = FormatFromName(c.Path)
	}
	switch format {
	case FormatParquet, FormatArrow, FormatIDX:
		if c.Header != nil {
			bad("header", "Argument only for text files", fmt.Sprintf("header applies to CSV, TSV and whitespace-separated files; %s files name their columns themselves, or have none.", format))
		}
	}
	if format == FormatParquet && strings.HasSuffix(strings.ToLower(c.Path), ".gz") {
		bad("path", "Compressed Parquet file", "A Parquet file is read from its footer, which needs random access, so it cannot be read through gzip. Decompress it: Parquet compresses its own pages.")
	}
	if format == FormatIDX {
		if c.Target != "" || c.TargetIndex != nil {
			name := "target"
			if c.Target == "" {
				name = "target_index"
			}
			bad(name, "Argument not for IDX files", "IDX rows have no named columns: every value of path is a feature, and the target comes from the labels file in target_path; remove "+name+".")
		}
		if c.TargetPath == "" {
			bad("path", "IDX labels file needed", fmt.Sprintf("%q is an IDX file, which holds rows (images) but no target. Set target_path to its labels file (for train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz).", c.Path))
		}
	}
	if c.ScalePixels != nil {
		o.RawPixels = !*c.ScalePixels
		if format != "" && format != FormatIDX {
			bad("scale_pixels", "Argument only for IDX files", fmt.Sprintf("scale_pixels applies to IDX files of unsigned bytes; %q is read as %s.", c.Path, format))
		}
	}
	if c.MaxBytes != "" {
		n, err := parseSize(c.MaxBytes)
		if err != nil {
			bad("max_bytes", "Invalid max_bytes", err.Error()+".")
		}
		o.MaxBytes = n
	}
	o.AllowSpecialFiles = c.AllowSpecialFiles != nil && *c.AllowSpecialFiles
	if c.MaxRows != nil {
		o.MaxRows = *c.MaxRows
		if o.MaxRows < 1 {
			bad("max_rows", "Invalid max_rows", fmt.Sprintf("max_rows must be at least 1; found %d. Leave it unset to keep every row.", o.MaxRows))
		}
	}
	if c.Sample != "" {
		switch {
		case !slices.Contains(samples, c.Sample):
			bad("sample", "Unknown sample", fmt.Sprintf("sample must be first or random; found %q.%s", c.Sample, suggest.Hint(c.Sample, samples)))
		case c.MaxRows == nil:
			bad("sample", "Sample without max_rows", "sample says how max_rows picks rows; set max_rows too, or remove sample to keep every row.")
		}
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
		if d := checkFile("target_path", c.TargetPath, o.TargetPath, o.AllowSpecialFiles); d != nil {
			diags = append(diags, *d)
		}
	}
	if d := checkFile("path", c.Path, resolve(c.BaseDir, c.Path), o.AllowSpecialFiles); d != nil {
		diags = append(diags, *d)
	}
	return o, diags
}

// checkFile reports a missing or unreadable file, or one that is not a
// regular file unless allowSpecial, at config time, so that `sweetspot
// validate` finds it before anything runs.
func checkFile(attr, given, resolved string, allowSpecial bool) *sdk.Diagnostic {
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
	case !fi.Mode().IsRegular() && !allowSpecial:
		return &sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Dataset path is not a regular file",
			Detail: fmt.Sprintf("%q is %s. Only regular files are read unless allow_special_files = true.", resolved, regularfile.Kind(fi.Mode())), Path: []string{attr}}
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

// gcEvery is how many batches are written between collections.
const gcEvery = 2

// Run loads or generates the dataset, splits it and writes it to "data".
func (s *Stage) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(Port)
	if err != nil {
		return err
	}
	t, err := s.load(ctx)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	parts, sizes := t.split(s.testFraction, s.validFraction, s.seed)
	if err := checkParts(t, parts, sizes, s.testFraction, s.validFraction); err != nil {
		return err
	}
	// What the file was read through and the split's scratch are garbage
	// now; returning it before the batches are built keeps the plugin's
	// peak at the table and the batches in flight.
	debug.FreeOSMemory()
	var counts [3]int
	for _, p := range parts {
		counts[p]++
	}
	if t.Task == Classification && t.Sample != "" {
		// A "first" sample of a file sorted by class is the usual cause.
		var empty []int
		for c, k := range t.classCounts() {
			if k == 0 {
				empty = append(empty, c)
			}
		}
		if len(empty) > 0 {
			sdk.Logger(ctx).Warn("classes with no rows in the sample; is the file sorted by class? sample = \"random\" draws from the whole file",
				"sample", t.Sample, "classes", empty)
		}
	}
	sdk.Logger(ctx).Info("dataset ready", "source", t.Source, "format", string(t.Format), "sample", t.Sample, "rows", t.Rows(), "features", len(t.FeatureNames),
		"task", string(t.Task), "classes", t.Classes, "train", counts[Train], "validation", counts[Validation], "test", counts[Test])
	done, batches := int64(0), 0
	return t.WriteBatches(sdk.Allocator(ctx), parts, MaxBatchRows, func(b arrow.RecordBatch) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := w.Write(b); err != nil {
			return fmt.Errorf("write port %s: %w", Port, err)
		}
		done += b.NumRows()
		batches++
		if batches%gcEvery == 0 {
			// The table stays live to the end, so the collector would let
			// the garbage of written batches grow as large as the table
			// before running; collecting now and then keeps the plugin at
			// the table and a few batches.
			runtime.GC()
		}
		sdk.ReportProgress(ctx, sdk.Progress{Done: done, Total: int64(t.Rows()), Message: "rows written"})
		return nil
	})
}
