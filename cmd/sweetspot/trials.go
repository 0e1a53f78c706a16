package main

import (
	"cmp"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/pipeline/report"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// modelRef is a model as the CLI names it: its name, family and real
// parameter count (-1 when unknown).
type modelRef struct {
	name, family string
	params       int64
}

func (m modelRef) String() string {
	params := float64(m.params)
	if m.params <= 0 {
		params = -1
	}
	return report.DescribeModel(m.name, m.family, params)
}

// models are the models of a run's results tables by candidate id, for the
// decisions, which name the chosen one by id.
type models map[string]modelRef

// named returns the model of a candidate id, or one named by the id.
func (ms models) named(id string) modelRef {
	if m, ok := ms[id]; ok {
		return m
	}
	return modelRef{name: id, params: -1}
}

// trialColumns are the results-table columns shown after a trial's model,
// in order; absent ones are skipped.
var trialColumns = []struct{ name, header string }{
	{tables.ColAccuracy, "ACCURACY"},
	{tables.ColRMSE, "RMSE"},
	{tables.ColLatencyP95Ms, "P95 MS"},
	{tables.ColModelBytes, "BYTES"},
	{tables.ColTrainSeconds, "TRAIN S"},
	{tables.ColStatus, "STATUS"},
}

// shownTrial is one trial as printed.
type shownTrial struct {
	round, params int64
	chosen        bool
	id, name      string
	family        string
	cells         []string // trialColumns', "-" when absent
	// setting is the search setting the trial tried ("" without a
	// search); outranked marks one its search did not choose for the
	// size (tables.Result.Outranked).
	setting   string
	outranked bool
}

// printTrials prints every row of each stage's "results" port (the
// evaluation stage's contract), all rounds, marking the chosen candidate:
// each model by its name and family, with its parameter count written
// readably (35.69M). A results table written before the name column names
// a model by its candidate id. It returns the models it read.
func printTrials(w io.Writer, run *runstore.Run, m *runstore.Manifest) (models, error) {
	chosen := ""
	if m.Decision != nil {
		chosen = m.Decision.Chosen
	}
	ms := models{}
	for _, s := range m.Stages {
		var paths []string
		for _, f := range s.Outputs {
			if f.Port == "results" {
				paths = append(paths, run.Path(f.Path))
			}
		}
		if len(paths) == 0 {
			continue
		}
		rows, schema, err := readShownTrials(paths)
		if err != nil {
			return ms, err
		}
		for _, r := range rows {
			r.chosen = r.id != "" && r.id == chosen && !r.outranked
			ms[r.id] = modelRef{name: r.name, family: r.family, params: r.params}
		}
		// Trials finish in any order; show them by round, then size.
		sort.SliceStable(rows, func(i, j int) bool {
			if rows[i].round != rows[j].round {
				return rows[i].round < rows[j].round
			}
			return rows[i].params < rows[j].params
		})
		has := func(col string) bool { return len(schema.FieldIndices(col)) > 0 }
		// The id tells a model's quantized and pruned variants apart.
		variants, settings := false, false
		for _, r := range rows {
			variants = variants || r.id != r.name
			settings = settings || r.setting != ""
		}
		fmt.Fprintf(w, "\ntrials of %s:\n", s.Addr)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		head := []string{" ", "ROUND", "MODEL"}
		if variants {
			head = append(head, "CANDIDATE")
		}
		if has(tables.ColFamily) {
			head = append(head, "FAMILY")
		}
		head = append(head, "PARAMS")
		var shown []int
		for i, c := range trialColumns {
			if has(c.name) {
				shown = append(shown, i)
				head = append(head, c.header)
			}
		}
		if settings {
			head = append(head, "SETTING")
		}
		fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
		for _, r := range rows {
			mark := " "
			if r.chosen {
				mark = "*"
			}
			line := []string{mark, strconv.FormatInt(r.round, 10), r.name}
			if variants {
				line = append(line, r.id)
			}
			if has(tables.ColFamily) {
				line = append(line, cmp.Or(r.family, "-"))
			}
			params := "-"
			if r.params >= 0 {
				params = report.FormatParams(float64(r.params))
			}
			line = append(line, params)
			for _, i := range shown {
				line = append(line, r.cells[i])
			}
			if settings {
				switch {
				case r.setting == "":
					line = append(line, "-")
				case r.outranked:
					line = append(line, r.setting+" (outranked)")
				default:
					line = append(line, r.setting)
				}
			}
			fmt.Fprintln(tw, strings.Join(line, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return ms, err
		}
	}
	return ms, nil
}

// readShownTrials reads the trials of one stage's results files.
func readShownTrials(paths []string) ([]*shownTrial, *arrow.Schema, error) {
	rd, err := runstore.OpenFiles(paths, nil)
	if err != nil {
		return nil, nil, err
	}
	defer rd.Release()
	var rows []*shownTrial
	for rd.Next() {
		b := rd.RecordBatch()
		for row := 0; row < int(b.NumRows()); row++ {
			r := &shownTrial{
				id:     text(b, tables.ColCandidateID, row),
				name:   text(b, tables.ColName, row),
				family: text(b, tables.ColFamily, row),
				params: integer(b, tables.ColParams, row),
				round:  max(integer(b, tables.ColRound, row), 0),
			}
			// A table written before the name column: the id names the
			// model.
			r.name = cmp.Or(r.name, r.id, "-")
			r.setting = text(b, tables.ColSetting, row)
			if r.setting != "" {
				idx := b.Schema().FieldIndices(tables.ColSettingChosen)
				chosen := len(idx) > 0 && b.Column(idx[0]).IsValid(row)
				if chosen {
					c, ok := b.Column(idx[0]).(*array.Boolean)
					chosen = ok && c.Value(row)
				}
				r.outranked = !chosen
			}
			for _, c := range trialColumns {
				r.cells = append(r.cells, cell(b, c.name, row))
			}
			rows = append(rows, r)
		}
	}
	if err := rd.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", filepath.Base(paths[0]), err)
	}
	return rows, rd.Schema(), nil
}

// text is a string cell, "" for null or missing.
func text(b arrow.RecordBatch, column string, row int) string {
	idx := b.Schema().FieldIndices(column)
	if len(idx) == 0 {
		return ""
	}
	if c, ok := b.Column(idx[0]).(*array.String); ok && c.IsValid(row) {
		return c.Value(row)
	}
	return ""
}

// integer is an integer cell, -1 for null or missing.
func integer(b arrow.RecordBatch, column string, row int) int64 {
	idx := b.Schema().FieldIndices(column)
	if len(idx) == 0 || b.Column(idx[0]).IsNull(row) {
		return -1
	}
	switch c := b.Column(idx[0]).(type) {
	case *array.Int64:
		return c.Value(row)
	case *array.Int32:
		return int64(c.Value(row))
	case *array.Float64:
		return int64(c.Value(row))
	}
	return -1
}

// cell formats one value for a table; "-" for null or missing.
func cell(b arrow.RecordBatch, column string, row int) string {
	idx := b.Schema().FieldIndices(column)
	if len(idx) == 0 {
		return "-"
	}
	col := b.Column(idx[0])
	if col.IsNull(row) {
		return "-"
	}
	switch c := col.(type) {
	case *array.String:
		return c.Value(row)
	case *array.Int64:
		return strconv.FormatInt(c.Value(row), 10)
	case *array.Int32:
		return strconv.FormatInt(int64(c.Value(row)), 10)
	case *array.Float64:
		v := c.Value(row)
		switch {
		case v != 0 && (v < 0.001 && v > -0.001):
			return strconv.FormatFloat(v, 'e', 2, 64)
		case v >= 100 || v <= -100:
			return strconv.FormatFloat(v, 'f', 1, 64)
		default:
			return strconv.FormatFloat(v, 'f', 4, 64)
		}
	default:
		return col.ValueStr(row)
	}
}

// printDecisions prints each round's row of every "decision" port (the
// resize stage's contract): status, the chosen model by name, family and
// parameter count, and the reason in words. A decision written before the
// chosen_name column is named from ms by its chosen_candidate_id; the
// models it names are added to ms.
func printDecisions(w io.Writer, run *runstore.Run, m *runstore.Manifest, ms models) error {
	for _, s := range m.Stages {
		for _, f := range s.Outputs {
			if f.Port != "decision" {
				continue
			}
			rd, err := runstore.OpenFiles([]string{run.Path(f.Path)}, nil)
			if err != nil {
				return err
			}
			for rd.Next() {
				b := rd.RecordBatch()
				for row := 0; row < int(b.NumRows()); row++ {
					fmt.Fprintf(w, "\n%s round %d: %s", s.Addr, f.Round, cell(b, tables.ColStatus, row))
					if c, ok := chosenOf(b, row, ms); ok {
						fmt.Fprintf(w, ", chosen %s", c)
					}
					fmt.Fprintf(w, "\n  %s\n", cell(b, tables.ColReason, row))
				}
			}
			err = rd.Err()
			rd.Release()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// chosenOf is the model a decision row chose, as the report names it: by
// the decision's chosen_name and chosen_family, else as its results row
// does, else by its id; its parameter count is the results row's, else
// the decision's. ok is false when the row chose none.
func chosenOf(b arrow.RecordBatch, row int, ms models) (modelRef, bool) {
	id, name := text(b, tables.ColChosenCandidateID, row), text(b, tables.ColChosenName, row)
	if id == "" && name == "" {
		return modelRef{}, false
	}
	c := modelRef{name: name, family: text(b, tables.ColChosenFamily, row), params: integer(b, tables.ColChosenParams, row)}
	if r, known := ms[id]; known {
		c.name, c.family = cmp.Or(c.name, r.name), cmp.Or(c.family, r.family)
		if r.params > 0 {
			c.params = r.params
		}
	}
	c.name = cmp.Or(c.name, id)
	if _, known := ms[id]; !known && id != "" {
		ms[id] = c
	}
	return c, true
}
