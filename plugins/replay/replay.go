// Package replay is the "replay" stage: an evaluation stage that looks each
// candidate up in a table of results measured before (a published NAS or
// HPO benchmark, a model zoo's size/accuracy/latency table, or an earlier
// sweetspot run) instead of training it. A search strategy can then be
// tried against such a table in seconds, and the resize loop measured
// against the table's true optimum.
//
// # Ports
//
// Input "input" is a candidates table (model_choice's, optimization's, or
// the resize stage's proposals when the stage is a loop's loop_to target).
// Output "results" has the evaluation stage's results columns (see package
// evaluation), then:
//
//	replay_source    utf8   exact | interpolated
//	replay_lo_width  int32  interpolated: the measured width below (null when exact)
//	replay_hi_width  int32  interpolated: the measured width above (null when exact)
//
// # The table
//
// path names a CSV or TSV file (optionally gzip-compressed; a header line
// names the columns; lines starting with # are comments), a Parquet file
// or an Arrow IPC file or stream, told apart by format or else by the
// name's extension (.csv, .tsv, .parquet or .pq, .arrow, .arrows, .feather
// or .ipc; .gz after .csv or .tsv). A relative path is relative to
// base_dir, which the host sets to the pipeline file's directory.
// plugins/internal/tablefile reads it, as it reads model_choice's table
// families, so both stages read the same file the same way.
//
// The table is read and checked when the stage is configured, so
// `sweetspot validate` reports its problems, and a run stops before any
// stage runs. Every problem is reported at once, as a diagnostic on the
// attribute to fix (a columns or key entry, scale, interpolate, else
// path), whose text names the file, the line (the row, in Parquet and
// Arrow) and the column, and says how to fix it: a missing column (with
// the ones the table has, and a did-you-mean), a cell that is not a number
// (thousands separators, "1,014.45", and decimal commas are named as such,
// with the number to write instead), a number that is not finite, a
// parameter count or model_bytes that is not positive, an accuracy outside
// 0..1 (when every value lies in 0..100 the message says the table is in
// percent and offers scale = { accuracy = 0.01 }), two rows with the same
// name or key, an unknown status, a ragged line.
//
// # Lookups
//
// A candidate is looked up by the kind of its family (the candidates'
// family_kind):
//
//   - table (model_choice's table families: named models): by name, the
//     candidate's name against the table's name column (name, or as mapped:
//     columns = { name = "model" }). Names must be unique (a table whose
//     name column is not, such as an exported run whose variants share a
//     name, can name its models by another: columns = { name =
//     "candidate_id" }). A name the table lacks is an error naming the
//     candidate, a did-you-mean and the nearest names; such a model is
//     never invented, whatever interpolate says.
//   - axis: by knobs: every knob of the candidate against the table's
//     column of the same name (numbers compare as numbers, so 8 and 8.0
//     are equal; text as text; booleans as true/false or 1/0). When
//     several rows match, the family column picks the candidate's family.
//   - mlp (and candidates without a kind): by the key columns (default
//     family, depth and width): text columns compare as text, numeric ones
//     as numbers (64 and 64.0 are equal; float32 columns compare at float32
//     precision). Two rows with the same key are an error: add the column
//     that tells them apart (learning_rate, say) to key.
//
// The key is required when the config sets it, or when the table has no
// name column. A table with names and no key set (a model zoo) may lack
// the key columns, or not tell its rows apart by them: an mlp candidate is
// then an error naming why, when one comes.
//
// None of this needs the dataset: the stage reads only its candidates and
// the table.
//
// # Results
//
// The row keeps the candidate's columns (candidate_id, name, family,
// family_kind, size, knobs, round, flops and the hyperparameters) as they
// come, but for params, which is the table's when it has a params column
// (params, else param_count, or as mapped: columns = { params = "n" }), so
// a zoo's real parameter counts flow on to resize and the report. The
// table is trusted to have been measured with the hyperparameters the
// candidates carry, unless those are part of the key.
//
// Every results column the table has (accuracy, loss, latency_p50_ms,
// latency_p95_ms, throughput_per_s, model_bytes, peak_bytes,
// train_seconds, epochs_run, status, error, rmse, r2, accuracy_before,
// loss_before, rmse_before, nonzero_params, val_loss, best_epoch,
// stopped_by) is copied; `columns` maps a results or key column to the
// table's name for it (columns = { accuracy = "top1" }), and `scale`
// multiplies a numeric one (and params) as it is read: scale = { accuracy
// = 0.01 } for accuracy in percent, { latency_p95_ms = 1000 } for seconds.
// Columns the table lacks are null, except the ones the results table
// never leaves null: train_seconds, epochs_run and best_epoch are 0,
// stopped_by and error empty, status ok. train_seconds is the time the
// model took to train when it was measured, so resize's max_wall spends
// the budget the real trials would have spent; with no such column a
// replayed trial costs nothing. A table needs at least one quality column:
// accuracy, loss or rmse. A status column may hold ok, failed, pruned or
// infeasible (empty is ok): a failed row replays as a failed trial.
//
// # Repeats
//
// A table holds one measurement of each model unless it has a repeat
// column (repeat, or as mapped: columns = { repeat = "seed" }): then the
// rows of one model (one name, key or set of knobs) are its repeated
// measurements, ordered by that column, and two with the same value are
// an error. repeats = N replays each candidate N times: repeat r (the
// candidates' repeat column; a candidate of repeat 0 gives repeats 0 to
// N-1, one naming a later repeat, as resize's proposals do, just that
// one) is the model's r-th row. A repeat the table does not hold is a
// failed trial whose error says how many it holds: a measurement is never
// invented, nor handed out twice as if it were two.
//
// Every row says where it comes from, for the resize stage's fit and its
// repeats: measured_from names the model's first row in the file
// ("zoo.csv:12"), the same for each of its repeats and for every row
// interpolated nearest it, so that the fit counts them as one
// measurement; repeats_held is how many measurements of the model the
// table holds (1 for a table without a repeat column: such a table is
// exact, and resize never asks it for another).
//
// # Missing keys
//
// With interpolate = "none" (the default), an mlp candidate the table does
// not hold stops the stage with an input error naming the candidate, its
// key and the nearest measured keys (fewest other key columns differing,
// then closest in width, in doublings). With interpolate = "log_width", an
// mlp candidate whose width lies between two measured widths with the
// same other keys gets every numeric column interpolated linearly in
// log(width) between the two rows (integer columns rounded, text columns
// taken from the nearer row); such a row's replay_source is
// "interpolated", its measured_from the nearer model's, and its params
// the candidate's. Repeat r is interpolated between the two models' r-th
// rows. Only rows with
// status ok and a positive width are interpolated from; widths outside the
// measured range are not extrapolated and stay errors. Interpolation is
// for mlp candidates only: setting it on a table that cannot serve key
// lookups (a zoo of named models) is a config error.
//
// # Traces
//
// Each lookup is a span "trial <candidate_id>" (with " repeat R" from the
// second repeat on) with the evaluation stage's
// trial attributes (the candidate's hyperparameters, then status and the
// measurements) plus replay.table, replay.match (name, knobs or key),
// measured_from, repeats_held, replay.source, replay.row (exact: "line
// 12" or "row 11", the repeat's own) or
// replay.lo_width and replay.hi_width (interpolated). Its trace id is the
// row's trace_id.
package replay

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/tablefile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "replay"

