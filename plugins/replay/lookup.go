package replay

import (
	"cmp"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/tablefile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Candidate columns compared as text; the others are numbers.
var textCandidateColumns = map[string]bool{"candidate_id": true, "family": true, "preprocess": true, "quantize": true,
	"name": true, "family_kind": true, "knobs": true}

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
	case "name":
		return c.Name, 0
	case "family_kind":
		return c.Kind, 0
	case "knobs":
		return c.Knobs.String(), 0
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
	case "size":
		return "", c.Size
	case "repeat":
		return "", float64(c.Repeat)
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

// How a candidate was found.
const (
	matchKey   = "key"
	matchName  = "name"
	matchKnobs = "knobs"
)

// index is a table prepared for lookups: by name (table-kind candidates),
// by knobs (axis kind) and by key (mlp kind).
type index struct {
	t       *tablefile.Table
	columns map[string]string // the config's columns

	// nameCol is the table's name column, "" when it has none; names maps
	// each name to its row.
	nameCol string
	names   map[string]int

	// keys are nil when the table cannot serve key lookups, keyErr then
	// saying why.
	keys   []keyColumn
	keyErr string
	width  int            // position of width in keys, or -1
	exact  map[string]int // joined key -> row
	// along groups the rows that interpolation may use by their key
	// without width, each sorted by width.
	along map[string][]int

	results []resultColumn
	// params are the table's parameter counts (NaN for null), nil when it
	// has no params column.
	params    []float64
	paramsCol string
	// status is each row's status ("ok" without a status column).
	status []string

	// repeatOf holds each row's repeat column value, nil when the table
	// has no repeat column: then every model has one row. reps maps a
	// model's first row (the one its lookup finds) to all its rows, in
	// order of repeat, for models with more than one; others holds the
	// rows that are a model's later repeats.
	repeatOf  []float64
	repeatCol string
	reps      map[int][]int
	others    map[int]bool

	// knobs are the knob lookups prepared so far, by their knobs' names
	// and types.
	knobsMu sync.Mutex
	knobs   map[string]*knobIndex
}

// The results columns a table may provide: every evaluation column but
// trace_id, measured_from, repeats_held and repeatable, which are this
// stage's, and the setting columns, a search's (a replayed row is no
// setting of one).
func resultNames() []string {
	var out []string
	n := len(tables.CandidatesSchema.Fields())
	for _, f := range tables.ResultsSchema.Fields()[n:] {
		switch f.Name {
		case tables.ColSetting, tables.ColSettingChosen, tables.ColSettingScore:
			continue
		}
		if f.Name != tables.ColTraceID && f.Name != tables.ColMeasuredFrom && f.Name != tables.ColRepeatsHeld && f.Name != tables.ColRepeatable {
			out = append(out, f.Name)
		}
	}
	return out
}

// numericResultNames are the results columns that are numbers.
func numericResultNames() []string {
	return slices.DeleteFunc(resultNames(), func(n string) bool { return textResultColumns[n] })
}

var textResultColumns = map[string]bool{"status": true, "error": true, "stopped_by": true}

// fractionColumns hold fractions in 0..1.
var fractionColumns = map[string]bool{"accuracy": true, "accuracy_before": true}

var statuses = []string{tables.StatusOK, tables.StatusFailed, tables.StatusPruned, tables.StatusInfeasible}

// prepare checks the table against the config and indexes it. Every
// problem is a config diagnostic on the attribute that names what is
// wrong (a columns entry when the column is mapped, a key entry, else
// path), and names the file, the line and the column.
func prepare(t *tablefile.Table, set settings) (*index, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
	}
	problems := func(path []string, ps tablefile.Problems) {
		for _, p := range ps {
			bad(path, p.Summary, sentence(p.Error()))
		}
	}
	tableName := func(name string) (string, bool) {
		if m, ok := set.columns[name]; ok {
			return m, true
		}
		return name, false
	}
	// attr is where a column's problems go: its columns entry when mapped,
	// else def.
	attr := func(name string, def []string) []string {
		if _, mapped := set.columns[name]; mapped {
			return []string{"columns", name}
		}
		return def
	}
	pathAttr := []string{"path"}
	missing := func(tn, why string) string {
		return sentence(fmt.Sprintf("%s: the header has no column %q%s.%s Its columns are: %s", t.AtHeader(), tn, why, suggest.Hint(tn, t.Names), strings.Join(t.Names, ", ")))
	}
	// find returns a usable column, or adds why not.
	find := func(name string, path []string, add func(path []string, summary, detail string)) *tablefile.Column {
		tn, mapped := tableName(name)
		c := t.Column(tn)
		switch {
		case c == nil && mapped:
			add(path, "No such table column", missing(tn, ""))
			return nil
		case c == nil:
			add(path, "No such table column", missing(tn, fmt.Sprintf(" for the candidates' %s; if the table names it otherwise, map it: columns = { %s = \"TABLE_COLUMN\" }", name, name)))
			return nil
		case c.Dup:
			add(path, "Ambiguous table column", fmt.Sprintf("%s: the header has two columns named %q.", t.AtHeader(), tn))
			return nil
		}
		return c
	}

	ix := &index{t: t, columns: set.columns, width: -1, exact: map[string]int{}, along: map[string][]int{}, knobs: map[string]*knobIndex{},
		reps: map[int][]int{}, others: map[int]bool{}}

	// Repeats: a table with a repeat column may hold several rows of one
	// model, told apart by it.
	repeatTN, repeatMapped := tableName(tables.ColRepeat)
	if c := t.Column(repeatTN); c != nil || repeatMapped {
		path := attr(tables.ColRepeat, pathAttr)
		if c := find(tables.ColRepeat, path, bad); c != nil {
			nums, ps := t.Numbers(c.Name)
			if len(ps) == 0 && nums != nil {
				rep := tablefile.NewReport(t)
				for r, v := range nums {
					if math.IsNaN(v) {
						rep.Add(r, c.Name, "Missing repeat", "the row has no repeat: in a table with a repeat column, every row says which measurement of its model it is.")
					}
				}
				ps = rep.Problems()
			}
			problems(path, ps)
			if len(ps) == 0 {
				ix.repeatOf, ix.repeatCol = nums, c.Name
			}
		}
	}

	// Names: table-kind candidates are looked up by name.
	nameTN, nameMapped := tableName(tables.ColName)
	if c := t.Column(nameTN); c != nil || nameMapped {
		if c := find(tables.ColName, attr(tables.ColName, pathAttr), bad); c != nil {
			var names map[string]int
			var ps tablefile.Problems
			if ix.repeatOf != nil {
				names, ps = ix.uniqueWithRepeats(nameTN)
			} else {
				names, ps = t.Unique(nameTN)
			}
			problems(attr(tables.ColName, pathAttr), ps)
			ix.nameCol, ix.names = nameTN, names
		}
	}

	// Key: mlp candidates are looked up by it. It is optional when the
	// table has names and the config sets no key: the table may be one of
	// named models only, and the key columns it has may not tell its rows
	// apart.
	if !set.keyBroken {
		optional := !set.keyExplicit && ix.names != nil
		for _, k := range set.key {
			if _, mapped := set.columns[k]; mapped {
				optional = false
			}
		}
		var keyDiags sdk.Diagnostics
		addKey := func(path []string, summary, detail string) {
			keyDiags = append(keyDiags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: path})
		}
		keyProblems := func(path []string, ps tablefile.Problems) {
			for _, p := range ps {
				addKey(path, p.Summary, sentence(p.Error()))
			}
		}
		var keys []keyColumn
		width := -1
		for i, name := range set.key {
			path := attr(name, []string{"key", strconv.Itoa(i)})
			var c *tablefile.Column
			if ix.names == nil && !set.keyExplicit && t.Column(name) == nil {
				tn, mapped := tableName(name)
				if !mapped {
					addKey(path, "No such table column", missing(tn, fmt.Sprintf(" for the candidates' %s; if the table names it otherwise, map it: columns = { %s = \"TABLE_COLUMN\" }. A table of named models (model_choice's table families) needs a name column instead: map it, columns = { name = \"TABLE_COLUMN\" }", name, name)))
					continue
				}
			}
			if c = find(name, path, addKey); c == nil {
				continue
			}
			k := keyColumn{name: name, table: c.Name, text: textCandidateColumns[name], bits: c.Bits, spelled: make([]string, t.Rows)}
			if k.text {
				vals, ps := t.Texts(c.Name)
				if ps != nil {
					keyProblems(path, ps)
					continue
				}
				for r, v := range vals {
					k.spelled[r] = strconv.Quote(v)
				}
			} else {
				vals, ps := t.Numbers(c.Name)
				if vals == nil {
					keyProblems(path, ps)
					continue
				}
				if len(ps) == 0 {
					rep := tablefile.NewReport(t)
					for r, v := range vals {
						if math.IsNaN(v) {
							rep.Add(r, c.Name, "Missing key value", "the row has no value here: every row needs one in each key column.")
						}
					}
					ps = rep.Problems()
				}
				if len(ps) > 0 {
					keyProblems(path, ps)
					continue
				}
				k.nums = vals
				for r, v := range vals {
					k.spelled[r] = canonical(v, k.bits)
				}
			}
			if name == "width" {
				width = len(keys)
			}
			keys = append(keys, k)
		}
		if !keyDiags.HasErrors() {
			ix.keys, ix.width = keys, width
			rep := tablefile.NewReport(t)
			keyed := slices.Contains(set.key, tables.ColRepeat)
			for r := range t.Rows {
				key := ix.rowKey(r, -1)
				if prev, dup := ix.exact[key]; dup {
					if ix.repeatOf != nil && !keyed {
						if same := ix.sameRepeat(prev, r); same >= 0 {
							rep.Add(r, ix.repeatCol, "Duplicate repeat", fmt.Sprintf("%s on %s is already on %s with the same repeat (%s). Each row of a model is one measurement: give each its own repeat.", ix.describeRow(r), t.Where(r), t.Where(same), canonical(ix.repeatOf[r], 64)))
							continue
						}
						ix.addRepeat(prev, r)
						continue
					}
					rep.Add(r, "", "Duplicate key", fmt.Sprintf("%s on %s is already on %s. %s", ix.describeRow(r), t.Where(r), t.Where(prev), ix.differing(prev, r)))
					continue
				}
				ix.exact[key] = r
			}
			keyProblems([]string{"key"}, rep.Problems())
		}
		switch {
		case !keyDiags.HasErrors():
		case optional:
			ix.keys, ix.width, ix.exact = nil, -1, map[string]int{}
			ix.keyErr = strings.TrimSuffix(keyDiags[0].Detail, ".")
		default:
			diags = append(diags, keyDiags...)
			ix.keys, ix.width = nil, -1
			ix.keyErr = "the table's key columns have problems"
		}
	} else {
		ix.keyErr = "key is invalid"
	}

	// Results.
	quality := false
	for _, name := range resultNames() {
		tn, mapped := tableName(name)
		if t.Column(tn) == nil && !mapped {
			continue // not measured: null, or the documented default
		}
		path := attr(name, pathAttr)
		c := find(name, path, bad)
		if c == nil {
			continue
		}
		rc := resultColumn{name: name}
		if textResultColumns[name] {
			texts, ps := t.Texts(c.Name)
			if ps != nil {
				problems(path, ps)
				continue
			}
			rc.text = texts
		} else {
			nums, ps := t.Numbers(c.Name)
			problems(path, ps)
			if nums == nil {
				continue
			}
			rc.nums = scaled(nums, set.scale[name])
			if fractionColumns[name] {
				problems(attr(name, pathAttr), fractionProblems(t, c.Name, name, rc.nums, set.scale[name]))
			}
			if name == tables.ColModelBytes {
				rep := tablefile.NewReport(t)
				for r, v := range rc.nums {
					if v <= 0 {
						rep.Add(r, c.Name, "Value not positive", fmt.Sprintf("the value is %s, and a model's size in bytes must be positive.", canonical(v, 64)))
					}
				}
				problems(path, rep.Problems())
			}
		}
		if name == "accuracy" || name == "loss" || name == "rmse" {
			quality = true
		}
		ix.results = append(ix.results, rc)
	}
	_, accMapped := set.columns["accuracy"]
	_, lossMapped := set.columns["loss"]
	_, rmseMapped := set.columns["rmse"]
	if !quality && !accMapped && !lossMapped && !rmseMapped {
		bad(pathAttr, "No quality column", fmt.Sprintf("%s has none of accuracy, loss and rmse, so a lookup would measure nothing. If it names its metric otherwise, map it, e.g. columns = { accuracy = \"top1\" }. Its columns are: %s.", t.Path, strings.Join(t.Names, ", ")))
	}

	// Params: the table's parameter count replaces the candidate's.
	paramsTN, paramsMapped := tableName(tables.ColParams)
	if !paramsMapped {
		paramsTN = ""
		for _, n := range ParamsColumns {
			if t.Column(n) != nil {
				paramsTN = n
				break
			}
		}
	}
	if paramsTN != "" {
		path := attr(tables.ColParams, pathAttr)
		if t.Column(paramsTN) == nil {
			bad(path, "No such table column", missing(paramsTN, ""))
		} else {
			nums, ps := t.Positive(paramsTN, "a parameter count")
			problems(path, ps)
			if nums != nil {
				ix.params, ix.paramsCol = scaled(nums, set.scale[tables.ColParams]), paramsTN
			}
		}
	}

	ix.status = make([]string, t.Rows)
	for r := range ix.status {
		ix.status[r] = tables.StatusOK
	}
	if rc := ix.resultCol("status"); rc != nil {
		tn, _ := tableName("status")
		rep := tablefile.NewReport(t)
		for r, v := range rc.text {
			v = strings.TrimSpace(v)
			switch {
			case v == "":
			case slices.Contains(statuses, v):
				ix.status[r] = v
			default:
				rep.Add(r, tn, "Unknown trial status", fmt.Sprintf("the status is %q; a status is one of %s.", v, strings.Join(statuses, ", ")))
			}
		}
		problems(attr("status", pathAttr), rep.Problems())
	}
	if diags.HasErrors() {
		return nil, diags
	}

	if ix.width >= 0 {
		for r := range t.Rows {
			if !ix.others[r] && ix.status[r] == tables.StatusOK && ix.keys[ix.width].nums[r] > 0 {
				other := ix.rowKey(r, ix.width)
				ix.along[other] = append(ix.along[other], r)
			}
		}
		w := ix.keys[ix.width].nums
		for _, rows := range ix.along {
			slices.SortFunc(rows, func(a, b int) int { return cmp.Compare(w[a], w[b]) })
		}
	}
	return ix, nil
}

