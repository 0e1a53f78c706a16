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
// path names a CSV file (optionally gzip-compressed; a header line names
// the columns; lines starting with # are comments), a Parquet file or an
// Arrow IPC file or stream, told apart by format or else by the name's
// extension (.csv, .parquet or .pq, .arrow, .arrows, .feather or .ipc). A
// relative path is relative to base_dir, which the host sets to the
// pipeline file's directory. The table is read whole when the stage runs.
//
// Each candidate is matched on the key columns (default family, depth and
// width): text columns compare as text, numeric ones as numbers (64 and
// 64.0 are equal; float32 columns compare at float32 precision). Two rows
// with the same key are an error: add the column that tells them apart
// (learning_rate, say) to key.
//
// Every results column the table has (accuracy, loss, latency_p50_ms,
// latency_p95_ms, throughput_per_s, model_bytes, peak_bytes,
// train_seconds, epochs_run, status, error, rmse, r2, accuracy_before,
// loss_before, rmse_before, nonzero_params, val_loss, best_epoch,
// stopped_by) is copied; `columns` maps a results or key column to the
// table's name for it (columns = { accuracy = "top1" }). Columns the table
// lacks are null, except the ones the results table never leaves null:
// train_seconds, epochs_run and best_epoch are 0, stopped_by and error
// empty, status ok. train_seconds is the time the model took to train
// when it was measured, so resize's max_wall spends the budget the real
// trials would have spent; with no such column a replayed trial costs
// nothing. A table needs at least one quality column: accuracy, loss or
// rmse. A status column may hold ok, failed, pruned or infeasible (empty
// is ok): a failed row replays as a failed trial.
//
// The candidate's own columns (candidate_id, round, params, flops and the
// hyperparameters) are kept as they come: the table is trusted to have
// been measured with the hyperparameters the candidates carry, unless
// those are part of the key.
//
// # Missing keys
//
// With interpolate = "none" (the default), a candidate the table does not
// hold stops the stage with an input error naming the candidate, its key
// and the nearest measured keys (fewest other key columns differing, then
// closest in width, in doublings). With interpolate = "log_width", a
// candidate whose width lies between two measured widths with the same
// other keys gets every numeric column interpolated linearly in log(width)
// between the two rows (integer columns rounded, text columns taken from
// the nearer row); such a row's replay_source is "interpolated". Only rows
// with status ok and a positive width are interpolated from; widths outside
// the measured range are not extrapolated and stay errors.
//
// # Traces
//
// Each lookup is a span "trial <candidate_id>" with the evaluation stage's
// trial attributes (the candidate's hyperparameters, then status and the
// measurements) plus replay.source, replay.row (exact) or replay.lo_width
// and replay.hi_width (interpolated). Its trace id is the row's trace_id.
package replay

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
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
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

