// Command sweetspot-plugin-filter is a sweetspot stage plugin made to be
// copied: one stage kind, "filter", that keeps the rows of a table whose
// value in one numeric column lies within [min, max].
//
//	stage "filter" "positive" {
//	  plugin = "filter"         # this plugin: the executable sweetspot-plugin-filter
//	  input  = dataset.blobs    # any table
//	  column = "x0"
//	  min    = 0                # optional; at least one of min and max
//	  max    = 2.5              # optional
//	}
//
// Output port "output" is the input table, rows filtered, schema unchanged.
// Output port "summary" is one row: the column, rows in and rows kept.
//
// To start your own plugin, copy this directory, rename "filter" in go.mod,
// the Makefile (PLUGIN) and below, and replace the stage. See
// docs/plugins.md in the sweetspot repository.
package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// version is set at build time: go build -ldflags "-X main.version=1.2.3".
var version = "0.1.0"

const (
	kind        = "filter"
	inputPort   = sdk.PrimaryInput
	outputPort  = "output"
	summaryPort = "summary"
)

// Config is the body of a `stage "filter" "NAME" {}` block. The `hcl` tags
// are its schema; `doc` documents each attribute in `describe`.
type Config struct {
	Column    string   `hcl:"column" doc:"The numeric column to test (any integer or floating point type)."`
	Min       *float64 `hcl:"min,optional" doc:"Keep rows whose value is at least min."`
	Max       *float64 `hcl:"max,optional" doc:"Keep rows whose value is at most max."`
	KeepNulls bool     `hcl:"keep_nulls,optional" doc:"Keep rows whose value is null (default false)."`
}

// SummarySchema is the schema of the summary port. Declaring it lets the
// host check, before anything runs, that whatever reads the port gets the
// columns it needs.
var SummarySchema = arrow.NewSchema([]arrow.Field{
	{Name: "column", Type: arrow.BinaryTypes.String},
	{Name: "rows_in", Type: arrow.PrimitiveTypes.Int64},
	{Name: "rows_out", Type: arrow.PrimitiveTypes.Int64},
}, nil)

func main() {
	// describe | serve (the default, when sweetspot starts the plugin) | -debug
	if err := newSet().Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// newSet registers the plugin's stage kinds. Tests serve the same set.
func newSet() *sdk.Set {
	set := sdk.NewSet(sdk.WithName("filter"), sdk.WithVersion(version))
	sdk.Register(set, kind, sdk.StageInfo{
		Description: "Keeps the rows whose value in a numeric column lies within [min, max].",
		Inputs: []sdk.Port{{
			Name:        inputPort,
			Description: "Any table with the column.",
		}},
		Outputs: []sdk.Port{{
			Name:        outputPort,
			Description: "The input table, filtered; its schema is the input's.",
		}, {
			Name:        summaryPort,
			Description: "One row: the column, rows in and rows kept.",
			Schema:      SummarySchema,
		}},
	}, newFilter)
	return set
}

type filter struct {
	column    string
	lo, hi    float64
	keepNulls bool
}

var _ sdk.Stage = (*filter)(nil)

// newFilter checks the config. Each problem names the attribute at fault,
// so that sweetspot points at its line in the pipeline file; all problems
// are reported at once.
func newFilter(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	if strings.TrimSpace(c.Column) == "" {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Empty column name",
			Detail: "Set column to the name of a numeric column of the input.", Path: []string{"column"}})
	}
	if c.Min == nil && c.Max == nil {
		// Nothing to point at: the block as a whole lacks a bound.
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "No bound",
			Detail: "Set min, max or both; without them the filter would keep every row."})
	}
	f := &filter{column: c.Column, lo: math.Inf(-1), hi: math.Inf(1), keepNulls: c.KeepNulls}
	if c.Min != nil {
		f.lo = *c.Min
	}
	if c.Max != nil {
		f.hi = *c.Max
	}
	if f.lo > f.hi {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Empty range",
			Detail: fmt.Sprintf("max (%g) is below min (%g), so no row could be kept.", f.hi, f.lo), Path: []string{"max"}})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return f, nil
}

