package tablefile

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// MaxListed bounds the rows a Problem lists; it counts the others.
const MaxListed = 4

// Problem is one kind of mistake in one column of a table (or in whole
// lines, or in the header), found on one or more rows. Its Error names
// the file and the first line (or row) and column, says what is wrong
// there and how to fix it, and lists the other lines:
//
//	zoo.csv:4: column "latency_p95_ms": "1,014.45" is written with thousands
//	separators, which a number in a table must not have: remove them
//	(1014.45). Also on lines 7 and 9.
type Problem struct {
	// Summary is a short capitalised phrase ("Thousands separators in a
	// number"), the same for every row of the problem.
	Summary string
	Path    string
	// Column is the column at fault; "" for a problem of whole lines.
	Column string
	// Rows are the data rows at fault (0-based), in order, at most
	// MaxListed; -1 for a problem of the header or of a line that is not
	// a row (a ragged one). Lines are their lines in a text file (0 in
	// Parquet and Arrow).
	Rows  []int
	Lines []int
	// Count is how many rows are at fault in all.
	Count int
	// Detail says what is wrong on the first row and how to fix it, in
	// sentences.
	Detail string
}

func (p *Problem) Error() string {
	var b strings.Builder
	b.WriteString(p.Path)
	switch {
	case len(p.Lines) > 0 && p.Lines[0] > 0:
		fmt.Fprintf(&b, ":%d", p.Lines[0])
	case len(p.Rows) > 0 && p.Rows[0] >= 0:
		fmt.Fprintf(&b, ", row %d", p.Rows[0])
	}
	b.WriteString(": ")
	if p.Column != "" {
		fmt.Fprintf(&b, "column %q: ", p.Column)
	}
	b.WriteString(p.Detail)
	if p.Count > 1 {
		var other []string
		unit := "rows"
		for i := 1; i < len(p.Rows); i++ {
			switch {
			case p.Lines[i] > 0:
				other = append(other, strconv.Itoa(p.Lines[i]))
				unit = "lines"
			case p.Rows[i] >= 0:
				other = append(other, strconv.Itoa(p.Rows[i]))
			}
		}
		if more := p.Count - len(p.Rows); more > 0 {
			other = append(other, fmt.Sprintf("%d more", more))
		}
		if len(other) == 1 && p.Count == len(p.Rows) {
			unit = strings.TrimSuffix(unit, "s")
		}
		if len(other) > 0 {
			if !strings.HasSuffix(p.Detail, ".") {
				b.WriteByte('.')
			}
			fmt.Fprintf(&b, " Also on %s %s.", unit, joinAnd(other))
		}
	}
	return b.String()
}

func joinAnd(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// Problems are a table's problems, one per column and kind of mistake.
type Problems []*Problem

func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

// Report collects a table's problems: rows with the same mistake in the
// same column make one Problem.
type Report struct {
	t *Table
	report
}

type report struct {
	list Problems
	by   map[string]*Problem
}

// NewReport returns an empty report of t's problems.
func NewReport(t *Table) *Report { return &Report{t: t} }

// Add records a mistake on a data row. The detail (what is wrong and the
// fix, in sentences) is kept for the first row of a column and summary;
// later rows are listed.
func (r *Report) Add(row int, column, summary, detail string) {
	r.add(r.t.Path, row, r.t.Line(row), column, summary, detail)
}

// AddHeader records a mistake of the header or of a whole column, such as
// a column that is missing.
func (r *Report) AddHeader(column, summary, detail string) {
	r.add(r.t.Path, -1, r.t.HeaderLine, column, summary, detail)
}

// Extend adds problems found elsewhere (Numbers', say).
func (r *Report) Extend(ps Problems) {
	for _, p := range ps {
		if r.by == nil {
			r.by = map[string]*Problem{}
		}
		r.by[p.Column+"\x00"+p.Summary] = p
		r.list = append(r.list, p)
	}
}

// Problems returns the problems recorded, in the order first found.
func (r *Report) Problems() Problems { return r.list }

func (r *report) add(path string, row, line int, column, summary, detail string) {
	if r.by == nil {
		r.by = map[string]*Problem{}
	}
	key := column + "\x00" + summary
	p, ok := r.by[key]
	if !ok {
		p = &Problem{Summary: summary, Path: path, Column: column, Detail: detail}
		r.by[key] = p
		r.list = append(r.list, p)
	}
	p.Count++
	if len(p.Rows) < MaxListed {
		p.Rows = append(p.Rows, row)
		p.Lines = append(p.Lines, line)
	}
}

// isNullText reports whether a text cell is a null number.
func isNullText(s string) bool {
	switch strings.ToLower(s) {
	case "", "na", "n/a", "nan", "null", "none":
		return true
	}
	return false
}

// parseNumber parses a text cell as a number; null text is NaN.
func parseNumber(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if isNullText(s) {
		return math.NaN(), nil
	}
	return strconv.ParseFloat(s, 64)
}

var (
	// 1,014.45  12,000  1'000  1 000 (plain, no-break or thin spaces)
	thousands = regexp.MustCompile(`^[+-]?\d{1,3}([,'_ \x{00a0}\x{202f}]\d{3})+(\.\d*)?$`)
	// 1.014,45  0,95
	decimalComma = regexp.MustCompile(`^[+-]?(\d{1,3}(\.\d{3})+|\d+),\d+$`)
	// A field of up to three digits followed by one that starts with three
	// digits: a number split at its thousands separator.
	splitHead = regexp.MustCompile(`^\s*[+-]?\d{1,3}$`)
	splitTail = regexp.MustCompile(`^\d{3}(\.\d*)?\s*$`)
)

// splitNumber reports whether a CSV record looks like one whose number was
// split at a thousands separator.
func splitNumber(rec []string) bool {
	for i := 0; i+1 < len(rec); i++ {
		if splitHead.MatchString(rec[i]) && splitTail.MatchString(rec[i+1]) {
			return true
		}
	}
	return false
}

// numberProblem explains why a text cell is not a number: summary and
// detail.
func numberProblem(s string) (string, string) {
	s = strings.TrimSpace(s)
	switch {
	case thousands.MatchString(s):
		fixed := strings.Map(func(r rune) rune {
			if r == ',' || r == '\'' || r == '_' || r == ' ' || r == '\u00a0' || r == '\u202f' {
				return -1
			}
			return r
		}, s)
		return "Thousands separators in a number", fmt.Sprintf("%q is written with thousands separators, which a number in a table must not have: remove them (%s).", s, fixed)
	case decimalComma.MatchString(s):
		fixed := strings.ReplaceAll(strings.ReplaceAll(s, ".", ""), ",", ".")
		return "Decimal comma in a number", fmt.Sprintf("%q is written with a decimal comma: write a decimal point, without thousands separators (%s).", s, fixed)
	case strings.HasSuffix(s, "%"):
		if _, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64); err == nil {
			return "Percent sign in a number", fmt.Sprintf("%q has a percent sign: write the number alone.", s)
		}
	}
	return "Not a number", fmt.Sprintf("%q is not a number.", s)
}