// scaled returns nums times f (nums itself when f is 0 or 1).
func scaled(nums []float64, f float64) []float64 {
	if f == 0 || f == 1 {
		return nums
	}
	out := make([]float64, len(nums))
	for i, v := range nums {
		out[i] = v * f
	}
	return out
}

// fractionProblems checks a column of fractions (accuracy): a value above
// 1 means percent when every value lies in 0..100, and is out of range
// otherwise.
func fractionProblems(t *tablefile.Table, column, name string, nums []float64, scale float64) tablefile.Problems {
	percent := true
	above := false
	for _, v := range nums {
		if v > 100 || v < 0 {
			percent = false
		}
		if v > 1 {
			above = true
		}
	}
	if !above && percent {
		return nil
	}
	after := ""
	if scale != 0 {
		after = fmt.Sprintf(" after scale.%s = %s", name, canonical(scale, 64))
	}
	rep := tablefile.NewReport(t)
	for r, v := range nums {
		switch {
		case v > 1 && percent:
			rep.Add(r, column, "Accuracy in percent", fmt.Sprintf("%s is %s%s, above 1: %s is a fraction in 0..1, and as every value of the column lies in 0..100, the table gives it in percent. Add scale = { %s = 0.01 } to the replay stage to read it as a fraction.", name, canonical(v, 64), after, name, name))
		case v > 1 || v < 0:
			rep.Add(r, column, "Accuracy out of range", fmt.Sprintf("%s is %s%s: %s is a fraction in 0..1.", name, canonical(v, 64), after, name))
		}
	}
	return rep.Problems()
}