// Run filters the input batch by batch, so that memory stays flat however
// large the table.
func (f *filter) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader(inputPort) // owned by the SDK: do not Release it
	if err != nil {
		return err
	}
	w, err := out.Writer(outputPort)
	if err != nil {
		return err
	}
	// Everything this stage builds comes from the run's allocator, which
	// tests replace with a checked one to prove every batch is released;
	// Arrow's compute kernels take it from their context.
	ctx = compute.WithAllocator(ctx, sdk.Allocator(ctx))
	log := sdk.Logger(ctx)

	var rowsIn, rowsOut int64
	for r.Next() {
		// A long run must notice cancellation: the host cancels on Ctrl-C,
		// on a failed sibling stage, or on a time limit.
		if err := ctx.Err(); err != nil {
			return err
		}
		b := r.RecordBatch() // valid until the next call to Next
		keep, err := f.mask(ctx, b)
		if err != nil {
			return err
		}
		rec, err := compute.FilterRecordBatch(ctx, b, keep, compute.DefaultFilterOptions())
		keep.Release()
		if err != nil {
			return err
		}
		rowsIn += b.NumRows()
		rowsOut += rec.NumRows()
		// Every batch goes out, even an empty one: downstream stages learn
		// the schema from it.
		err = w.Write(rec)
		rec.Release() // Write does not take ownership
		if err != nil {
			return fmt.Errorf("write port %s: %w", outputPort, err)
		}
		sdk.ReportProgress(ctx, sdk.Progress{Done: rowsIn, Message: fmt.Sprintf("%d of %d rows kept", rowsOut, rowsIn)})
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read port %s: %w", inputPort, err)
	}

	// The SDK runs each stage inside a span; attributes on it show in the
	// trace next to the host's.
	trace.SpanFromContext(ctx).SetAttributes(
		attribute.String("filter.column", f.column),
		attribute.Int64("filter.rows_in", rowsIn),
		attribute.Int64("filter.rows_out", rowsOut),
	)
	log.Info("filtered", "column", f.column, "rows_in", rowsIn, "rows_out", rowsOut)
	summary, err := out.Writer(summaryPort)
	if err != nil {
		return err
	}
	return sdk.WriteRow(ctx, summary, SummarySchema, f.column, rowsIn, rowsOut)
}

// mask says which rows of b to keep, as the boolean array Arrow's filter
// kernel takes; the caller releases it. A missing or non-numeric column is
// an input error naming the port and column.
func (f *filter) mask(ctx context.Context, b arrow.RecordBatch) (arrow.Array, error) {
	idx := b.Schema().FieldIndices(f.column)
	if len(idx) == 0 {
		names := make([]string, 0, b.NumCols())
		for _, fl := range b.Schema().Fields() {
			names = append(names, fl.Name)
		}
		return nil, &sdk.InputError{Port: inputPort, Row: -1, Column: f.column,
			Err: fmt.Errorf("no such column; the input has %s", strings.Join(names, ", "))}
	}
	col := b.Column(idx[0])
	if id := col.DataType().ID(); !arrow.IsInteger(id) && !arrow.IsFloating(id) {
		return nil, &sdk.InputError{Port: inputPort, Row: -1, Column: f.column,
			Err: fmt.Errorf("column is %s, not a number type", col.DataType())}
	}
	// Every integer and floating point type, read as float64.
	xs, err := compute.CastToType(ctx, col, arrow.PrimitiveTypes.Float64)
	if err != nil {
		return nil, err
	}
	defer xs.Release()
	values := xs.(*array.Float64)
	mb := array.NewBooleanBuilder(compute.GetAllocator(ctx))
	defer mb.Release()
	for i := range values.Len() {
		if values.IsNull(i) {
			mb.Append(f.keepNulls)
			continue
		}
		v := values.Value(i)
		mb.Append(v >= f.lo && v <= f.hi)
	}
	return mb.NewArray(), nil
}
