package replay

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Candidate columns compared as text; the others are numbers.
var textCandidateColumns = map[string]bool{"candidate_id": true, "family": true, "preprocess": true, "quantize": true}

// candidateValue returns a candidate's value of a candidates column.
func candidateValue(c tables.Candidate, name string) (text string, num float64) {
	switch name {
	case "candidate_id":
		return c.ID, 0
	case "family":
		return c.Family, 0
	case "preprocess":
		return c.Preprocess, 0
	case "quantize":
		return c.Quantize, 0
	case "round":
		return "", float64(c.Round)
	case "depth":
		return "", float64(c.Depth)
	case "width":
		return "", float64(c.Width)
	case "params":
		return "", float64(c.Params)
	case "flops":
		return "", float64(c.FLOPs)
	case "learning_rate":
		return "", c.LearningRate
	case "batch_size":
		return "", float64(c.BatchSize)
	case "epochs":
		return "", float64(c.Epochs)
	case "prune_fraction":
		return "", c.PruneFraction
	}
	return "", math.NaN()
}

// canonical spells a number so that equal values at the column's precision
// are equal strings: 64 and 64.0 are both "64".
func canonical(v float64, bits int) string {
	if bits == 32 {
		return strconv.FormatFloat(float64(float32(v)), 'g', -1, 32)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// keyColumn is one column of the key, as the table holds it.
type keyColumn struct {
	name  string // the candidates column
	table string // the table column
	text  bool
	bits  int
	// spelled holds every row's value: quoted text or a canonical number.
	spelled []string
	nums    []float64 // numeric keys
}

func (k *keyColumn) spell(c tables.Candidate) string {
	s, v := candidateValue(c, k.name)
	if k.text {
		return strconv.Quote(s)
	}
	return canonical(v, k.bits)
}

// resultColumn is one results column the table provides.
type resultColumn struct {
	name string // the results column
	nums []float64
	text []string
}

// index is a table prepared for lookups.
type index struct {
	t       *table
	keys    []keyColumn
	width   int // position of width in keys, or -1
	results []resultColumn
	exact   map[string]int // joined key -> row
	// status is each row's status ("ok" without a status column).
	status []string
	// along groups the rows that interpolation may use by their key
	// without width, each sorted by width.
	along map[string][]int
}

// The results columns a table may provide: every evaluation column but
// trace_id, which is this stage's.
func resultNames() []string {
	var out []string
	n := len(tables.CandidatesSchema.Fields())
	for _, f := range tables.ResultsSchema.Fields()[n:] {
		if f.Name != "trace_id" {
			out = append(out, f.Name)
		}
	}
	return out
}

var textResultColumns = map[string]bool{"status": true, "error": true, "stopped_by": true}

var statuses = []string{tables.StatusOK, tables.StatusFailed, tables.StatusPruned, tables.StatusInfeasible}

// prepare checks the table against the config and indexes it. Problems
// are config diagnostics: the config names the file and its columns.
func (s *Stage) prepare(t *table) (*index, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	// pathOf is where a column's table name was written: the columns
	// entry when mapped, else the given attribute.
	tableName := func(name string) (string, bool) {
		if m, ok := s.columns[name]; ok {
			return m, true
		}
		return name, false
	}
	find := func(name string, keyPath []string) *column {
		tn, mapped := tableName(name)
		path := keyPath
		if mapped {
			path = []string{"columns", name}
		}
		c, ok := t.cols[tn]
		switch {
		case !ok:
			detail := fmt.Sprintf("%s has no column %q", t.path, tn)
			if !mapped {
				detail += fmt.Sprintf(" for the candidates' %s; if the table names it otherwise, map it: columns = { %s = \"TABLE_COLUMN\" }", name, name)
			}
			bad(path, "No such table column", detail+"."+suggest.Hint(tn, t.names)+" Its columns are: "+strings.Join(t.names, ", ")+".")
			return nil
		case c.dup:
			bad(path, "Ambiguous table column", fmt.Sprintf("%s has two columns named %q.", t.path, tn))
			return nil
		}
		return c
	}

	ix := &index{t: t, width: -1, exact: map[string]int{}, along: map[string][]int{}}
	for i, name := range s.key {
		path := []string{"key", strconv.Itoa(i)}
		c := find(name, path)
		if c == nil {
			continue
		}
		k := keyColumn{name: name, table: c.name, text: textCandidateColumns[name], bits: c.bits, spelled: make([]string, t.rows)}
		if k.text {
			vals, err := t.texts(c)
			if err != nil {
				bad(path, "Key column is not text", fmt.Sprintf("The candidates' %s is text, but in %s %v.", name, t.path, err))
				continue
			}
			for r, v := range vals {
				k.spelled[r] = strconv.Quote(v)
			}
		} else {
			vals, err := t.numbers(c)
			if err != nil {
				bad(path, "Key column is not numeric", fmt.Sprintf("The candidates' %s is a number, but in %s %v.", name, t.path, err))
				continue
			}
			k.nums = vals
			for r, v := range vals {
				k.spelled[r] = canonical(v, k.bits)
			}
		}
		for r := range t.rows {
			if c.null[r] || (!k.text && math.IsNaN(k.nums[r])) {
				bad(path, "Missing key value", fmt.Sprintf("%s, %s has no %s: every row needs a value in each key column.", t.path, t.where(r), c.name))
				break
			}
		}
		if name == "width" {
			ix.width = len(ix.keys)
		}
		ix.keys = append(ix.keys, k)
	}

	quality := false
	for _, name := range resultNames() {
		tn, mapped := tableName(name)
		if _, ok := t.cols[tn]; !ok && !mapped {
			continue // not measured: null, or the documented default
		}
		c := find(name, nil)
		if c == nil {
			continue
		}
		rc := resultColumn{name: name}
		var err error
		if textResultColumns[name] {
			rc.text, err = t.texts(c)
		} else {
			rc.nums, err = t.numbers(c)
		}
		if err != nil {
			bad([]string{"columns", name}, "Unusable table column", fmt.Sprintf("%s: %v.", t.path, err))
			continue
		}
		if name == "accuracy" || name == "loss" || name == "rmse" {
			quality = true
		}
		ix.results = append(ix.results, rc)
	}
	if !quality && !diags.HasErrors() {
		bad([]string{"path"}, "No quality column", fmt.Sprintf("%s has none of accuracy, loss and rmse, so a lookup would measure nothing. If it names its metric otherwise, map it, e.g. columns = { accuracy = \"top1\" }. Its columns are: %s.", t.path, strings.Join(t.names, ", ")))
	}
	if diags.HasErrors() {
		return nil, diags
	}

	ix.status = make([]string, t.rows)
	for r := range ix.status {
		ix.status[r] = tables.StatusOK
	}
	if rc := ix.resultCol("status"); rc != nil {
		for r, v := range rc.text {
			v = strings.TrimSpace(v)
			switch {
			case v == "":
			case slices.Contains(statuses, v):
				ix.status[r] = v
			default:
				tn, _ := tableName("status")
				bad([]string{"path"}, "Unknown trial status", fmt.Sprintf("%s, %s: %s is %q; a status is one of %s.", t.path, t.where(r), tn, v, strings.Join(statuses, ", ")))
				return nil, diags
			}
		}
	}

	for r := range t.rows {
		key := ix.rowKey(r, -1)
		if prev, dup := ix.exact[key]; dup {
			bad([]string{"key"}, "Duplicate key", fmt.Sprintf("%s, %s and %s both hold %s. %s", t.path, t.where(prev), t.where(r), ix.describeRow(r), ix.differing(prev, r)))
			return nil, diags
		}
		ix.exact[key] = r
		if ix.width >= 0 && ix.status[r] == tables.StatusOK && ix.keys[ix.width].nums[r] > 0 {
			other := ix.rowKey(r, ix.width)
			ix.along[other] = append(ix.along[other], r)
		}
	}
	for _, rows := range ix.along {
		w := ix.keys[ix.width].nums
		slices.SortFunc(rows, func(a, b int) int { return cmp.Compare(w[a], w[b]) })
	}
	return ix, nil
}

// differing suggests how to tell two rows with the same key apart.
func (ix *index) differing(a, b int) string {
	var cols []string
	for _, n := range ix.t.names {
		c := ix.t.cols[n]
		if c.dup {
			continue
		}
		switch {
		case c.text != nil:
			if c.text[a] != c.text[b] || c.null[a] != c.null[b] {
				cols = append(cols, n)
			}
		case c.nums != nil:
			if canonical(c.nums[a], 64) != canonical(c.nums[b], 64) {
				cols = append(cols, n)
			}
		}
	}
	var cand []string
	for _, n := range cols {
		if _, ok := tables.CandidatesSchema.FieldsByName(n); ok && !slices.Contains(ixKeyNames(ix), n) {
			cand = append(cand, n)
		}
	}
	if len(cand) > 0 {
		return fmt.Sprintf("Add the candidates columns that tell them apart to key: %s.", strings.Join(cand, ", "))
	}
	return "A lookup must find one row: add the candidates columns that tell such rows apart to key, or keep one row per key in the table."
}

func ixKeyNames(ix *index) []string {
	out := make([]string, len(ix.keys))
	for i, k := range ix.keys {
		out[i] = k.name
	}
	return out
}

func (ix *index) resultCol(name string) *resultColumn {
	for i := range ix.results {
		if ix.results[i].name == name {
			return &ix.results[i]
		}
	}
	return nil
}

// rowKey joins a row's key values, without the key at position skip.
func (ix *index) rowKey(r, skip int) string {
	parts := make([]string, 0, len(ix.keys))
	for i, k := range ix.keys {
		if i != skip {
			parts = append(parts, k.spelled[r])
		}
	}
	return strings.Join(parts, "\x1f")
}

func (ix *index) candKey(c tables.Candidate, skip int) string {
	parts := make([]string, 0, len(ix.keys))
	for i := range ix.keys {
		if i != skip {
			parts = append(parts, ix.keys[i].spell(c))
		}
	}
	return strings.Join(parts, "\x1f")
}

// describeRow spells a row's key: family="mlp", depth=1, width=48.
func (ix *index) describeRow(r int) string {
	parts := make([]string, len(ix.keys))
	for i, k := range ix.keys {
		parts[i] = k.name + "=" + k.spelled[r]
	}
	return strings.Join(parts, ", ")
}

func (ix *index) describeCand(c tables.Candidate) string {
	parts := make([]string, len(ix.keys))
	for i := range ix.keys {
		parts[i] = ix.keys[i].name + "=" + ix.keys[i].spell(c)
	}
	return strings.Join(parts, ", ")
}

// hit is where a candidate's result comes from.
type hit struct {
	row    int     // exact: the row
	lo, hi int     // interpolated: the rows either side, in width
	t      float64 // interpolated: position between lo (0) and hi (1) in log width
}

func (h hit) interpolated() bool { return h.row < 0 }

// find looks a candidate up; ok is false when the table cannot answer.
func (ix *index) find(c tables.Candidate, interpolate bool) (hit, bool) {
	if r, ok := ix.exact[ix.candKey(c, -1)]; ok {
		return hit{row: r, lo: -1, hi: -1}, true
	}
	if !interpolate || ix.width < 0 || c.Width <= 0 {
		return hit{}, false
	}
	rows := ix.along[ix.candKey(c, ix.width)]
	w := ix.keys[ix.width].nums
	target := float64(c.Width)
	i, _ := slices.BinarySearchFunc(rows, target, func(r int, v float64) int { return cmp.Compare(w[r], v) })
	if i == 0 || i >= len(rows) {
		return hit{}, false
	}
	lo, hi := rows[i-1], rows[i]
	t := (math.Log(target) - math.Log(w[lo])) / (math.Log(w[hi]) - math.Log(w[lo]))
	return hit{row: -1, lo: lo, hi: hi, t: t}, true
}

// nearest lists up to n rows closest to a candidate: fewest other key
// values differing, then closest in those numbers, then closest in log
// width.
func (ix *index) nearest(c tables.Candidate, n int) []int {
	type scored struct {
		row        int
		mismatches int
		gap, width float64
	}
	all := make([]scored, 0, ix.t.rows)
	for r := range ix.t.rows {
		s := scored{row: r}
		for i, k := range ix.keys {
			if k.spelled[r] == k.spell(c) {
				continue
			}
			_, v := candidateValue(c, k.name)
			switch {
			case i == ix.width:
				s.width = logGap(v, k.nums[r])
			case k.text:
				s.mismatches++
			default:
				s.mismatches++
				s.gap += logGap(v, k.nums[r])
			}
		}
		all = append(all, s)
	}
	slices.SortStableFunc(all, func(a, b scored) int {
		return cmp.Or(cmp.Compare(a.mismatches, b.mismatches), cmp.Compare(a.gap, b.gap), cmp.Compare(a.width, b.width))
	})
	out := make([]int, 0, n)
	for _, s := range all[:min(n, len(all))] {
		out = append(out, s.row)
	}
	return out
}

// logGap is how far apart two sizes are in doublings; sizes below 1 (the
// linear model's width 0) count as 1.
func logGap(a, b float64) float64 {
	return math.Abs(math.Log2(max(math.Abs(a), 1)) - math.Log2(max(math.Abs(b), 1)))
}

// missing explains why a candidate has no result.
func (ix *index) missing(c tables.Candidate, interpolate bool) (col, message string) {
	near := ix.nearest(c, 5)
	var b strings.Builder
	fmt.Fprintf(&b, "no measured result for candidate %s (%s) in %s", c.ID, ix.describeCand(c), ix.t.path)
	if len(near) > 0 {
		// The column at fault is the first one in which the nearest row
		// differs.
		for i, k := range ix.keys {
			if k.spelled[near[0]] != k.spell(c) {
				col = ix.keys[i].table
				break
			}
		}
		descr := make([]string, len(near))
		for i, r := range near {
			descr[i] = "(" + ix.describeRow(r) + ")"
		}
		fmt.Fprintf(&b, "; nearest measured: %s", strings.Join(descr, ", "))
	} else {
		b.WriteString("; the table has no rows")
	}
	if ix.width >= 0 {
		rows := ix.along[ix.candKey(c, ix.width)]
		w := ix.keys[ix.width].nums
		switch {
		case len(rows) == 0:
		case !interpolate && float64(c.Width) > w[rows[0]] && float64(c.Width) < w[rows[len(rows)-1]]:
			b.WriteString(`; set interpolate = "log_width" to interpolate between measured widths`)
		case interpolate:
			fmt.Fprintf(&b, "; interpolation needs measured widths on both sides of %d, and with these other keys the table has widths %s..%s only",
				c.Width, canonical(w[rows[0]], 64), canonical(w[rows[len(rows)-1]], 64))
		}
	}
	return col, b.String()
}

// result builds a candidate's result from its hit.
func (ix *index) build(c tables.Candidate, h hit) tables.Result {
	r := baseResult(c)
	if !h.interpolated() {
		r.Status = ix.status[h.row]
		for _, rc := range ix.results {
			if rc.text != nil {
				setText(&r, rc.name, rc.text[h.row])
			} else {
				setNumber(&r, rc.name, rc.nums[h.row])
			}
		}
		return r
	}
	near := h.lo
	if h.t >= 0.5 {
		near = h.hi
	}
	for _, rc := range ix.results {
		switch {
		case rc.name == "status" || rc.name == "error":
			// Both neighbours are ok, so is the interpolation.
		case rc.text != nil:
			setText(&r, rc.name, rc.text[near])
		default:
			a, b := rc.nums[h.lo], rc.nums[h.hi]
			setNumber(&r, rc.name, (1-h.t)*a+h.t*b)
		}
	}
	return r
}