// Port names.
const (
	InputPort  = sdk.PrimaryInput
	OutputPort = "results"
)

// TracerName is the instrumentation scope of the lookup spans.
const TracerName = "github.com/sweetspot-ml/sweetspot/plugins/replay"

// Interpolation modes.
const (
	InterpolateNone     = "none"
	InterpolateLogWidth = "log_width"
)

var interpolations = []string{InterpolateNone, InterpolateLogWidth}

// Values of the replay_source column.
const (
	SourceExact        = "exact"
	SourceInterpolated = "interpolated"
)

// DefaultKey is the key when the config sets none.
var DefaultKey = []string{"family", "depth", "width"}

// Table formats (tablefile's).
const (
	FormatCSV     = tablefile.FormatCSV
	FormatTSV     = tablefile.FormatTSV
	FormatParquet = tablefile.FormatParquet
	FormatArrow   = tablefile.FormatArrow
)

var formats = tablefile.Formats

// ParamsColumns are the table columns params is taken from, the first
// the table has, unless columns maps params.
var ParamsColumns = []string{"params", "param_count"}

// Config is the body of a `stage "replay" "NAME" {}` block.
type Config struct {
	Path        string             `hcl:"path" doc:"The table of measured results: a CSV or TSV (optionally gzip-compressed), Parquet or Arrow IPC file. A relative path is relative to the pipeline file's directory. It is read and checked when the stage is configured, so validate reports its problems."`
	Format      string             `hcl:"format,optional" doc:"csv, tsv, parquet or arrow (IPC file or stream). Default: from the file name's extension."`
	Key         []string           `hcl:"key,optional" doc:"Candidates columns a table row must match for mlp candidates (default [\"family\", \"depth\", \"width\"]). Named models (table families) are matched by name, axis models by their knobs."`
	Columns     map[string]string  `hcl:"columns,optional" doc:"Table column names of results, key, name or params columns that the table names otherwise, e.g. { accuracy = \"top1\", width = \"hidden\", name = \"model\", params = \"n_params\" }."`
	Scale       map[string]float64 `hcl:"scale,optional" doc:"Factors applied to numeric results columns (and params) as they are read, e.g. { accuracy = 0.01 } for accuracy given in percent, { latency_p95_ms = 1000 } for seconds."`
	Interpolate string             `hcl:"interpolate,optional" doc:"none (default: a candidate missing from the table is an error) or log_width (mlp candidates only: interpolate linearly in log(width) between the two nearest measured widths with the same other keys; such rows have replay_source = \"interpolated\"). A named model the table lacks is never invented."`
	Repeats     *int               `hcl:"repeats,optional" doc:"Measurements replayed per candidate (default 1): a candidate gives repeats 0 to repeats-1, repeat r the model's r-th row in order of the table's repeat column. A repeat the table does not hold is a failed trial saying so; a table without a repeat column holds one measurement per model, and is exact."`
	BaseDir     string             `hcl:"base_dir,optional" doc:"Set by the host to the pipeline file's directory; a relative path is resolved against it. Users need not set it."`
}

