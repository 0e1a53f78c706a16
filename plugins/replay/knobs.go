package replay

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/tablefile"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// knobIndex finds rows by the values of some knobs: the table's columns of
// the same names.
type knobIndex struct {
	names []string // the knobs, sorted
	kinds []byte   // per knob: 'n' number, 's' string, 'b' bool
	cols  []*tablefile.Column
	rows  map[string][]int // joined spelled values -> rows, in order
	n     int              // the table's rows
	// err says why the table cannot serve these knobs ("" when it can).
	err string
}

// knobSignature names a candidate's knobs and their types, which decide
// how the table's cells are compared.
func knobSignature(k tables.Knobs) (names []string, kinds []byte, sig string) {
	names = slices.Sorted(maps.Keys(k))
	kinds = make([]byte, len(names))
	var b strings.Builder
	for i, n := range names {
		switch k[n].(type) {
		case float64:
			kinds[i] = 'n'
		case bool:
			kinds[i] = 'b'
		default:
			kinds[i] = 's'
		}
		fmt.Fprintf(&b, "%s\x1f%c\x1e", n, kinds[i])
	}
	return names, kinds, b.String()
}

// spellKnob spells a knob's value as a cell compared with it is spelled.
func spellKnob(v any, bits int) string {
	switch v := v.(type) {
	case float64:
		return "n:" + canonical(v, bits)
	case bool:
		return "b:" + strconv.FormatBool(v)
	case string:
		return "s:" + strings.TrimSpace(v)
	}
	return "?"
}

// spellCell spells a cell for comparison with a knob of a kind: numbers as
// numbers (64 and 64.0 are equal), text as text, booleans as true/false
// (or 1/0). A cell that cannot equal such a knob is spelled apart.
func spellCell(c *tablefile.Column, row int, kind byte) string {
	if c.Null(row) {
		return "\x00null"
	}
	switch kind {
	case 'n':
		if v, ok := c.Number(row); ok {
			return "n:" + canonical(v, c.Bits)
		}
	case 'b':
		if c.IsText() {
			switch strings.ToLower(c.Text(row)) {
			case "true", "1":
				return "b:true"
			case "false", "0":
				return "b:false"
			}
		} else if v, ok := c.Number(row); ok && (v == 0 || v == 1) {
			return "b:" + strconv.FormatBool(v == 1)
		}
	case 's':
		if c.IsText() {
			return "s:" + c.Text(row)
		}
		if v, ok := c.Number(row); ok {
			return "s:" + canonical(v, 64)
		}
	}
	return "\x00other"
}

// knobIndexFor prepares the lookup of candidates with c's knobs, once.
func (ix *index) knobIndexFor(c tables.Candidate) *knobIndex {
	names, kinds, sig := knobSignature(c.Knobs)
	ix.knobsMu.Lock()
	defer ix.knobsMu.Unlock()
	if ki, ok := ix.knobs[sig]; ok {
		return ki
	}
	ki := &knobIndex{names: names, kinds: kinds, rows: map[string][]int{}, n: ix.t.Rows}
	ix.knobs[sig] = ki
	var missing []string
	for _, n := range names {
		col := ix.t.Column(n)
		if col == nil || col.Dup {
			missing = append(missing, n)
		}
		ki.cols = append(ki.cols, col)
	}
	switch {
	case len(names) == 0:
		ki.err = "it has no knobs to look up"
		return ki
	case len(missing) > 0:
		ki.err = fmt.Sprintf("%s has no column (or two) for its knob %s; an axis model is found by the columns named as its knobs. Its columns are: %s", ix.t.Path, strings.Join(missing, ", "), strings.Join(ix.t.Names, ", "))
		return ki
	}
	for r := range ix.t.Rows {
		key := ki.rowKey(r)
		ki.rows[key] = append(ki.rows[key], r)
	}
	return ki
}

func (ki *knobIndex) rowKey(r int) string {
	parts := make([]string, len(ki.cols))
	for i, col := range ki.cols {
		parts[i] = spellCell(col, r, ki.kinds[i])
	}
	return strings.Join(parts, "\x1f")
}

func (ki *knobIndex) candKey(c tables.Candidate) string {
	parts := make([]string, len(ki.cols))
	for i, n := range ki.names {
		parts[i] = spellKnob(c.Knobs[n], ki.cols[i].Bits)
	}
	return strings.Join(parts, "\x1f")
}