// Config is the body of a `stage "replay" "NAME" {}` block.
type Config struct {
	Path        string            `hcl:"path" doc:"The table of measured results: a CSV (optionally gzip-compressed), Parquet or Arrow IPC file. A relative path is relative to the pipeline file's directory."`
	Format      string            `hcl:"format,optional" doc:"csv, parquet or arrow (IPC file or stream). Default: from the file name's extension."`
	Key         []string          `hcl:"key,optional" doc:"Candidates columns a table row must match (default [\"family\", \"depth\", \"width\"])."`
	Columns     map[string]string `hcl:"columns,optional" doc:"Table column names of results or key columns that the table names otherwise, e.g. { accuracy = \"top1\", width = \"hidden\" }."`
	Interpolate string            `hcl:"interpolate,optional" doc:"none (default: a candidate missing from the table is an error) or log_width (interpolate linearly in log(width) between the two nearest measured widths with the same other keys; such rows have replay_source = \"interpolated\")."`
	BaseDir     string            `hcl:"base_dir,optional" doc:"Set by the host to the pipeline file's directory; a relative path is resolved against it. Users need not set it."`
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
		Description: "Evaluates candidates by looking them up in a table of already-measured results (CSV, Parquet or Arrow) instead of training them.",
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

// Stage looks candidates up when run.
type Stage struct {
	path        string // resolved
	format      string
	key         []string
	columns     map[string]string
	interpolate bool
}

var _ sdk.Stage = (*Stage)(nil)

// New checks a config and returns the stage.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	s := &Stage{key: DefaultKey, columns: c.Columns}

	s.path = c.Path
	if c.Path != "" && !filepath.IsAbs(c.Path) && c.BaseDir != "" {
		s.path = filepath.Join(c.BaseDir, c.Path)
	}
	pathOK := false
	switch fi, err := os.Stat(s.path); {
	case c.Path == "":
		bad([]string{"path"}, "Missing table path", "path names the table of measured results: a CSV, Parquet or Arrow IPC file.")
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

	s.format = c.Format
	switch {
	case c.Format != "":
		if !slices.Contains(formats, c.Format) {
			bad([]string{"format"}, "Unknown format", fmt.Sprintf("format must be one of %s; found %q.%s", strings.Join(formats, ", "), c.Format, suggest.Hint(c.Format, formats)))
		}
	case pathOK:
		s.format = FormatFromName(c.Path)
		if s.format == "" {
			bad([]string{"path"}, "Unknown table format", fmt.Sprintf("The name %q does not say the format (.csv, .parquet, .arrow, .arrows, .feather or .ipc); set format to one of %s.", filepath.Base(c.Path), strings.Join(formats, ", ")))
		}
	}

	candCols := make([]string, 0, len(tables.CandidatesSchema.Fields()))
	for _, f := range tables.CandidatesSchema.Fields() {
		candCols = append(candCols, f.Name)
	}
	if c.Key != nil {
		s.key = c.Key
		if len(c.Key) == 0 {
			bad([]string{"key"}, "Empty key", "key lists the candidates columns a table row must match, such as [\"family\", \"depth\", \"width\"].")
		}
		seen := map[string]bool{}
		for i, k := range c.Key {
			path := []string{"key", fmt.Sprint(i)}
			switch {
			case !slices.Contains(candCols, k):
				bad(path, "Unknown candidates column", fmt.Sprintf("A key is a column of the candidates table (%s); found %q.%s", strings.Join(candCols, ", "), k, suggest.Hint(k, candCols)))
			case seen[k]:
				bad(path, "Duplicate key column", fmt.Sprintf("%s is listed twice.", k))
			}
			seen[k] = true
		}
	}

	mappable := append(slices.Clone(candCols), resultNames()...)
	names := make([]string, 0, len(c.Columns))
	for name := range c.Columns {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		path := []string{"columns", name}
		switch {
		case !slices.Contains(mappable, name):
			bad(path, "Unknown results column", fmt.Sprintf("columns maps a results or candidates column to the table's name for it; %q is neither.%s The results columns are: %s.", name, suggest.Hint(name, mappable), strings.Join(resultNames(), ", ")))
		case strings.TrimSpace(c.Columns[name]) == "":
			bad(path, "Empty column name", fmt.Sprintf("columns.%s names no table column.", name))
		}
	}

	switch c.Interpolate {
	case "", InterpolateNone:
	case InterpolateLogWidth:
		s.interpolate = true
		if !slices.Contains(s.key, "width") {
			bad([]string{"interpolate"}, "Interpolation needs width in the key", "log_width interpolates between measured widths, so key must include width.")
		}
	default:
		bad([]string{"interpolate"}, "Unknown interpolation", fmt.Sprintf("interpolate must be one of %s; found %q.%s", strings.Join(interpolations, ", "), c.Interpolate, suggest.Hint(c.Interpolate, interpolations)))
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, nil
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
	mem := sdk.Allocator(ctx)
	t, err := loadTable(ctx, s.path, s.format, mem)
	if err != nil {
		return fmt.Errorf("replay table %s: %w", s.path, err)
	}
	ix, diags := s.prepare(t)
	if diags.HasErrors() {
		return diags
	}
	log := sdk.Logger(ctx)
	log.Info("replaying", "table", s.path, "rows", t.rows, "candidates", len(cands))

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
	_, span := otel.Tracer(TracerName).Start(ctx, "trial "+c.ID, trace.WithAttributes(append(evaluation.CandidateAttributes(c),
		attribute.String("replay.table", ix.t.path),
	)...))
	defer span.End()
	h, ok = ix.find(c, s.interpolate)
	if !ok {
		col, msg = ix.missing(c, s.interpolate)
		err := errors.New(msg)
		span.RecordError(err)
		span.SetStatus(codes.Error, msg)
		return r, h, false, col, msg
	}
	r = ix.build(c, h)
	if sc := span.SpanContext(); sc.HasTraceID() {
		r.TraceID = sc.TraceID().String()
	}
	attrs := evaluation.ResultAttributes(r)
	if h.interpolated() {
		attrs = append(attrs, attribute.String("replay.source", SourceInterpolated),
			attribute.Int("replay.lo_width", int(ix.keys[ix.width].nums[h.lo])),
			attribute.Int("replay.hi_width", int(ix.keys[ix.width].nums[h.hi])))
	} else {
		attrs = append(attrs, attribute.String("replay.source", SourceExact), attribute.String("replay.row", ix.t.where(h.row)))
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
