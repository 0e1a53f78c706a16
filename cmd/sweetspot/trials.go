package main

import (
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"text/tabwriter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// trialColumns are the results-table columns shown at the end of a run,
// in order; absent ones are skipped.
var trialColumns = []struct{ name, header string }{
	{"round", "ROUND"},
	{"candidate_id", "CANDIDATE"},
	{"params", "PARAMS"},
	{"accuracy", "ACCURACY"},
	{"rmse", "RMSE"},
	{"latency_p95_ms", "P95 MS"},
	{"model_bytes", "BYTES"},
	{"train_seconds", "TRAIN S"},
	{"status", "STATUS"},
}

// printTrials prints every row of each stage's "results" port (the
// evaluation stage's contract), all rounds, marking the chosen candidate.
func printTrials(w io.Writer, run *runstore.Run, m *runstore.Manifest) error {
	chosen := ""
	if m.Decision != nil {
		chosen = m.Decision.Chosen
	}
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
		rd, err := runstore.OpenFiles(paths, nil)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\ntrials of %s:\n", s.Addr)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		var cols []int
		schema := rd.Schema()
		line := " \t"
		for i, c := range trialColumns {
			if len(schema.FieldIndices(c.name)) > 0 {
				cols = append(cols, i)
				line += c.header + "\t"
			}
		}
		fmt.Fprintln(tw, line)
		// Trials finish in any order; show them by round, then size.
		type trialRow struct {
			round, params int64
			line          string
		}
		var rows []trialRow
		for rd.Next() {
			b := rd.RecordBatch()
			for row := 0; row < int(b.NumRows()); row++ {
				mark := " "
				if id := cell(b, "candidate_id", row); id != "" && id == chosen {
					mark = "*"
				}
				line := mark + "\t"
				for _, i := range cols {
					line += cell(b, trialColumns[i].name, row) + "\t"
				}
				r, _ := strconv.ParseInt(cell(b, "round", row), 10, 64)
				n, _ := strconv.ParseInt(cell(b, "params", row), 10, 64)
				rows = append(rows, trialRow{r, n, line})
			}
		}
		sort.SliceStable(rows, func(i, j int) bool {
			if rows[i].round != rows[j].round {
				return rows[i].round < rows[j].round
			}
			return rows[i].params < rows[j].params
		})
		for _, r := range rows {
			fmt.Fprintln(tw, r.line)
		}
		err = rd.Err()
		rd.Release()
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Base(paths[0]), err)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
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
// resize stage's contract): status, choice and the reason in words.
func printDecisions(w io.Writer, run *runstore.Run, m *runstore.Manifest) error {
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
					fmt.Fprintf(w, "\n%s round %d: %s", s.Addr, f.Round, cell(b, "status", row))
					if c := cell(b, "chosen_candidate_id", row); c != "-" && c != "" {
						fmt.Fprintf(w, " (%s)", c)
					}
					fmt.Fprintf(w, "\n  %s\n", cell(b, "reason", row))
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
