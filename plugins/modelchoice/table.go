package modelchoice

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/tablefile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// tableSpace reads a table family's file and makes one model per row, a
// family per group value (or one family), each ordered by size. The file
// is read when the stage is configured, so validate reports its problems:
// every one at once, each a diagnostic on the attribute to fix (the
// column's attribute, or path) naming the file, the line and the column.
//
// A model's knobs are its row's other columns (all but the name and group
// columns): numbers as numbers, text that is a finite number as a number,
// other text as text; a null cell of a Parquet or Arrow file is left out.
func tableSpace(f FamilyBlock, path, baseDir string, hp hyper) ([][]tables.Candidate, error) {
	var diags sdk.Diagnostics
	bad := func(attr, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: strings.Split(path+"."+attr, ".")})
	}
	problems := func(attr string, ps tablefile.Problems) {
		for _, p := range ps {
			bad(attr, p.Summary, sentence(p.Error()))
		}
	}
	file := tablefile.Resolve(f.Path, baseDir)
	format := f.Format
	if format != "" && !slices.Contains(tablefile.Formats, format) {
		bad("format", "Unknown format", fmt.Sprintf("format must be one of %s; found %q.%s", strings.Join(tablefile.Formats, ", "), format, suggest.Hint(format, tablefile.Formats)))
		return nil, diags
	}
	if format == "" && tablefile.FormatFromName(file) == "" {
		bad("path", "Unknown table format", fmt.Sprintf("The name %q does not say the format (%s); set format to one of %s.", filepath.Base(file), tablefile.Extensions, strings.Join(tablefile.Formats, ", ")))
		return nil, diags
	}
	t, err := tablefile.Read(context.Background(), file, format, memory.DefaultAllocator)
	if err != nil {
		summary := "Invalid model table"
		if p, ok := err.(*tablefile.Problem); ok {
			summary = p.Summary
		}
		bad("path", summary, sentence(err.Error()))
		return nil, diags
	}
	if t.Rows == 0 {
		bad("path", "Invalid model table", fmt.Sprintf("%s has no rows under its header.", file))
		return nil, diags
	}

	// The columns the block names, each checked where it is named.
	nameCol, nameAttr := f.NameColumn, "name_column"
	if nameCol == "" {
		nameCol, nameAttr = tables.ColName, "path"
	}
	paramsCol, paramsAttr := f.ParamsCol, "params_column"
	if paramsCol == "" {
		paramsCol, paramsAttr = f.Size, "size"
	}
	present := func(col, attr string) bool {
		c := t.Column(col)
		switch {
		case c == nil:
			why := ""
			if attr == "path" {
				why = "; the models' names are in column name unless name_column names another"
			}
			bad(attr, "No such table column", sentence(fmt.Sprintf("%s: the header has no column %q%s.%s Its columns are: %s", t.AtHeader(), col, why, suggest.Hint(col, t.Names), strings.Join(t.Names, ", "))))
			return false
		case c.Dup:
			bad(attr, "Ambiguous table column", fmt.Sprintf("%s: the header has two columns named %q.", t.AtHeader(), col))
			return false
		}
		return true
	}

	var names map[string]int
	if present(nameCol, nameAttr) {
		var ps tablefile.Problems
		names, ps = t.Unique(nameCol)
		problems(nameAttr, ps)
	}
	var sizes, params, flops []float64
	if present(f.Size, "size") {
		var ps tablefile.Problems
		sizes, ps = t.Positive(f.Size, "a size")
		problems("size", ps)
		problems("size", missingValues(t, f.Size, sizes, "a size"))
	}
	if paramsCol != f.Size && present(paramsCol, paramsAttr) {
		var ps tablefile.Problems
		params, ps = t.Positive(paramsCol, "a parameter count")
		problems(paramsAttr, ps)
		problems(paramsAttr, missingValues(t, paramsCol, params, "a parameter count"))
	} else if paramsCol == f.Size {
		params = sizes
	}
	if params != nil {
		rep := tablefile.NewReport(t)
		for r, v := range params {
			if v > 0 && v < 0.5 || v >= 1<<62 {
				rep.Add(r, paramsCol, "Parameter count out of range", fmt.Sprintf("the value is %g; a parameter count is at least 1 and below 2^62.", v))
			}
		}
		problems(paramsAttr, rep.Problems())
	}
	if f.FLOPsCol != "" && present(f.FLOPsCol, "flops_column") {
		var ps tablefile.Problems
		flops, ps = t.Numbers(f.FLOPsCol)
		rep := tablefile.NewReport(t)
		rep.Extend(ps)
		for r, v := range flops {
			if v < 0 || v >= 1<<62 {
				rep.Add(r, f.FLOPsCol, "FLOPs out of range", fmt.Sprintf("the value is %g; a FLOP count is at least 0 and below 2^62.", v))
			}
		}
		problems("flops_column", rep.Problems())
	}
	var groups []string
	if f.Group != "" && present(f.Group, "group") {
		texts, ps := t.Texts(f.Group)
		problems("group", ps)
		if texts != nil {
			groups = make([]string, t.Rows)
			rep := tablefile.NewReport(t)
			for r := range groups {
				groups[r] = t.Column(f.Group).Text(r)
				if groups[r] == "" {
					rep.Add(r, f.Group, "Missing group", "the row has no group; every model belongs to a family.")
				}
			}
			problems("group", rep.Problems())
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}

	family := f.Name
	if family == "" {
		base := filepath.Base(file)
		base = strings.TrimSuffix(base, ".gz")
		family = strings.TrimSuffix(base, filepath.Ext(base))
	}
	// Every other column is a knob.
	var knobCols []*tablefile.Column
	seenCol := map[string]bool{}
	for _, n := range t.Names {
		if n != nameCol && n != f.Group && !seenCol[n] {
			knobCols = append(knobCols, t.Column(n))
		}
		seenCol[n] = true
	}
	byGroup := map[string][]tables.Candidate{}
	var order []string
	for r := range t.Rows {
		name := t.Column(nameCol).Text(r)
		if names[name] != r {
			continue // a duplicate: reported above
		}
		group := family
		if groups != nil {
			group = groups[r]
		}
		knobs := tables.Knobs{}
		for _, c := range knobCols {
			switch {
			case c.IsText():
				s := c.Text(r)
				if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
					knobs[c.Name] = v
				} else {
					knobs[c.Name] = s
				}
			default:
				if v, ok := c.Number(r); ok && !math.IsInf(v, 0) {
					knobs[c.Name] = v
				}
			}
		}
		var fl float64
		if flops != nil && !math.IsNaN(flops[r]) {
			fl = flops[r]
		}
		c := tables.Candidate{
			ID: name, Name: name, Family: group, Kind: tables.KindTable, Size: sizes[r],
			Params: int64(math.Round(params[r])), FLOPs: int64(math.Round(fl)), Knobs: knobs,
			LearningRate: hp.learningRate, BatchSize: int32(hp.batchSize), Epochs: int32(hp.epochs),
			Preprocess: tables.None, Quantize: tables.None,
		}
		if _, ok := byGroup[group]; !ok {
			order = append(order, group)
		}
		byGroup[group] = append(byGroup[group], c)
	}
	out := make([][]tables.Candidate, 0, len(order))
	for _, g := range order {
		sortSpace(byGroup[g])
		out = append(out, byGroup[g])
	}
	return out, nil
}

// missingValues reports the null cells of a column every model needs.
func missingValues(t *tablefile.Table, column string, nums []float64, what string) tablefile.Problems {
	rep := tablefile.NewReport(t)
	for r, v := range nums {
		if math.IsNaN(v) && t.Column(column).NullNumber(r) {
			rep.Add(r, column, "Missing value", fmt.Sprintf("the row has no value here, and every model needs %s.", what))
		}
	}
	return rep.Problems()
}

// sentence ends a message with a full stop.
func sentence(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}
