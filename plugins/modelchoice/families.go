package modelchoice

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// FamilyBlock is the body of a `family "KIND" {}` block: one family of
// models to size. The label is the family's kind (mlp, table or axis);
// each kind reads its own attributes, and setting another kind's is a
// diagnostic.
type FamilyBlock struct {
	Kind string `hcl:"kind,label"`
	Name string `hcl:"name,optional" doc:"The family's name, which prefixes its models' names (default: mlp for mlp, the file's base name for table, axis for axis; a table's group column names its families instead)."`

	// mlp
	Depth           []int       `hcl:"depth,optional" doc:"mlp: numbers of hidden layers to try (default [1])."`
	Width           *WidthRange `hcl:"width,optional" doc:"mlp: range of hidden-layer widths, { min = 4, max = 1024 } by default."`
	IncludeBaseline *bool       `hcl:"include_baseline,optional" doc:"mlp: add the linear baseline of depth 0 (default true)."`

	// table
	Path       string `hcl:"path,optional" doc:"table: the file of models (CSV or TSV, optionally .gz; Parquet; Arrow IPC), relative to the pipeline file."`
	Format     string `hcl:"format,optional" doc:"table: csv, tsv, parquet or arrow (default: from the file name)."`
	NameColumn string `hcl:"name_column,optional" doc:"table: the column of model names (default name); names are unique across the file."`
	Size       string `hcl:"size,optional" doc:"table: the column that orders the models by size, such as a parameter count (required)."`
	ParamsCol  string `hcl:"params_column,optional" doc:"table: the column of parameter counts (default: the size column)."`
	FLOPsCol   string `hcl:"flops_column,optional" doc:"table: the column of forward FLOPs per sample, when the table has one."`
	Group      string `hcl:"group,optional" doc:"table: a column that splits the file into several families (a zoo); each value is a family."`

	// axis
	Axis   *AxisBlock      `hcl:"axis,block" doc:"axis: the size variable, axis \"s\" { min = 1, max = 32, scale = \"log\", integer = true }."`
	Knobs  *sdk.Expression `hcl:"knobs,optional" doc:"axis: the trainer's knobs as an object of expressions of the size variable, such as { d_model = 64 * s, layers = 2 + floor(log(s, 2)) }."`
	Params *sdk.Expression `hcl:"params,optional" doc:"axis: the parameter count as an expression of the size variable and the knobs; without it the trainer reports params."`
	FLOPs  *sdk.Expression `hcl:"flops,optional" doc:"axis: forward FLOPs per sample as an expression of the size variable and the knobs."`

	// every kind
	Start string `hcl:"start,optional" doc:"What round 0 trains of this family: ladder (default: steps models spread evenly in log size across the family), narrow (the two smallest) or all."`
	Steps *int   `hcl:"steps,optional" doc:"Models of the ladder (default 6 for mlp widths, 4 for table and axis families)."`
}

// AxisBlock is an axis family's `axis "NAME" {}` block.
type AxisBlock struct {
	Name    string   `hcl:"name,label"`
	Min     float64  `hcl:"min" doc:"Smallest value."`
	Max     float64  `hcl:"max" doc:"Largest value."`
	Scale   string   `hcl:"scale,optional" doc:"linear (default) or log: how the ladder and the search space the values."`
	Integer *bool    `hcl:"integer,optional" doc:"Whether the variable takes integer values only (default false)."`
	Step    *float64 `hcl:"step,optional" doc:"Distance between values: an increment on a linear scale (default 1 for integers), a ratio above 1 on a log scale (default 1 for integers: every integer). Required for a non-integer axis."`
}

// Family kinds of a family block.
var kinds = []string{tables.KindMLP, tables.KindTable, tables.KindAxis}

// Starts of a family block.
const StartAll = "all"

// maxSpace bounds the models of one family: a search proposes among them,
// and every one is a row of the stage's space output.
const maxSpace = 100_000

// catalog is a family whose models are all known up front (table, axis):
// its space is every model, ordered by size.
type catalog struct {
	name  string
	kind  string
	start string
	steps int
	// build makes the family's models; it may need nothing of the task.
	models []tables.Candidate
}