// differing suggests how to tell two rows with the same key apart.
func (ix *index) differing(a, b int) string {
	var cand []string
	for _, n := range ix.t.Names {
		c := ix.t.Column(n)
		if c.Dup || slices.Contains(ixKeyNames(ix), n) {
			continue
		}
		if _, ok := tables.CandidatesSchema.FieldsByName(n); !ok {
			continue
		}
		ta, oka := c.Number(a)
		tb, okb := c.Number(b)
		same := c.Null(a) == c.Null(b) && c.Text(a) == c.Text(b)
		if oka && okb {
			same = canonical(ta, 64) == canonical(tb, 64)
		}
		if !same {
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

// hit is where a candidate's result comes from: the model's row, or the
// models either side of it; the candidate's repeat then picks the row of
// that measurement (at).
type hit struct {
	row    int     // exact: the model's first row
	lo, hi int     // interpolated: the models' first rows either side, in width
	t      float64 // interpolated: position between lo (0) and hi (1) in log width
	match  string  // matchKey, matchName or matchKnobs
	// rows are an exact model's rows in order of repeat, when the table
	// holds more than one; nil: row alone.
	rows []int
}

func (h hit) interpolated() bool { return h.row < 0 }

// lookup finds a candidate's row by the way its family kind is found: a
// named model (table) by name, an axis model by its knobs, an MLP by key.
// When the table cannot answer, col is the candidates column at fault and
// msg says why.
func (ix *index) lookup(c tables.Candidate, interpolate bool) (h hit, ok bool, col, msg string) {
	switch c.Kind {
	case tables.KindTable:
		return ix.byName(c, interpolate)
	case tables.KindAxis:
		return ix.byKnobs(c)
	}
	if ix.keys == nil {
		return hit{}, false, "family_kind", fmt.Sprintf("candidate %s is an mlp model, looked up by %s, and %s cannot serve such lookups: %s", c.ID, strings.Join(ixKeyNamesOr(ix), ", "), ix.t.Path, ix.keyErr)
	}
	if h, ok := ix.find(c, interpolate); ok {
		return h, true, "", ""
	}
	col, msg = ix.missing(c, interpolate)
	return hit{}, false, col, msg
}

func ixKeyNamesOr(ix *index) []string {
	if len(ix.keys) > 0 {
		return ixKeyNames(ix)
	}
	return []string{"its key"}
}

// byName finds a named model.
func (ix *index) byName(c tables.Candidate, interpolate bool) (hit, bool, string, string) {
	if ix.names == nil {
		return hit{}, false, "name", fmt.Sprintf("candidate %s is a named model (family %s, kind table), looked up by name, and %s has no name column; if it names its models in another column, map it: columns = { name = \"TABLE_COLUMN\" }", c.ID, c.Family, ix.t.Path)
	}
	if r, ok := ix.names[c.Name]; ok {
		return hit{row: r, lo: -1, hi: -1, match: matchName, rows: ix.reps[r]}, true, "", ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no row of %s is named %q (candidate %s, family %s; names are column %q)", ix.t.Path, c.Name, c.ID, c.Family, ix.nameCol)
	near := nearestNames(c, ix.names, 5)
	if s := suggest.Name(c.Name, near); s != "" {
		fmt.Fprintf(&b, "; did you mean %q?", s)
	}
	if len(near) > 0 {
		fmt.Fprintf(&b, "; nearest names: %s", strings.Join(near, ", "))
	}
	if interpolate {
		b.WriteString("; interpolate applies to mlp candidates only: a named model the table lacks is never invented")
	}
	return hit{}, false, "name", b.String()
}

// nearestNames lists up to n of the table's names nearest a candidate's:
// fewest edits first, the candidate's family's names before others.
func nearestNames(c tables.Candidate, names map[string]int, n int) []string {
	type scored struct {
		name   string
		dist   int
		family bool
	}
	all := make([]scored, 0, len(names))
	for name := range names {
		all = append(all, scored{name, suggest.Distance(c.Name, name), c.Family != "" && strings.HasPrefix(name, c.Family)})
	}
	slices.SortFunc(all, func(a, b scored) int {
		fa, fb := 1, 1
		if a.family {
			fa = 0
		}
		if b.family {
			fb = 0
		}
		return cmp.Or(cmp.Compare(a.dist, b.dist), cmp.Compare(fa, fb), strings.Compare(a.name, b.name))
	})
	out := make([]string, 0, n)
	for _, s := range all[:min(n, len(all))] {
		out = append(out, s.name)
	}
	return out
}

// find looks an mlp candidate up by key; ok is false when the table
// cannot answer.
func (ix *index) find(c tables.Candidate, interpolate bool) (hit, bool) {
	if r, ok := ix.exact[ix.candKey(c, -1)]; ok {
		return hit{row: r, lo: -1, hi: -1, match: matchKey, rows: ix.reps[r]}, true
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
	return hit{row: -1, lo: lo, hi: hi, t: t, match: matchKey}, true
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
	all := make([]scored, 0, ix.t.Rows)
	for r := range ix.t.Rows {
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

// missing explains why an mlp candidate has no result.
func (ix *index) missing(c tables.Candidate, interpolate bool) (col, message string) {
	near := ix.nearest(c, 5)
	var b strings.Builder
	fmt.Fprintf(&b, "no measured result for candidate %s (%s) in %s", c.ID, ix.describeCand(c), ix.t.Path)
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

// build makes a candidate's result from its hit. The candidate's own
// columns are kept, but for params, taken from the table when it has
// them (an exact hit's).
func (ix *index) build(c tables.Candidate, h hit) tables.Result {
	r := baseResult(c)
	if !h.interpolated() {
		rows := ix.modelRows(h.row, h.rows)
		r.MeasuredFrom, r.RepeatsHeld, r.Repeatable = ix.source(h.row), int32(len(rows)), int(c.Repeat)+1 < len(rows)
		if int(c.Repeat) >= len(rows) {
			return ix.noMore(r, c, h.row, len(rows))
		}
		row := rows[c.Repeat]
		r.Status = ix.status[row]
		for _, rc := range ix.results {
			if rc.text != nil {
				setText(&r, rc.name, rc.text[row])
			} else {
				setNumber(&r, rc.name, rc.nums[row])
			}
		}
		if ix.params != nil {
			if p := ix.params[row]; p >= 0.5 && p < 1<<62 {
				r.Params = int64(math.Round(p))
			}
		}
		return r
	}
	// An interpolated repeat r lies between the two models' r-th rows.
	loRows, hiRows := ix.modelRows(h.lo, ix.reps[h.lo]), ix.modelRows(h.hi, ix.reps[h.hi])
	near := h.lo
	if h.t >= 0.5 {
		near = h.hi
	}
	held := min(len(loRows), len(hiRows))
	r.MeasuredFrom, r.RepeatsHeld, r.Repeatable = ix.source(near), int32(held), int(c.Repeat)+1 < held
	if int(c.Repeat) >= held {
		return ix.noMore(r, c, near, held)
	}
	lo, hi := loRows[c.Repeat], hiRows[c.Repeat]
	if ix.status[lo] != tables.StatusOK || ix.status[hi] != tables.StatusOK {
		r.Status = tables.StatusFailed
		r.Error = fmt.Sprintf("repeat %d is interpolated between %s and %s, and a measurement there is %s, not ok", c.Repeat, ix.t.Where(lo), ix.t.Where(hi), cmp.Or(strings.TrimSpace(ix.status[lo]+" "+ix.status[hi]), "failed"))
		return r
	}
	near = lo
	if h.t >= 0.5 {
		near = hi
	}
	h.lo, h.hi = lo, hi
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

// modelRows are a model's rows in order of repeat: rows, or its one row.
func (ix *index) modelRows(row int, rows []int) []int {
	if rows != nil {
		return rows
	}
	if rs, ok := ix.reps[row]; ok {
		return rs
	}
	return []int{row}
}

// source names a model's first row in the file for measured_from:
// "zoo.csv:12", or "zoo.parquet, row 11". Every repeat of the model, and
// every row interpolated nearest it, carries the same name: one measured
// model.
func (ix *index) source(row int) string {
	base := filepath.Base(ix.t.Path)
	if l := ix.t.Line(row); l > 0 {
		return fmt.Sprintf("%s:%d", base, l)
	}
	return fmt.Sprintf("%s, row %d", base, row)
}

// noMore is the result of a repeat the table does not hold: a failed
// trial saying so. A replay table never invents a measurement, nor hands
// one out twice as if it were two.
func (ix *index) noMore(r tables.Result, c tables.Candidate, row, held int) tables.Result {
	r.Status = tables.StatusFailed
	what := "measurement"
	if held != 1 {
		what = "measurements"
	}
	r.Error = fmt.Sprintf("%s holds %d %s of %s (from %s; repeats 0 to %d) and repeat %d was asked for: a replay table has no more, and never invents one",
		filepath.Base(ix.t.Path), held, what, c.Name, ix.t.Where(row), held-1, c.Repeat)
	if ix.repeatOf == nil {
		r.Error += "; give the table a repeat column (columns = { repeat = \"seed\" } names another) to replay several measurements of a model"
	}
	return r
}

// sameRepeat returns a row of head's model with row's repeat, or -1.
func (ix *index) sameRepeat(head, row int) int {
	for _, r := range ix.modelRows(head, nil) {
		if r != row && ix.repeatOf[r] == ix.repeatOf[row] {
			return r
		}
	}
	return -1
}

// addRepeat adds row to head's model, keeping its rows in order of repeat.
func (ix *index) addRepeat(head, row int) {
	if slices.Contains(ix.modelRows(head, nil), row) {
		return // grouped already, by name or by key
	}
	rows := append(slices.Clone(ix.modelRows(head, nil)), row)
	slices.SortStableFunc(rows, func(a, b int) int { return cmp.Compare(ix.repeatOf[a], ix.repeatOf[b]) })
	ix.reps[head] = rows
	ix.others[row] = true
}

// uniqueWithRepeats is tablefile's Unique for a table with a repeat
// column: a name may recur on rows of different repeats, which are its
// model's measurements.
func (ix *index) uniqueWithRepeats(name string) (map[string]int, tablefile.Problems) {
	texts, ps := ix.t.Texts(name)
	if ps != nil {
		return nil, ps
	}
	rep := tablefile.NewReport(ix.t)
	out := make(map[string]int, len(texts))
	for i, n := range texts {
		if n == "" {
			rep.Add(i, name, "Missing name", "the row has no name; every row needs one.")
			continue
		}
		if head, dup := out[n]; dup {
			if same := ix.sameRepeat(head, i); same >= 0 {
				rep.Add(i, name, "Duplicate name", fmt.Sprintf("name %q on %s is already on %s with the same repeat (%s); each row of a model is one measurement: give each its own repeat.", n, ix.t.Where(i), ix.t.Where(same), canonical(ix.repeatOf[i], 64)))
				continue
			}
			ix.addRepeat(head, i)
			continue
		}
		out[n] = i
	}
	return out, rep.Problems()
}

// asRepeats orders rows found for one model by repeat; false when the
// table has no repeat column or two of them share a repeat, so they are
// not one model's measurements.
func (ix *index) asRepeats(rows []int) ([]int, bool) {
	if ix.repeatOf == nil {
		return nil, false
	}
	out := slices.Clone(rows)
	slices.SortStableFunc(out, func(a, b int) int { return cmp.Compare(ix.repeatOf[a], ix.repeatOf[b]) })
	for i := 1; i < len(out); i++ {
		if ix.repeatOf[out[i]] == ix.repeatOf[out[i-1]] {
			return nil, false
		}
	}
	return out, true
}