// describe spells a candidate's knobs: s=8, d_model=512.
func (ki *knobIndex) describe(c tables.Candidate) string {
	parts := make([]string, len(ki.names))
	for i, n := range ki.names {
		parts[i] = fmt.Sprintf("%s=%v", n, c.Knobs[n])
	}
	return strings.Join(parts, ", ")
}

func (ki *knobIndex) describeRow(r int) string {
	parts := make([]string, len(ki.names))
	for i, n := range ki.names {
		v := ki.cols[i].Text(r)
		if !ki.cols[i].IsText() {
			if x, ok := ki.cols[i].Number(r); ok {
				v = canonical(x, 64)
			}
		}
		parts[i] = n + "=" + v
	}
	return strings.Join(parts, ", ")
}

// byKnobs finds an axis model: the row whose columns equal each of its
// knobs. When several do, the family column (when the table has one)
// picks the candidate's family.
func (ix *index) byKnobs(c tables.Candidate) (hit, bool, string, string) {
	ki := ix.knobIndexFor(c)
	if ki.err != "" {
		return hit{}, false, "knobs", fmt.Sprintf("candidate %s (family %s, kind axis) is looked up by its knobs, and %s", c.ID, c.Family, ki.err)
	}
	rows := ki.rows[ki.candKey(c)]
	if len(rows) > 1 {
		fam := ix.t.Column(tables.ColFamily)
		if tn, ok := ix.columns[tables.ColFamily]; ok {
			fam = ix.t.Column(tn)
		}
		if fam != nil && fam.IsText() {
			same := slices.DeleteFunc(slices.Clone(rows), func(r int) bool { return fam.Text(r) != c.Family })
			if len(same) > 0 {
				rows = same
			}
		}
	}
	if sorted, ok := ix.asRepeats(rows); ok && len(rows) > 1 {
		return hit{row: slices.Min(sorted), lo: -1, hi: -1, match: matchKnobs, rows: sorted}, true, "", ""
	}
	switch len(rows) {
	case 1:
		return hit{row: rows[0], lo: -1, hi: -1, match: matchKnobs}, true, "", ""
	case 0:
		var b strings.Builder
		fmt.Fprintf(&b, "no row of %s has the knobs of candidate %s (family %s): %s", ix.t.Path, c.ID, c.Family, ki.describe(c))
		if near := ki.nearest(c, 5); len(near) > 0 {
			descr := make([]string, len(near))
			for i, r := range near {
				descr[i] = fmt.Sprintf("(%s on %s)", ki.describeRow(r), ix.t.Where(r))
			}
			fmt.Fprintf(&b, "; nearest: %s", strings.Join(descr, ", "))
		}
		b.WriteString("; an axis model the table lacks is never invented")
		return hit{}, false, "knobs", b.String()
	}
	where := make([]string, 0, 4)
	for _, r := range rows[:min(4, len(rows))] {
		where = append(where, ix.t.Where(r))
	}
	return hit{}, false, "knobs", fmt.Sprintf("%d rows of %s have the knobs of candidate %s (%s): %s; a lookup must find one row, so give the table a family column naming %s, or keep one row per model", len(rows), ix.t.Path, c.ID, ki.describe(c), strings.Join(where, ", "), c.Family)
}

// nearest lists up to n rows nearest a candidate's knobs: fewest knobs
// differing, then closest in the numeric ones (in doublings).
func (ki *knobIndex) nearest(c tables.Candidate, n int) []int {
	type scored struct {
		row, diff int
		gap       float64
	}
	var all []scored
	for r := range ki.n {
		s := scored{row: r}
		for i, name := range ki.names {
			if spellCell(ki.cols[i], r, ki.kinds[i]) == spellKnob(c.Knobs[name], ki.cols[i].Bits) {
				continue
			}
			s.diff++
			if v, ok := c.Knobs.Number(name); ok {
				if x, ok := ki.cols[i].Number(r); ok {
					s.gap += logGap(v, x)
				} else {
					s.gap += math.Inf(1)
				}
			}
		}
		all = append(all, s)
	}
	slices.SortStableFunc(all, func(a, b scored) int { return cmp.Or(cmp.Compare(a.diff, b.diff), cmp.Compare(a.gap, b.gap)) })
	out := make([]int, 0, n)
	for _, s := range all[:min(n, len(all))] {
		out = append(out, s.row)
	}
	return out
}
