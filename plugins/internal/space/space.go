// Package space is a search space the user defines for the stages that
// train: named params, each a list of values or a range, and a search
// that turns them into settings, each one trial per model size:
//
//	search "random" {
//	  trials = 12
//	  seed   = 7
//	  metric = "val_accuracy"
//	  param "lr"         { log_uniform = [1e-4, 1e-1] }
//	  param "batch_size" { values = [32, 64, 128] }
//	  param "layers"     { int_range = [1, 4] }
//	  param "dropout"    { uniform = [0.0, 0.5] }
//	}
//
// A search kind is one file: grid.go (every combination), random.go
// (trials draws, seeded) and halving.go (successive halving over random
// draws, with the trial's epochs as its resource). Block is the HCL block a
// stage declares, checked by Check; the stage decides what a param's name
// means (a training column, a knob) and what a trial is, and picks each
// size's setting with Best, by a validation metric: never one measured on
// the test split.
package space

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Search kinds.
const (
	KindGrid    = "grid"
	KindRandom  = "random"
	KindHalving = "halving"
)

var kinds = []string{KindGrid, KindRandom, KindHalving}

// Param kinds: the attribute of a param block that defines it.
const (
	Values     = "values"
	Uniform    = "uniform"
	LogUniform = "log_uniform"
	IntRange   = "int_range"
)

var paramKinds = []string{Values, Uniform, LogUniform, IntRange}

// Directions.
const (
	Maximize = "maximize"
	Minimize = "minimize"
)

// Defaults.
const (
	DefaultTrials      = 10
	DefaultSeed        = 1
	DefaultMetric      = "val_loss"
	DefaultEta         = 3
	DefaultMinResource = 1
)

// Limits that keep a typo from asking for days.
const (
	MaxTrials = 10_000
	maxValues = 1_000
)

// maximized and minimized are the validation metrics whose direction is
// known; any other needs direction.
var (
	maximized = []string{"val_accuracy", "val_r2", "val_f1", "val_auc"}
	minimized = []string{"val_loss", "val_rmse", "val_mae", "val_error"}
)

// TestMetrics are measured on the test split: a search never picks by
// them (the test split judges the chosen model, and a pick made on it would
// judge itself).
var TestMetrics = []string{"accuracy", "loss", "rmse", "r2", "accuracy_before", "loss_before", "rmse_before"}

// Block is the body of a `search "KIND" {}` block in a training stage.
type Block struct {
	Kind        string       `hcl:"kind,label"`
	Trials      *int         `hcl:"trials,optional" doc:"random and halving: settings drawn per model size (default 10). A grid tries every combination and takes no trials."`
	Seed        *int64       `hcl:"seed,optional" doc:"Seed of the draws (default 1): the same seed draws the same settings."`
	Metric      string       `hcl:"metric,optional" doc:"The validation metric each size's setting is chosen by, a key of the trial's final metrics (default val_loss); never a test metric such as accuracy or loss."`
	Direction   string       `hcl:"direction,optional" doc:"maximize or minimize: whether a larger metric is better (known for val_loss, val_accuracy, val_rmse, val_r2 and a few others; required for any other metric)."`
	Eta         *int         `hcl:"eta,optional" doc:"halving: each rung keeps the best 1/eta of its settings and gives them eta times the epochs (default 3, at least 2)."`
	MinResource *int         `hcl:"min_resource,optional" doc:"halving: the fewest epochs a rung trains (default 1)."`
	Params      []ParamBlock `hcl:"param,block" doc:"The knobs searched, one block each: param \"NAME\" { values = [...] }, { uniform = [lo, hi] }, { log_uniform = [lo, hi] } or { int_range = [lo, hi] }."`
}