// replayFields are the columns this stage adds to the results.
var replayFields = []arrow.Field{
	{Name: "replay_source", Type: arrow.BinaryTypes.String},
	{Name: "replay_lo_width", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "replay_hi_width", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
}

// Schema is the output port's schema: the evaluation stage's results, then
// replay_source, replay_lo_width and replay_hi_width.
var Schema = arrow.NewSchema(append(slices.Clone(tables.ResultsSchema.Fields()), replayFields...), nil)

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		InputFiles:  []string{"path"},
		Description: "Evaluates candidates by looking them up in a table of already-measured results (CSV, TSV, Parquet or Arrow) instead of training them: named models by name, axis models by their knobs, MLPs by family, depth and width.",
		Inputs: []sdk.Port{{
			Name:        InputPort,
			Description: "The candidates to look up (model_choice's, optimization's, or resize's proposals).",
			Schema:      tables.CandidatesSchema,
		}},
		Outputs: []sdk.Port{{
			Name:        OutputPort,
			Description: "One row per candidate, as the evaluation stage's results, plus replay_source (exact or interpolated) and the widths interpolated between.",
			Schema:      Schema,
		}},
	}
}

// Register adds the replay stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage looks candidates up when run, in the table read when it was
// configured.
type Stage struct {
	path        string // resolved
	interpolate bool
	repeats     int
	ix          *index
}

var _ sdk.Stage = (*Stage)(nil)

// settings are the parts of a config prepare uses, each valid.
type settings struct {
	key []string
	// keyExplicit is set when the config sets key: then the table must
	// serve key lookups.
	keyExplicit bool
	// keyBroken is set when key has config errors: key lookups are not
	// prepared (the config's diagnostics say why).
	keyBroken bool
	columns   map[string]string
	scale     map[string]float64
}

