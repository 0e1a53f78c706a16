// Command sweetspot-plugin-standardize is an example third-party sweetspot
// plugin, built against the public sdk only. It adds the stage kind
// "standardize": z-scores of numeric columns, with the mean and standard
// deviation learnt on the training rows alone and applied to every row, so
// that nothing about the validation and test rows leaks into training.
//
//	stage "standardize" "scale" {
//	  plugin  = "standardize"
//	  input   = dataset.blobs
//	  columns = ["x0", "x1"]   # optional; default: every float64 column but the target and split
//	  epsilon = 1e-9           # optional; a column this flat is only centred
//	}
//
// Input port "input" is a dataset table: float64 features, the target named
// by the schema metadata sweetspot.target, and an optional utf8 "split"
// column (train|validation|test; without it every row counts as training).
// Output port "data" is the same table, the chosen columns replaced by
// (x - mean) / std; every other column, the schema metadata and the column
// order are kept, and each scaled column records its mean and std in its
// field metadata (sweetspot.standardize.mean, sweetspot.standardize.std)
// so that the same scaling can be applied at inference.
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

const (
	kind       = "standardize"
	inputPort  = sdk.PrimaryInput
	outputPort = "data"

	metaTarget  = "sweetspot.target"
	splitColumn = "split"
	trainSplit  = "train"

	metaMean = "sweetspot.standardize.mean"
	metaStd  = "sweetspot.standardize.std"

	defaultEpsilon = 1e-9
)

// Config is the body of a `stage "standardize" "NAME" {}` block.
type Config struct {
	Columns []string `hcl:"columns,optional" doc:"Columns to standardize. Default: every float64 column except the target (schema metadata sweetspot.target) and split."`
	Epsilon *float64 `hcl:"epsilon,optional" doc:"A column whose standard deviation on the training rows is at most epsilon is centred but not scaled (default 1e-9)."`
}

func main() {
	if err := newSet().Run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func newSet() *sdk.Set {
	set := sdk.NewSet(sdk.WithName("standardize"), sdk.WithVersion(version))
	sdk.Register(set, kind, sdk.StageInfo{
		Description: "Standardizes numeric columns to z-scores, with statistics from the training rows only.",
		Inputs: []sdk.Port{{
			Name:        inputPort,
			Description: "A dataset table: float64 features, the target (schema metadata sweetspot.target) and a utf8 split column.",
		}},
		Outputs: []sdk.Port{{
			Name:        outputPort,
			Description: "The input table with the chosen columns standardized.",
		}},
	}, newStage)
	return set
}

type stage struct {
	columns []string
	epsilon float64
}

var _ sdk.Stage = (*stage)(nil)

func newStage(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	s := &stage{columns: c.Columns, epsilon: defaultEpsilon}
	if c.Epsilon != nil {
		s.epsilon = *c.Epsilon
		if !(s.epsilon >= 0) || math.IsInf(s.epsilon, 0) {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Invalid epsilon",
				Detail: fmt.Sprintf("epsilon must be a finite number, 0 or more; found %g.", s.epsilon), Path: []string{"epsilon"}})
		}
	}
	if c.Columns != nil && len(c.Columns) == 0 {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "No columns",
			Detail: "columns is empty; list the columns to standardize, or remove it to standardize every feature.", Path: []string{"columns"}})
	}
	seen := map[string]bool{}
	for i, name := range c.Columns {
		if seen[name] {
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Duplicate column",
				Detail: fmt.Sprintf("Column %q is listed twice.", name), Path: []string{"columns", strconv.Itoa(i)}})
		}
		seen[name] = true
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return s, nil
}

// pick returns the indexes of the columns to standardize. A problem with a
// listed column is a config problem, reported on its element of columns.
func (s *stage) pick(schema *arrow.Schema) ([]int, error) {
	target, _ := schema.Metadata().GetValue(metaTarget)
	if s.columns == nil {
		var idx []int
		for i, f := range schema.Fields() {
			if f.Name != target && f.Name != splitColumn && arrow.TypeEqual(f.Type, arrow.PrimitiveTypes.Float64) {
				idx = append(idx, i)
			}
		}
		return idx, nil
	}
	var diags sdk.Diagnostics
	var idx []int
	for i, name := range s.columns {
		path := []string{"columns", strconv.Itoa(i)}
		fi := schema.FieldIndices(name)
		switch {
		case len(fi) == 0:
			var names []string
			for _, f := range schema.Fields() {
				names = append(names, strconv.Quote(f.Name))
			}
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Unknown column",
				Detail: fmt.Sprintf("The input has no column %q; it has %s.", name, strings.Join(names, ", ")), Path: path})
		case name == target || name == splitColumn:
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Column may not be standardized",
				Detail: fmt.Sprintf("%q is the dataset's %s column; only features may be standardized.", name, map[bool]string{true: "target", false: "split"}[name == target]), Path: path})
		case !arrow.TypeEqual(schema.Field(fi[0]).Type, arrow.PrimitiveTypes.Float64):
			diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: "Column is not float64",
				Detail: fmt.Sprintf("Column %q is %s; standardize works on float64 columns.", name, schema.Field(fi[0]).Type), Path: path})
		default:
			idx = append(idx, fi[0])
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return idx, nil
}