// Numbers returns a column's values as numbers, NaN for null (an empty
// cell, NA, N/A, NaN, null or none in a text file). Every cell that is not
// a finite number is a Problem, and NaN in the result: thousands
// separators, a decimal comma and a percent sign are named as such, with
// the fix. A missing column, or one of another type, is a problem of the
// header.
func (t *Table) Numbers(name string) ([]float64, Problems) {
	c := t.cols[name]
	r := NewReport(t)
	switch {
	case c == nil:
		r.AddHeader(name, "No such column", fmt.Sprintf("the table has no column %q.", name))
		return nil, r.Problems()
	case c.text == nil && c.nums == nil:
		r.AddHeader(name, "Column is not numeric", fmt.Sprintf("the column is %s, not numbers.", c.Type))
		return nil, r.Problems()
	case c.text != nil && c.parsed:
		return c.nums, c.problems
	case c.text != nil:
		out := make([]float64, len(c.text))
		for i, s := range c.text {
			v, err := parseNumber(s)
			switch {
			case c.null[i]:
				v = math.NaN()
			case err != nil:
				summary, detail := numberProblem(s)
				r.Add(i, name, summary, detail)
				v = math.NaN()
			case math.IsInf(v, 0):
				r.Add(i, name, "Not a finite number", fmt.Sprintf("%q is not a finite number.", strings.TrimSpace(s)))
				v = math.NaN()
			}
			out[i] = v
		}
		// Parsed once: a later use finds the numbers.
		c.nums, c.parsed, c.problems = out, true, r.Problems()
		return out, c.problems
	}
	for i, v := range c.nums {
		if math.IsInf(v, 0) {
			r.Add(i, name, "Not a finite number", fmt.Sprintf("%g is not a finite number.", v))
		}
	}
	if ps := r.Problems(); len(ps) > 0 {
		out := make([]float64, len(c.nums))
		for i, v := range c.nums {
			if math.IsInf(v, 0) {
				v = math.NaN()
			}
			out[i] = v
		}
		return out, ps
	}
	return c.nums, nil
}

// Texts returns a text column's cells as written (a null is ""). A missing
// column, or one that is not text, is a problem of the header.
func (t *Table) Texts(name string) ([]string, Problems) {
	c := t.cols[name]
	r := NewReport(t)
	switch {
	case c == nil:
		r.AddHeader(name, "No such column", fmt.Sprintf("the table has no column %q.", name))
		return nil, r.Problems()
	case c.text == nil:
		r.AddHeader(name, "Column is not text", fmt.Sprintf("the column is %s, not text.", c.Type))
		return nil, r.Problems()
	}
	return c.text, nil
}

// Unique indexes a text column of names, each trimmed of spaces: name to
// row. An empty name and a name already seen are problems ("name "x" on
// line 12 is already on line 7"); the first row of a name keeps it.
func (t *Table) Unique(name string) (map[string]int, Problems) {
	texts, ps := t.Texts(name)
	if ps != nil {
		return nil, ps
	}
	r := NewReport(t)
	out := make(map[string]int, len(texts))
	for i := range texts {
		n := t.cols[name].Text(i)
		if n == "" {
			r.Add(i, name, "Missing name", "the row has no name; every row needs one.")
			continue
		}
		if prev, dup := out[n]; dup {
			r.Add(i, name, "Duplicate name", fmt.Sprintf("name %q on %s is already on %s; names must be unique.", n, t.Where(i), t.Where(prev)))
			continue
		}
		out[n] = i
	}
	return out, r.Problems()
}

// Positive returns a numeric column (as Numbers) and adds a problem for
// every value that is zero or negative: what names what the column holds
// ("a size", "a parameter count").
func (t *Table) Positive(name, what string) ([]float64, Problems) {
	nums, ps := t.Numbers(name)
	if nums == nil {
		return nil, ps
	}
	r := NewReport(t)
	r.Extend(ps)
	for i, v := range nums {
		if v <= 0 {
			r.Add(i, name, "Value not positive", fmt.Sprintf("the value is %s, and %s must be positive.", canonical(v), what))
		}
	}
	return nums, r.Problems()
}

func canonical(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