// New checks a config, reads the table and checks it, and returns the
// stage. Every problem of the config and of the table is reported at once.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	s := &Stage{repeats: evaluation.DefaultRepeats}
	if c.Repeats != nil {
		if *c.Repeats < 1 || *c.Repeats > evaluation.MaxRepeats {
			bad([]string{"repeats"}, "Invalid repeats", fmt.Sprintf("repeats must be between 1 and %d; found %d.", evaluation.MaxRepeats, *c.Repeats))
		}
		s.repeats = *c.Repeats
	}
	set := settings{key: DefaultKey, columns: map[string]string{}, scale: map[string]float64{}}

	s.path = tablefile.Resolve(c.Path, c.BaseDir)
	pathOK := false
	switch fi, err := os.Stat(s.path); {
	case c.Path == "":
		bad([]string{"path"}, "Missing table path", "path names the table of measured results: a CSV, TSV, Parquet or Arrow IPC file.")
	case errors.Is(err, os.ErrNotExist):
		detail := fmt.Sprintf("No file at %q", s.path)
		if s.path != c.Path {
			detail += fmt.Sprintf(" (%q relative to the pipeline's directory)", c.Path)
		}
		bad([]string{"path"}, "Table file not found", detail+".")
	case err != nil:
		bad([]string{"path"}, "Unreadable table file", err.Error()+".")
	case fi.IsDir():
		bad([]string{"path"}, "Table path is a directory", fmt.Sprintf("%q is a directory; name a file.", s.path))
	default:
		pathOK = true
	}

	format := c.Format
	formatOK := true
	switch {
	case c.Format != "":
		if !slices.Contains(formats, c.Format) {
			formatOK = false
			bad([]string{"format"}, "Unknown format", fmt.Sprintf("format must be one of %s; found %q.%s", strings.Join(formats, ", "), c.Format, suggest.Hint(c.Format, formats)))
		}
	case pathOK:
		format = tablefile.FormatFromName(c.Path)
		if format == "" {
			formatOK = false
			bad([]string{"path"}, "Unknown table format", fmt.Sprintf("The name %q does not say the format (%s); set format to one of %s.", filepath.Base(c.Path), tablefile.Extensions, strings.Join(formats, ", ")))
		}
	}

	candCols := make([]string, 0, len(tables.CandidatesSchema.Fields()))
	for _, f := range tables.CandidatesSchema.Fields() {
		candCols = append(candCols, f.Name)
	}
	if c.Key != nil {
		set.key, set.keyExplicit = c.Key, true
		if len(c.Key) == 0 {
			set.keyBroken = true
			bad([]string{"key"}, "Empty key", "key lists the candidates columns a table row must match, such as [\"family\", \"depth\", \"width\"].")
		}
		seen := map[string]bool{}
		for i, k := range c.Key {
			path := []string{"key", fmt.Sprint(i)}
			switch {
			case !slices.Contains(candCols, k):
				set.keyBroken = true
				bad(path, "Unknown candidates column", fmt.Sprintf("A key is a column of the candidates table (%s); found %q.%s", strings.Join(candCols, ", "), k, suggest.Hint(k, candCols)))
			case seen[k]:
				set.keyBroken = true
				bad(path, "Duplicate key column", fmt.Sprintf("%s is listed twice.", k))
			}
			seen[k] = true
		}
	}

	mappable := append(slices.Clone(candCols), resultNames()...)
	for _, name := range slices.Sorted(maps.Keys(c.Columns)) {
		path := []string{"columns", name}
		switch {
		case !slices.Contains(mappable, name):
			bad(path, "Unknown results column", fmt.Sprintf("columns maps a results or candidates column to the table's name for it; %q is neither.%s The results columns are: %s.", name, suggest.Hint(name, mappable), strings.Join(resultNames(), ", ")))
		case strings.TrimSpace(c.Columns[name]) == "":
			bad(path, "Empty column name", fmt.Sprintf("columns.%s names no table column.", name))
		default:
			set.columns[name] = c.Columns[name]
		}
	}

	scalable := append([]string{tables.ColParams}, numericResultNames()...)
	for _, name := range slices.Sorted(maps.Keys(c.Scale)) {
		path := []string{"scale", name}
		switch v := c.Scale[name]; {
		case !slices.Contains(scalable, name):
			bad(path, "Unknown numeric column", fmt.Sprintf("scale multiplies a numeric results column (or params) as it is read; %q is none.%s They are: %s.", name, suggest.Hint(name, scalable), strings.Join(scalable, ", ")))
		case !(v > 0) || math.IsInf(v, 0):
			bad(path, "Invalid scale", fmt.Sprintf("A scale is a positive factor, such as 0.01 for percent; found %g.", v))
		default:
			set.scale[name] = v
		}
	}

	switch c.Interpolate {
	case "", InterpolateNone:
	case InterpolateLogWidth:
		s.interpolate = true
		if !slices.Contains(set.key, "width") {
			bad([]string{"interpolate"}, "Interpolation needs width in the key", "log_width interpolates between measured widths, so key must include width.")
		}
	default:
		bad([]string{"interpolate"}, "Unknown interpolation", fmt.Sprintf("interpolate must be one of %s; found %q.%s", strings.Join(interpolations, ", "), c.Interpolate, suggest.Hint(c.Interpolate, interpolations)))
	}

	// The table is read now, so that validate reports its problems and a
	// run fails before any stage runs.
	if pathOK && formatOK {
		t, err := tablefile.Read(context.Background(), s.path, format, memory.DefaultAllocator)
		if err != nil {
			summary := "Unreadable table"
			var p *tablefile.Problem
			if errors.As(err, &p) {
				summary = p.Summary
			}
			bad([]string{"path"}, summary, sentence(err.Error()))
		} else {
			ix, more := prepare(t, set)
			diags = append(diags, more...)
			s.ix = ix
			if s.interpolate && ix != nil && ix.keys == nil && ix.keyErr != "" {
				bad([]string{"interpolate"}, "Nothing to interpolate", fmt.Sprintf("log_width interpolates mlp candidates between measured widths, found by key (%s), and %s. A named model (family kind table) is looked up by name, and one the table lacks is never invented: remove interpolate.", strings.Join(set.key, ", "), ix.keyErr))
			}
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, nil
}

// sentence ends a message with a full stop.
func sentence(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// Run reads the candidates, looks each up and writes the results.
func (s *Stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(OutputPort)
	if err != nil {
		return err
	}
	cands, err := evaluation.ReadCandidates(in, InputPort)
	if err != nil {
		return err
	}
	cands = evaluation.Repeats(cands, s.repeats)
	mem := sdk.Allocator(ctx)
	ix := s.ix
	log := sdk.Logger(ctx)
	log.Info("replaying", "table", s.path, "rows", ix.t.Rows, "candidates", len(cands))

	results := make([]tables.Result, 0, len(cands))
	hits := make([]hit, 0, len(cands))
	var misses []int
	var firstCol, firstMsg string
	interpolated := 0
	for i, c := range cands {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, h, ok, col, msg := s.trial(ctx, ix, c)
		if !ok {
			if misses == nil {
				firstCol, firstMsg = col, msg
			}
			misses = append(misses, i)
			continue
		}
		if h.interpolated() {
			interpolated++
		}
		results = append(results, r)
		hits = append(hits, h)
	}
	if len(misses) > 0 {
		if len(misses) > 1 {
			ids := make([]string, 0, 5)
			for _, i := range misses[1:min(len(misses), 6)] {
				ids = append(ids, cands[i].ID)
			}
			more := ""
			if len(misses) > 6 {
				more = ", ..."
			}
			firstMsg += fmt.Sprintf(" (%d more candidates are missing too: %s%s)", len(misses)-1, strings.Join(ids, ", "), more)
		}
		return &sdk.InputError{Port: InputPort, Row: int64(misses[0]), Column: firstCol, Err: errors.New(firstMsg)}
	}

	rec := build(mem, ix, results, hits)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("write port %s: %w", OutputPort, err)
	}
	sdk.ReportProgress(ctx, sdk.Progress{Done: int64(len(results)), Total: int64(len(cands)),
		Message: fmt.Sprintf("%d candidates replayed (%d interpolated)", len(results), interpolated)})
	log.Info("replayed", "candidates", len(results), "exact", len(results)-interpolated, "interpolated", interpolated)
	return nil
}

// trial looks one candidate up inside its span.
func (s *Stage) trial(ctx context.Context, ix *index, c tables.Candidate) (r tables.Result, h hit, ok bool, col, msg string) {
	_, span := trace.SpanFromContext(ctx).TracerProvider().Tracer(TracerName).Start(ctx, evaluation.TrialName(c), trace.WithAttributes(append(evaluation.CandidateAttributes(c),
		attribute.String("replay.table", ix.t.Path),
	)...))
	defer span.End()
	h, ok, col, msg = ix.lookup(c, s.interpolate)
	if !ok {
		err := errors.New(msg)
		span.RecordError(err)
		span.SetStatus(codes.Error, msg)
		return r, h, false, col, msg
	}
	r = ix.build(c, h)
	if sc := span.SpanContext(); sc.HasTraceID() {
		r.TraceID = sc.TraceID().String()
	}
	attrs := append(evaluation.ResultAttributes(r), attribute.String("replay.match", h.match),
		attribute.String("measured_from", r.MeasuredFrom), attribute.Int("repeats_held", int(r.RepeatsHeld)))
	if h.interpolated() {
		attrs = append(attrs, attribute.String("replay.source", SourceInterpolated),
			attribute.Int("replay.lo_width", int(ix.keys[ix.width].nums[h.lo])),
			attribute.Int("replay.hi_width", int(ix.keys[ix.width].nums[h.hi])))
	} else {
		row := h.row
		if rows := ix.modelRows(h.row, h.rows); int(c.Repeat) < len(rows) {
			row = rows[c.Repeat]
		}
		attrs = append(attrs, attribute.String("replay.source", SourceExact), attribute.String("replay.row", ix.t.Where(row)))
	}
	span.SetAttributes(attrs...)
	if r.Status == tables.StatusOK {
		span.SetStatus(codes.Ok, "")
	} else {
		span.SetStatus(codes.Error, strings.TrimSpace(r.Status+": "+r.Error))
	}
	return r, h, true, "", ""
}

// baseResult is an ok result of c with nothing measured.
func baseResult(c tables.Candidate) tables.Result {
	nan := math.NaN()
	return tables.Result{
		Candidate: c, Accuracy: nan, Loss: nan, LatencyP50Ms: nan, LatencyP95Ms: nan, ThroughputPerS: nan,
		ModelBytes: -1, PeakBytes: -1, Status: tables.StatusOK, RMSE: nan, R2: nan,
		AccuracyBefore: nan, LossBefore: nan, RMSEBefore: nan, NonZeroParams: -1, ValLoss: nan,
	}
}

// setNumber sets a numeric results column; NaN is null (0 for the columns
// that cannot be null).
func setNumber(r *tables.Result, name string, v float64) {
	i64 := func(dst *int64) {
		if math.IsNaN(v) || v < 0 {
			*dst = -1
			return
		}
		*dst = int64(math.Round(min(v, 1<<62)))
	}
	i32 := func(dst *int32) {
		if math.IsNaN(v) {
			*dst = 0
			return
		}
		*dst = int32(math.Round(max(min(v, math.MaxInt32), math.MinInt32)))
	}
	switch name {
	case "accuracy":
		r.Accuracy = v
	case "loss":
		r.Loss = v
	case "latency_p50_ms":
		r.LatencyP50Ms = v
	case "latency_p95_ms":
		r.LatencyP95Ms = v
	case "throughput_per_s":
		r.ThroughputPerS = v
	case "model_bytes":
		i64(&r.ModelBytes)
	case "peak_bytes":
		i64(&r.PeakBytes)
	case "train_seconds":
		if math.IsNaN(v) {
			v = 0
		}
		r.TrainSeconds = v
	case "epochs_run":
		i32(&r.EpochsRun)
	case "rmse":
		r.RMSE = v
	case "r2":
		r.R2 = v
	case "accuracy_before":
		r.AccuracyBefore = v
	case "loss_before":
		r.LossBefore = v
	case "rmse_before":
		r.RMSEBefore = v
	case "nonzero_params":
		i64(&r.NonZeroParams)
	case "dense_params":
		i64(&r.DenseParams)
	case "val_loss":
		r.ValLoss = v
	case "best_epoch":
		i32(&r.BestEpoch)
	}
}

// setText sets a text results column.
func setText(r *tables.Result, name, v string) {
	switch name {
	case "error":
		r.Error = v
	case "stopped_by":
		r.StoppedBy = v
	}
}

// build returns the results with the replay columns, as one batch of
// Schema. The caller releases it.
func build(mem memory.Allocator, ix *index, rs []tables.Result, hits []hit) arrow.RecordBatch {
	base := tables.BuildResults(mem, rs)
	defer base.Release()
	b := array.NewRecordBuilder(mem, arrow.NewSchema(replayFields, nil))
	defer b.Release()
	src := b.Field(0).(*array.StringBuilder)
	lo := b.Field(1).(*array.Int32Builder)
	hi := b.Field(2).(*array.Int32Builder)
	for _, h := range hits {
		if !h.interpolated() {
			src.Append(SourceExact)
			lo.AppendNull()
			hi.AppendNull()
			continue
		}
		src.Append(SourceInterpolated)
		w := ix.keys[ix.width].nums
		lo.Append(int32(w[h.lo]))
		hi.Append(int32(w[h.hi]))
	}
	extra := b.NewRecordBatch()
	defer extra.Release()
	cols := append(slices.Clone(base.Columns()), extra.Columns()...)
	return array.NewRecordBatch(Schema, cols, int64(len(rs)))
}
