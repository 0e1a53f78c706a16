// Package zootruth reads the model zoo table (examples/zoo/zoo.csv) and
// answers, by brute force over every row, which model is the smallest to
// meet an accuracy target (and optionally a latency limit). It is the
// ground truth a search over the table is checked against, and is written
// independently of the program that builds the table.
//
// "Smallest" is by Params, the table's param_count column: the number of
// nonzero parameters for pruned models, the dense count for the others.
// Ties are broken by Name, so every answer is unique.
package zootruth

import (
	"cmp"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
)

// Row is one model of the zoo, with the columns a search is judged on.
type Row struct {
	Name         string
	Family       string
	Params       int64
	Accuracy     float64
	LatencyP95Ms float64
}

// Answer is the smallest meeting row and the next one in the same order
// (nil when there is none).
type Answer struct {
	First, Second *Row
}

// columns are the header names Load needs; any other column is ignored.
var columns = []string{"name", "family", "param_count", "accuracy", "latency_p95_ms"}

// Load reads a zoo table: a CSV file whose header names at least the
// columns name, family, param_count, accuracy and latency_p95_ms, in any
// order. Every row must have a name, a family, an integer param_count and
// numeric accuracy and latency; names must be unique.
func Load(path string) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// Read reads a zoo table from r; see Load.
func Read(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty file: no header")
	}
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	for i, h := range header {
		if _, dup := idx[h]; dup {
			return nil, fmt.Errorf("column %q appears twice in the header", h)
		}
		idx[h] = i
	}
	for _, c := range columns {
		if _, ok := idx[c]; !ok {
			return nil, fmt.Errorf("no column %q in the header", c)
		}
	}
	var rows []Row
	seen := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		field := func(name string) string { return rec[idx[name]] }
		row := Row{Name: field("name"), Family: field("family")}
		if row.Name == "" || row.Family == "" {
			return nil, fmt.Errorf("line %d: empty name or family", line)
		}
		if prev, dup := seen[row.Name]; dup {
			return nil, fmt.Errorf("line %d: name %q already used on line %d", line, row.Name, prev)
		}
		seen[row.Name] = line
		if row.Params, err = strconv.ParseInt(field("param_count"), 10, 64); err != nil {
			return nil, fmt.Errorf("line %d: param_count: %w", line, err)
		}
		if row.Accuracy, err = strconv.ParseFloat(field("accuracy"), 64); err != nil {
			return nil, fmt.Errorf("line %d: accuracy: %w", line, err)
		}
		if row.LatencyP95Ms, err = strconv.ParseFloat(field("latency_p95_ms"), 64); err != nil {
			return nil, fmt.Errorf("line %d: latency_p95_ms: %w", line, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// Meets reports whether a row reaches minAccuracy and, when maxLatencyMs
// is above 0, has a p95 latency of at most maxLatencyMs.
func Meets(r Row, minAccuracy, maxLatencyMs float64) bool {
	return r.Accuracy >= minAccuracy && (maxLatencyMs <= 0 || r.LatencyP95Ms <= maxLatencyMs)
}

// order sorts by Params, then Name.
func order(a, b Row) int {
	return cmp.Or(cmp.Compare(a.Params, b.Params), cmp.Compare(a.Name, b.Name))
}

// SmallestMeeting returns, over every family, the row with the fewest
// Params that meets the target (see Meets), ties broken by Name, and the
// meeting row that comes right after it in that order: the next larger
// one, or one of the same size whose name sorts later. Either is nil when
// there is no such row. maxLatencyMs <= 0 sets no latency limit. The rows
// returned are copies.
func SmallestMeeting(rows []Row, minAccuracy float64, maxLatencyMs float64) (first, second *Row) {
	var meeting []Row
	for _, r := range rows {
		if Meets(r, minAccuracy, maxLatencyMs) {
			meeting = append(meeting, r)
		}
	}
	slices.SortFunc(meeting, order)
	if len(meeting) > 0 {
		first = &meeting[0]
	}
	if len(meeting) > 1 {
		second = &meeting[1]
	}
	return first, second
}

// SmallestMeetingIn is SmallestMeeting over the rows of one family.
func SmallestMeetingIn(rows []Row, family string, minAccuracy float64, maxLatencyMs float64) (first, second *Row) {
	var in []Row
	for _, r := range rows {
		if r.Family == family {
			in = append(in, r)
		}
	}
	return SmallestMeeting(in, minAccuracy, maxLatencyMs)
}

// PerFamily returns SmallestMeeting within each family of the rows, keyed
// by family. Every family present in rows has an entry, with nil rows when
// none of its models meets the target.
func PerFamily(rows []Row, minAccuracy float64, maxLatencyMs float64) map[string]Answer {
	out := map[string]Answer{}
	for _, f := range Families(rows) {
		first, second := SmallestMeetingIn(rows, f, minAccuracy, maxLatencyMs)
		out[f] = Answer{First: first, Second: second}
	}
	return out
}

// Families returns the distinct families of the rows, sorted.
func Families(rows []Row) []string {
	var fs []string
	for _, r := range rows {
		if !slices.Contains(fs, r.Family) {
			fs = append(fs, r.Family)
		}
	}
	slices.Sort(fs)
	return fs
}