// checkFamily checks one family block, adding diagnostics at path
// family.I; it returns the family's settings for the kinds it knows.
func checkFamily(i int, f FamilyBlock, bad func(path, summary, detail string)) {
	at := func(attr string) string { return fmt.Sprintf("family.%d.%s", i, attr) }
	if !slices.Contains(kinds, f.Kind) {
		bad(fmt.Sprintf("family.%d", i), "Unknown family kind", fmt.Sprintf("A family block's label is its kind: mlp, table or axis; found %q.%s", f.Kind, suggest.Hint(f.Kind, kinds)))
		return
	}
	only := func(kind string, set map[string]bool) {
		for name, isSet := range set {
			if isSet && f.Kind != kind {
				bad(at(name), "Argument of another family kind", fmt.Sprintf("%s belongs to family %q; this family is %q. Remove it.", name, kind, f.Kind))
			}
		}
	}
	only(tables.KindMLP, map[string]bool{"depth": f.Depth != nil, "width": f.Width != nil, "include_baseline": f.IncludeBaseline != nil})
	only(tables.KindTable, map[string]bool{"path": f.Path != "", "format": f.Format != "", "name_column": f.NameColumn != "", "size": f.Size != "",
		"params_column": f.ParamsCol != "", "flops_column": f.FLOPsCol != "", "group": f.Group != ""})
	only(tables.KindAxis, map[string]bool{"axis": f.Axis != nil, "knobs": f.Knobs != nil, "params": f.Params != nil, "flops": f.FLOPs != nil})
	allStarts := []string{StartLadder, StartNarrow, StartAll}
	if f.Start != "" && !slices.Contains(allStarts, f.Start) {
		bad(at("start"), "Unknown start", fmt.Sprintf("start must be ladder, narrow or all; found %q.%s", f.Start, suggest.Hint(f.Start, allStarts)))
	}
	if f.Steps != nil && (*f.Steps < 1 || *f.Steps > maxSteps) {
		bad(at("steps"), "Invalid steps", fmt.Sprintf("steps must be between 1 and %d; found %d.", maxSteps, *f.Steps))
	}
	switch f.Kind {
	case tables.KindTable:
		if f.Path == "" {
			bad(fmt.Sprintf("family.%d", i), "Missing path", "A table family reads its models from a file: set path = \"models.csv\" (CSV, TSV, Parquet or Arrow).")
		}
		if f.Size == "" {
			bad(fmt.Sprintf("family.%d", i), "Missing size column", "A table family orders its models by a size column: set size = \"params\" (the column's name), a parameter count or another size measure.")
		}
	case tables.KindAxis:
		if f.Axis == nil {
			bad(fmt.Sprintf("family.%d", i), "Missing axis", "An axis family has one size variable: add axis \"s\" { min = 1, max = 32 } and write the knobs as expressions of s.")
		}
	}
}

// pick returns round 0's models of a family's space, which is ordered by
// size: every model, the two smallest, or steps models spread evenly in
// log size (both ends included).
func pick(space []tables.Candidate, start string, steps int) []tables.Candidate {
	switch {
	case len(space) == 0:
		return nil
	case start == StartAll || len(space) <= steps:
		return slices.Clone(space)
	case start == StartNarrow:
		return slices.Clone(space[:min(2, len(space))])
	}
	lo, hi := math.Log(sizeOf(space[0])), math.Log(sizeOf(space[len(space)-1]))
	var out []tables.Candidate
	last := -1
	for i := range steps {
		target := lo + (hi-lo)*float64(i)/float64(max(steps-1, 1))
		// The nearest model not yet picked, at or after the last pick.
		best := -1
		for j := last + 1; j < len(space); j++ {
			if best < 0 || math.Abs(math.Log(sizeOf(space[j]))-target) < math.Abs(math.Log(sizeOf(space[best]))-target) {
				best = j
			}
			if math.Log(sizeOf(space[j])) > target {
				break
			}
		}
		// Leave room for the picks still to come.
		best = min(best, len(space)-(steps-i))
		if best <= last {
			best = last + 1
		}
		out = append(out, space[best])
		last = best
	}
	return out
}

// sizeOf is what orders a family's models: parameters when known, else
// the declared size (positive, so that its log is defined).
func sizeOf(c tables.Candidate) float64 {
	if c.Params > 0 {
		return float64(c.Params)
	}
	return math.Max(c.Size, math.SmallestNonzeroFloat64)
}

// sortSpace orders a family's models by size, then name.
func sortSpace(space []tables.Candidate) {
	slices.SortStableFunc(space, func(a, b tables.Candidate) int {
		return cmp.Or(cmp.Compare(sizeOf(a), sizeOf(b)), cmp.Compare(a.Size, b.Size), strings.Compare(a.Name, b.Name))
	})
}

// checkNames refuses two families of one name, or two models of one
// name: results, decisions and replay find models by name.
func checkNames(cats []catalog) error {
	families := map[string]bool{tables.FamilyMLP: false, tables.FamilyLinear: false}
	models := map[string]string{}
	for _, c := range cats {
		if _, dup := families[c.name]; dup {
			return sdk.AttrError("family", "Duplicate family", fmt.Sprintf("Two families are named %q; give each family block its own name.", c.name))
		}
		families[c.name] = true
		for _, m := range c.models {
			if other, dup := models[m.Name]; dup {
				return sdk.AttrError("family", "Duplicate model name", fmt.Sprintf("The model name %q is used in family %q and in family %q; names must be unique across the stage.", m.Name, other, c.name))
			}
			models[m.Name] = c.name
		}
	}
	return nil
}