// ParamBlock is the body of a `param "NAME" {}` block: exactly one of
// values, uniform, log_uniform and int_range.
type ParamBlock struct {
	Name       string    `hcl:"name,label"`
	Values     []string  `hcl:"values,optional" doc:"The values to try: all numbers, all booleans, or all strings (the block reads them as numbers when every one is a number, as booleans when every one is true or false)."`
	Uniform    []float64 `hcl:"uniform,optional" doc:"[lo, hi]: a real number drawn uniformly between lo and hi."`
	LogUniform []float64 `hcl:"log_uniform,optional" doc:"[lo, hi], 0 < lo: a real number whose logarithm is drawn uniformly, for scales such as a learning rate."`
	IntRange   []float64 `hcl:"int_range,optional" doc:"[lo, hi]: a whole number from lo to hi, both included, each equally likely."`
	Points     *int      `hcl:"points,optional" doc:"grid: how many values of a uniform or log_uniform range the grid takes, evenly spaced (in log space for log_uniform) from lo to hi, both included."`
}

// Space is a checked search block.
type Space struct {
	Kind        string
	Trials      int
	Seed        uint64
	Metric      string
	Maximize    bool
	Eta         int
	MinResource int
	Params      []Param
}

// Param is a checked param block.
type Param struct {
	Name string
	Kind string
	// Values are a values param's: float64, string or bool, all one type.
	Values []any
	// Lo and Hi bound a range (both included).
	Lo, Hi float64
	// Points is a continuous range's grid points (0 outside a grid).
	Points int
}

// Check checks a block; its diagnostics' paths start with attr (the
// block's name in the stage, "search"). A param block's are
// attr.param.INDEX.
func Check(attr string, b Block) (Space, sdk.Diagnostics) {
	var diags sdk.Diagnostics
	bad := func(path []string, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: append([]string{attr}, path...)})
	}
	sp := Space{Kind: b.Kind, Trials: DefaultTrials, Seed: DefaultSeed, Metric: b.Metric, Eta: DefaultEta, MinResource: DefaultMinResource}
	if !slices.Contains(kinds, b.Kind) {
		bad([]string{"kind"}, "Unknown search", fmt.Sprintf("A search is grid, random or halving; found %q.%s", b.Kind, suggest.Hint(b.Kind, kinds)))
	}
	if b.Trials != nil {
		switch {
		case b.Kind == KindGrid:
			bad([]string{"trials"}, "Trials in a grid", "A grid tries every combination of the params' values; set points on a range to size it, or use search \"random\" to draw a number of settings.")
		case *b.Trials < 1 || *b.Trials > MaxTrials:
			bad([]string{"trials"}, "Invalid trials", fmt.Sprintf("trials is the number of settings tried per model size, from 1 to %d; found %d.", MaxTrials, *b.Trials))
		default:
			sp.Trials = *b.Trials
		}
	}
	if b.Seed != nil {
		sp.Seed = uint64(*b.Seed)
	}
	if sp.Metric == "" {
		sp.Metric = DefaultMetric
	}
	if slices.Contains(TestMetrics, sp.Metric) {
		bad([]string{"metric"}, "Test metric", fmt.Sprintf("%s is measured on the test split, which judges the chosen model; the search picks each size's setting on validation data. Report a validation metric with the final metrics (such as val_%s) and name it here.", sp.Metric, strings.TrimSuffix(sp.Metric, "_before")))
	}
	switch b.Direction {
	case Maximize:
		sp.Maximize = true
	case Minimize:
	case "":
		switch {
		case slices.Contains(maximized, sp.Metric):
			sp.Maximize = true
		case slices.Contains(minimized, sp.Metric), slices.Contains(TestMetrics, sp.Metric):
		default:
			bad([]string{"direction"}, "Missing direction", fmt.Sprintf("Whether a larger %s is better is not known: set direction = \"maximize\" or \"minimize\".", sp.Metric))
		}
	default:
		bad([]string{"direction"}, "Unknown direction", fmt.Sprintf("direction is maximize or minimize; found %q.%s", b.Direction, suggest.Hint(b.Direction, []string{Maximize, Minimize})))
	}
	halvingOnly := func(name string, v *int, least int, dst *int) {
		if v == nil {
			return
		}
		if b.Kind != KindHalving && slices.Contains(kinds, b.Kind) {
			bad([]string{name}, "Attribute of another search", fmt.Sprintf("%s is an attribute of the halving search, not of %s.", name, b.Kind))
			return
		}
		if *v < least {
			bad([]string{name}, "Invalid "+strings.ReplaceAll(name, "_", " "), fmt.Sprintf("%s must be at least %d; found %d.", name, least, *v))
			return
		}
		*dst = *v
	}
	halvingOnly("eta", b.Eta, 2, &sp.Eta)
	halvingOnly("min_resource", b.MinResource, 1, &sp.MinResource)
	if len(b.Params) == 0 {
		bad(nil, "Empty search space", "A search block needs at least one param block, such as param \"lr\" { log_uniform = [1e-4, 1e-1] }.")
	}
	seen := map[string]bool{}
	for i, pb := range b.Params {
		path := func(field string) []string {
			p := []string{"param", strconv.Itoa(i)}
			if field != "" {
				p = append(p, field)
			}
			return p
		}
		if pb.Name == "" {
			bad(path("name"), "Empty param name", "A param is named by its label, such as param \"lr\" {}: the trainer reads it by that name.")
		} else if seen[pb.Name] {
			bad(path("name"), "Duplicate param", fmt.Sprintf("Two params are named %q; each name is one knob.", pb.Name))
		}
		seen[pb.Name] = true
		p, d := checkParam(pb, b.Kind, func(field, summary, detail string) { bad(path(field), summary, detail) })
		if !d {
			sp.Params = append(sp.Params, p)
		}
	}
	if b.Kind == KindGrid && !diags.HasErrors() {
		if sp.GridSize() > MaxTrials {
			n := 1.0
			for _, p := range sp.Params {
				if p.Kind == IntRange {
					n *= p.Hi - p.Lo + 1
				} else {
					n *= float64(max(len(p.Values), p.Points))
				}
			}
			bad(nil, "Grid too large", fmt.Sprintf("The grid has %.0f combinations per model size; at most %d are allowed. Take fewer values, or search \"random\" with a number of trials.", n, MaxTrials))
		}
	}
	return sp, diags
}