// moments accumulates a mean and variance with Welford's method, which
// stays accurate where the sum of squares would cancel.
type moments struct {
	n        int64
	mean, m2 float64
}

func (m *moments) add(x float64) {
	m.n++
	d := x - m.mean
	m.mean += d / float64(m.n)
	m.m2 += d * (x - m.mean)
}

// std is the population standard deviation, as scikit-learn's
// StandardScaler uses.
func (m *moments) std() float64 { return math.Sqrt(m.m2 / float64(m.n)) }

func (s *stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	r, err := in.Reader(inputPort)
	if err != nil {
		return err
	}
	w, err := out.Writer(outputPort)
	if err != nil {
		return err
	}
	schema := r.Schema()
	cols, err := s.pick(schema)
	if err != nil {
		return err
	}
	splitIdx := -1
	if fi := schema.FieldIndices(splitColumn); len(fi) > 0 {
		if !arrow.TypeEqual(schema.Field(fi[0]).Type, arrow.BinaryTypes.String) {
			return &sdk.InputError{Port: inputPort, Row: -1, Column: splitColumn, Err: fmt.Errorf("split column is %s, want utf8", schema.Field(fi[0]).Type)}
		}
		splitIdx = fi[0]
	}

	// The statistics need every training row before the first row can be
	// written, so the input is kept: retained, not copied.
	var batches []arrow.RecordBatch
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	stats := make([]moments, len(cols))
	var row int64
	for r.Next() {
		b := r.RecordBatch()
		if !b.Schema().Equal(schema) {
			return &sdk.InputError{Port: inputPort, Row: row, Err: fmt.Errorf("%w: batch schema differs from the first batch's", sdk.ErrSchemaMismatch)}
		}
		b.Retain()
		batches = append(batches, b)
		var split *array.String
		if splitIdx >= 0 {
			split = b.Column(splitIdx).(*array.String)
		}
		for k, c := range cols {
			col := b.Column(c).(*array.Float64)
			for i := range col.Len() {
				if col.IsNull(i) || (split != nil && (split.IsNull(i) || split.Value(i) != trainSplit)) {
					continue
				}
				x := col.Value(i)
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return &sdk.InputError{Port: inputPort, Row: row + int64(i), Column: schema.Field(c).Name, Err: fmt.Errorf("value %g cannot be standardized", x)}
				}
				stats[k].add(x)
			}
		}
		row += b.NumRows()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("read port %s: %w", inputPort, err)
	}
	if len(batches) == 0 {
		return nil
	}

	means, scales := make([]float64, len(cols)), make([]float64, len(cols))
	fields := slices.Clone(schema.Fields())
	for k, c := range cols {
		if stats[k].n == 0 {
			return &sdk.InputError{Port: inputPort, Row: -1, Column: schema.Field(c).Name, Err: errors.New("no training row has a value in this column, so it has no mean to centre on")}
		}
		sd := stats[k].std()
		means[k], scales[k] = stats[k].mean, sd
		if sd <= s.epsilon {
			// A flat column is centred only: dividing by ~0 would turn
			// rounding noise into huge values.
			scales[k] = 1
		}
		md := fields[c].Metadata
		keys := append(slices.Clone(md.Keys()), metaMean, metaStd)
		vals := append(slices.Clone(md.Values()),
			strconv.FormatFloat(means[k], 'g', -1, 64), strconv.FormatFloat(sd, 'g', -1, 64))
		fields[c].Metadata = arrow.NewMetadata(keys, vals)
	}
	md := schema.Metadata()
	outSchema := arrow.NewSchema(fields, &md)
	sdk.Logger(ctx).Info("standardizing", "columns", len(cols), "train_rows", trainRows(stats), "rows", row)

	mem := sdk.Allocator(ctx)
	for _, b := range batches {
		rec := scale(mem, outSchema, b, cols, means, scales)
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return fmt.Errorf("write port %s: %w", outputPort, err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func trainRows(stats []moments) int64 {
	if len(stats) == 0 {
		return 0
	}
	return stats[0].n
}

// scale returns b with columns cols replaced by their z-scores; the other
// columns are shared with b, not copied.
func scale(mem memory.Allocator, schema *arrow.Schema, b arrow.RecordBatch, cols []int, means, scales []float64) arrow.RecordBatch {
	arrays := slices.Clone(b.Columns())
	var made []arrow.Array
	for k, c := range cols {
		src := arrays[c].(*array.Float64)
		fb := array.NewFloat64Builder(mem)
		fb.Reserve(src.Len())
		for i := range src.Len() {
			if src.IsNull(i) {
				fb.AppendNull()
				continue
			}
			fb.UnsafeAppend((src.Value(i) - means[k]) / scales[k])
		}
		a := fb.NewArray()
		fb.Release()
		arrays[c] = a
		made = append(made, a)
	}
	rec := array.NewRecordBatch(schema, arrays, b.NumRows())
	// The record holds its own references now.
	for _, a := range made {
		a.Release()
	}
	return rec
}