// checkParam checks one param block; bad reports a problem (field "" for
// the block) and failed says whether it did.
func checkParam(pb ParamBlock, search string, bad func(field, summary, detail string)) (p Param, failed bool) {
	report := func(field, summary, detail string) {
		bad(field, summary, detail)
		failed = true
	}
	p.Name = pb.Name
	var given []string
	if pb.Values != nil {
		given = append(given, Values)
	}
	for _, r := range []struct {
		name string
		v    []float64
	}{{Uniform, pb.Uniform}, {LogUniform, pb.LogUniform}, {IntRange, pb.IntRange}} {
		if r.v != nil {
			given = append(given, r.name)
		}
	}
	switch len(given) {
	case 0:
		report("", "Param without values", fmt.Sprintf("param %q needs one of values = [...], uniform = [lo, hi], log_uniform = [lo, hi] or int_range = [lo, hi].", pb.Name))
		return p, true
	case 1:
	default:
		report(given[1], "Param defined twice", fmt.Sprintf("param %q sets both %s and %s; keep one.", pb.Name, given[0], given[1]))
		return p, true
	}
	p.Kind = given[0]
	if pb.Points != nil && (p.Kind == Values || p.Kind == IntRange) {
		report("points", "Points on a discrete param", fmt.Sprintf("points spaces a continuous range for a grid; a %s param's values are already listed.", p.Kind))
	}
	switch p.Kind {
	case Values:
		vs, detail := values(pb.Values)
		if detail != "" {
			report(Values, "Invalid values", detail)
			return p, true
		}
		p.Values = vs
		return p, failed
	case IntRange:
		lo, hi, ok := bounds(pb.IntRange, IntRange, func(s, d string) { report(IntRange, s, d) })
		if !ok {
			return p, true
		}
		if lo != math.Trunc(lo) || hi != math.Trunc(hi) || math.Abs(lo) > 1<<53 || math.Abs(hi) > 1<<53 {
			report(IntRange, "Invalid int_range", fmt.Sprintf("int_range bounds are whole numbers (at most 2⁵³ in size); found [%g, %g].", lo, hi))
			return p, true
		}
		p.Lo, p.Hi = lo, hi
		return p, failed
	}
	v := pb.Uniform
	if p.Kind == LogUniform {
		v = pb.LogUniform
	}
	lo, hi, ok := bounds(v, p.Kind, func(s, d string) { report(p.Kind, s, d) })
	if !ok {
		return p, true
	}
	if p.Kind == LogUniform && lo <= 0 {
		report(LogUniform, "Invalid log_uniform", fmt.Sprintf("log_uniform draws the logarithm, so its bounds are above 0; found [%g, %g]. Use uniform for a range that reaches 0 or below.", lo, hi))
		return p, true
	}
	p.Lo, p.Hi = lo, hi
	if search == KindGrid {
		switch {
		case pb.Points == nil:
			report(p.Kind, "Range without points in a grid", fmt.Sprintf("A grid takes a finite number of values: set points = N on param %q (N values from %g to %g), or list its values.", pb.Name, lo, hi))
		case *pb.Points < 1 || *pb.Points > maxValues:
			report("points", "Invalid points", fmt.Sprintf("points must be from 1 to %d; found %d.", maxValues, *pb.Points))
		case *pb.Points == 1 && lo != hi:
			report("points", "Invalid points", fmt.Sprintf("One point cannot span [%g, %g]: take 2 or more, or list the one value.", lo, hi))
		default:
			p.Points = *pb.Points
		}
	} else if pb.Points != nil && !failed {
		report("points", "Points outside a grid", fmt.Sprintf("points spaces a range for a grid; search %q draws from the whole range.", search))
	}
	return p, failed
}

// bounds checks a [lo, hi] pair.
func bounds(v []float64, name string, bad func(summary, detail string)) (lo, hi float64, ok bool) {
	if len(v) != 2 {
		bad("Invalid "+name, fmt.Sprintf("%s is a pair [lo, hi]; found %d number(s).", name, len(v)))
		return 0, 0, false
	}
	lo, hi = v[0], v[1]
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		bad("Invalid "+name, fmt.Sprintf("%s bounds are finite numbers; found [%g, %g].", name, lo, hi))
		return 0, 0, false
	}
	if math.IsInf(hi-lo, 0) {
		bad("Invalid "+name, fmt.Sprintf("%s [%g, %g] is wider than a float64 spans.", name, lo, hi))
		return 0, 0, false
	}
	if lo > hi {
		bad("Invalid "+name, fmt.Sprintf("%s is [lo, hi] with lo at most hi; found lo %g above hi %g. Swap them.", name, lo, hi))
		return 0, 0, false
	}
	return lo, hi, true
}

// values decodes a values attribute: a non-empty list, none twice, of
// numbers (every entry reads as a finite number), booleans (every entry is
// true or false) or strings (no entry reads as a number). The attribute is
// a list of strings, HCL turning 32 into "32" and true into "true": a list
// of several types is not one HCL type a list of blocks can hold. detail
// is "" when it is good.
func values(v []string) ([]any, string) {
	if len(v) == 0 {
		return nil, "values lists the values to try; give at least one."
	}
	if len(v) > maxValues {
		return nil, fmt.Sprintf("values has %d entries; at most %d are allowed.", len(v), maxValues)
	}
	nums, bools := 0, 0
	for _, e := range v {
		if f, err := strconv.ParseFloat(e, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			nums++
		}
		if e == "true" || e == "false" {
			bools++
		}
	}
	if nums > 0 && nums < len(v) {
		return nil, fmt.Sprintf("values mixes numbers and strings (%q, %q); all values are one type.", v[0], v[len(v)-1])
	}
	out := make([]any, 0, len(v))
	for i, e := range v {
		var x any = e
		switch {
		case nums == len(v):
			x, _ = strconv.ParseFloat(e, 64)
		case bools == len(v):
			x = e == "true"
		}
		if slices.Contains(out, x) {
			return nil, fmt.Sprintf("values[%d] (%v) is listed twice.", i, x)
		}
		out = append(out, x)
	}
	return out, ""
}

// Names are the params' names, in block order.
func (sp Space) Names() []string {
	out := make([]string, len(sp.Params))
	for i, p := range sp.Params {
		out[i] = p.Name
	}
	return out
}

// Param returns the param named name.
func (sp Space) Param(name string) (Param, bool) {
	for _, p := range sp.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// Numeric says whether every value the param takes is a number.
func (p Param) Numeric() bool {
	if p.Kind != Values {
		return true
	}
	_, ok := p.Values[0].(float64)
	return ok
}

// Integral says whether every value the param takes is a whole number.
func (p Param) Integral() bool {
	switch p.Kind {
	case IntRange:
		return true
	case Values:
		for _, v := range p.Values {
			if f, ok := v.(float64); !ok || f != math.Trunc(f) {
				return false
			}
		}
		return true
	}
	return p.Lo == p.Hi && p.Lo == math.Trunc(p.Lo)
}

// Least is the smallest number the param takes (NaN when it takes no
// numbers).
func (p Param) Least() float64 {
	if p.Kind != Values {
		return p.Lo
	}
	least := math.NaN()
	for _, v := range p.Values {
		if f, ok := v.(float64); ok && !(f >= least) {
			least = f
		}
	}
	return least
}

// Value is one param's value in a setting: a float64, string or bool.
type Value struct {
	Name string
	V    any
}

// Setting is one value per param, in the params' order.
type Setting []Value

// Get returns the value of the param named name.
func (s Setting) Get(name string) (any, bool) {
	for _, v := range s {
		if v.Name == name {
			return v.V, true
		}
	}
	return nil, false
}

// Map is the setting as a map by name.
func (s Setting) Map() map[string]any {
	m := make(map[string]any, len(s))
	for _, v := range s {
		m[v.Name] = v.V
	}
	return m
}

// JSON is the setting as one JSON object, its keys sorted: the results
// table's setting column.
func (s Setting) JSON() string {
	m := s.Map()
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		switch v := m[k].(type) {
		case float64:
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		default:
			vb, _ := json.Marshal(v)
			b.Write(vb)
		}
	}
	b.WriteByte('}')
	return b.String()
}

// String is the setting as name=value pairs, for logs and span names.
func (s Setting) String() string {
	parts := make([]string, len(s))
	for i, v := range s {
		switch x := v.V.(type) {
		case float64:
			parts[i] = v.Name + "=" + strconv.FormatFloat(x, 'g', 6, 64)
		default:
			parts[i] = fmt.Sprintf("%s=%v", v.Name, x)
		}
	}
	return strings.Join(parts, " ")
}

// Settings are the settings a search tries for each model size: every
// combination for a grid; trials draws for random and halving (the draws
// halving starts from). The same space gives the same settings.
func (sp Space) Settings() []Setting {
	if sp.Kind == KindGrid {
		return sp.grid()
	}
	return sp.draw(sp.Trials)
}

// Better reports whether score a is strictly better than b. A NaN score
// (a trial that failed or did not report the metric) is worse than any
// number.
func (sp Space) Better(a, b float64) bool {
	switch {
	case math.IsNaN(a):
		return false
	case math.IsNaN(b):
		return true
	case sp.Maximize:
		return a > b
	default:
		return a < b
	}
}

// Rank orders trials by score, best first; ties keep index order, so the
// ranking is deterministic.
func (sp Space) Rank(scores []float64) []int {
	order := make([]int, len(scores))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch {
		case sp.Better(scores[a], scores[b]):
			return -1
		case sp.Better(scores[b], scores[a]):
			return 1
		}
		return 0
	})
	return order
}

// Best is the index of the best score, or -1 when every score is NaN.
func (sp Space) Best(scores []float64) int {
	if len(scores) == 0 {
		return -1
	}
	if i := sp.Rank(scores)[0]; !math.IsNaN(scores[i]) {
		return i
	}
	return -1
}
