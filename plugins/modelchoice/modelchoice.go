// Package modelchoice is the "model_choice" stage: it declares the families
// of models to size and picks the first models of each to try.
//
// Input port "input" is the requirements table (one row). Output port
// "candidates" holds round 0's models in the candidates table of
// sdk/tables (docs/tables.md); output port "space" holds every model of
// the table and axis families, which the resize stage proposes from.
//
// # Families
//
// A family block's label is its kind:
//
//   - family "mlp": the built-in trainer's MLP of some depths and widths,
//     and the linear baseline. Its parameters and FLOPs are counted exactly
//     from the dataset's features and classes (below), so it needs the
//     requirements stage's dataset. Without family blocks the top-level
//     depth, width, start, steps and include_baseline describe it, as
//     before families existed.
//   - family "table": the rows of a file of named models (name_column,
//     default "name"), ordered by the size column (size = "param_count");
//     params_column and flops_column name the counts when they are other
//     columns, and a group column splits the file into one family per
//     value (a zoo). Every other column travels with the candidate as a
//     knob. The file is read when the stage is configured, so validate
//     reports a bad table.
//   - family "axis": one ordered size variable, axis "s" { min, max,
//     scale, integer, step }, for any trainer; knobs is an object of HCL
//     expressions of it ({ d_model = 64 * s, layers = 2 + floor(log(s, 2))
//     }, compound scaling) that reach the trainer by name, and params and
//     flops are expressions of s and the knobs, or left to the trainer to
//     report. Its models are the axis's grid points, named FAMILY-sVALUE
//     ("convnet-s8").
//
// Within a family, models are ordered by parameters (by size when the
// trainer counts them). Round 0 of a table or axis family is its start:
// ladder (steps models, default 4, spread evenly in log size, both ends
// included), narrow (the two smallest) or all. Model names are unique
// across the stage; counts are int64, with no cap on a table's or an
// axis's sizes. Models over the requirements' max_params are dropped.
//
// An MLP candidate's row:
//
//	candidate_id    utf8     "mlp-d2-w64", or "linear-d0-w0" for the baseline
//	name            utf8     the same
//	family          utf8     mlp | linear
//	family_kind     utf8     mlp
//	size            float64  the width
//	depth, width    int32    hidden layers and their units (0 for linear)
//	params, flops   int64    exact parameter count and forward FLOPs per sample
//	knobs           utf8     {"depth":2,"width":64}
//	learning_rate, batch_size, epochs, preprocess ("none"), quantize ("none"),
//	prune_fraction (0)
//
// # Sizes
//
// With start = "ladder" (the default) the widths are `steps` values spaced
// evenly in log scale from width.min to width.max, rounded to integers and
// nudged apart so that they are distinct (both ends always included; with
// fewer integers in the range than steps, every integer of the range).
// Every depth is combined with every width.
//
// With start = "narrow" round 0 trains only the bottom of the range:
// width.min and twice width.min (width.max when that is above it), at every
// depth. It is the start for the resize stage's smallest_meeting strategy,
// with resize's max_width set to the range's top: resize then grows an
// octave at a time only while nothing meets the target, and bisects between
// the widest failing and the narrowest passing width. When the answer is
// small the search never trains the wide models, whose cost dominates a
// ladder's (an MLP of depth 2 or more has parameters growing as the square
// of the width: the top rung of a ladder over five octaves is about 30% of
// an exhaustive quarter-octave grid's parameters). When the answer lies in
// the range's top octave, that octave dominates every search's cost, and
// the ladder, whose fit can guide the search from round 0, may cost less.
// It is not the default because the resize stage learns the range's top
// from the widths trained (a narrow start shows it none, so resize's
// max_width must say it), and because knee, pareto and max_utility look
// for an optimum of the fitted curve across the whole range, which needs
// the ladder's spread.
//
// # Counting
//
// An MLP with d inputs (n_features), `depth` hidden layers of `width` units
// and k outputs is the chain of dense layers d→w→…→w→k; the linear baseline
// is the single layer d→k. k is n_classes for classification (2 for a
// binary task: a softmax over two logits, so binary and multi-class models
// are built and counted alike) and 1 for regression. For each dense layer
// in→out:
//
//	params = in*out + out          (weights and biases)
//	flops  = 2*in*out + out        (a multiply and an add per weight, an add per bias)
//
// summed over the layers. Activations and the final softmax are not counted:
// they are O(width) against O(width²) and depend on the runtime.
// Candidates whose params exceed the requirements' max_params are dropped.
package modelchoice

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/mlp"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/tables"
)

// Kind is the stage kind.
const Kind = "model_choice"

// Port names.
const (
	InputPort  = sdk.PrimaryInput
	OutputPort = "candidates"
	// SpacePort lists every model of the table and axis families, round
	// 0's and the rest, for the resize stage to propose from.
	SpacePort = "space"
)

// Starts: what round 0 trains.
const (
	StartLadder = "ladder"
	StartNarrow = "narrow"
)

var starts = []string{StartLadder, StartNarrow}

// Limits that keep counts far from int64 overflow and ladders of a size a
// search can afford.
const (
	maxDepth = 64
	maxWidth = 1 << 20
	maxSteps = 64
)

// Config is the body of a `stage "model_choice" "NAME" {}` block.
type Config struct {
	LinearOnly      bool        `hcl:"linear_only,optional" doc:"Train the linear baseline alone, no MLP (default false)."`
	Depth           []int       `hcl:"depth,optional" doc:"Numbers of hidden layers to try (default [1])."`
	Width           *WidthRange `hcl:"width,optional" doc:"Range of hidden-layer widths, { min = 4, max = 1024 } by default."`
	Start           string      `hcl:"start,optional" doc:"What round 0 trains: ladder (default: steps widths log-spaced across the range, which knee, pareto and max_utility need to see the curve's shape) or narrow (width.min and twice it only: for resize's smallest_meeting with its max_width set to width.max, which then grows an octave at a time while the target is not met, so a small answer never pays for the widest models)."`
	Steps           *int        `hcl:"steps,optional" doc:"Number of widths in the ladder, log-spaced across the range (default 6; start = \"ladder\" only)."`
	IncludeBaseline *bool       `hcl:"include_baseline,optional" doc:"Add a linear (logistic or least-squares) candidate of depth 0 and width 0 (default true)."`
	LearningRate    *float64    `hcl:"learning_rate,optional" doc:"Learning rate of every candidate (default 0.001)."`
	BatchSize       *int        `hcl:"batch_size,optional" doc:"Training batch size (default 32)."`
	Epochs          *int        `hcl:"epochs,optional" doc:"Training epochs (default 20)."`

	Families []FamilyBlock `hcl:"family,block" doc:"The families of models to size, one block each: family \"mlp\" (the built-in trainer's MLP; the top-level depth, width, steps, start and include_baseline describe it when no family block is written), family \"table\" (the named rows of a file, optionally split into families by a group column) or family \"axis\" (one ordered size variable of any trainer, with knobs as expressions of it)."`
	BaseDir  string        `hcl:"base_dir,optional" doc:"Set by the host to the pipeline file's directory; a table family's relative path is resolved against it. Users need not set it."`
}

// WidthRange is the `width = { min = 4, max = 1024 }` object.
type WidthRange struct {
	Min int `hcl:"min" doc:"Smallest width."`
	Max int `hcl:"max" doc:"Largest width."`
}

// Info describes the stage kind to the host.
func Info() sdk.StageInfo {
	return sdk.StageInfo{
		Description: "Picks the model families and the first models of each to try: MLP widths with exact parameter counts and FLOPs, rows of a table of named models, or points of any trainer's size axis.",
		InputFiles:  []string{"family.path"},
		Inputs: []sdk.Port{{
			Name:        InputPort,
			Description: "The requirements table (one row, with n_features and n_classes).",
			Schema:      tables.RequirementsSchema,
		}},
		Outputs: []sdk.Port{{
			Name:        OutputPort,
			Description: "One row per candidate model.",
			Schema:      tables.CandidatesSchema,
		}, {
			Name:        SpacePort,
			Description: "Every model of the table and axis families, ordered by family and size: what the resize stage may propose (connect it to resize's space port).",
			Schema:      tables.CandidatesSchema,
		}},
	}
}

// Register adds the model_choice stage kind to a set.
func Register(s *sdk.Set) { sdk.Register(s, Kind, Info(), New) }

// Stage emits the ladder when run.
type Stage struct {
	// family is the MLP family's (mlp or linear), "" when the stage has
	// none.
	family       string
	depths       []int
	widths       []int
	baseline     bool
	learningRate float64
	batchSize    int
	epochs       int
	// catalogs are the table and axis families, each ordered by size.
	catalogs []catalog
}

// hyper are the training settings every candidate carries.
type hyper struct {
	learningRate float64
	batchSize    int
	epochs       int
}

var _ sdk.Stage = (*Stage)(nil)

// New checks a config and returns the stage.
func New(c Config) (sdk.Stage, error) {
	var diags sdk.Diagnostics
	bad := func(path, summary, detail string) {
		diags = append(diags, sdk.Diagnostic{Severity: sdk.SeverityError, Summary: summary, Detail: detail, Path: strings.Split(path, ".")})
	}
	s := &Stage{family: tables.FamilyMLP, depths: []int{1}, baseline: true, learningRate: 1e-3, batchSize: 32, epochs: 20}
	mlpBlocks := 0
	for i, f := range c.Families {
		checkFamily(i, f, bad)
		if f.Kind != tables.KindMLP {
			continue
		}
		if mlpBlocks++; mlpBlocks > 1 {
			bad(fmt.Sprintf("family.%d", i), "Second mlp family", "A stage has at most one mlp family; list its depths in depth = [1, 2].")
			continue
		}
		// The block describes the MLP family the top-level attributes
		// describe when there is none.
		for _, a := range []struct {
			name string
			set  bool
		}{{"depth", c.Depth != nil}, {"width", c.Width != nil}, {"steps", c.Steps != nil}, {"start", c.Start != ""}, {"include_baseline", c.IncludeBaseline != nil}, {"linear_only", c.LinearOnly}} {
			if a.set {
				bad(a.name, "MLP settings twice", fmt.Sprintf("This stage has a family \"mlp\" block; set %s there, not at the top level.", a.name))
			}
		}
		c.Depth, c.Width, c.Steps, c.Start, c.IncludeBaseline = f.Depth, f.Width, f.Steps, f.Start, f.IncludeBaseline
		if f.Start == StartAll {
			bad(fmt.Sprintf("family.%d.start", i), "Unknown start", "An mlp family starts from a ladder or narrow; all is for table and axis families.")
			c.Start = ""
		}
	}
	if len(c.Families) > 0 && mlpBlocks == 0 {
		for _, a := range []struct {
			name string
			set  bool
		}{{"depth", c.Depth != nil}, {"width", c.Width != nil}, {"steps", c.Steps != nil}, {"start", c.Start != ""}, {"include_baseline", c.IncludeBaseline != nil}, {"linear_only", c.LinearOnly}} {
			if a.set {
				bad(a.name, "MLP setting without an mlp family", fmt.Sprintf("%s describes the mlp family, and this stage's family blocks declare none. Remove it, or add family \"mlp\" { %s = ... }.", a.name, a.name))
			}
		}
	}
	if c.LinearOnly {
		s.family = tables.FamilyLinear
	}
	if s.family == tables.FamilyLinear {
		mlpOnly := []struct {
			name string
			set  bool
		}{{"depth", c.Depth != nil}, {"width", c.Width != nil}, {"steps", c.Steps != nil}, {"start", c.Start != ""}, {"include_baseline", c.IncludeBaseline != nil}}
		for _, a := range mlpOnly {
			if a.set {
				bad(a.name, "Argument only for the mlp family", fmt.Sprintf("The linear family has a single candidate of depth 0 and width 0; remove %s.", a.name))
			}
		}
	}
	if c.Depth != nil {
		if len(c.Depth) == 0 {
			bad("depth", "No depth to try", "depth lists the numbers of hidden layers to try, such as [1, 2]; it is empty.")
		}
		seen := map[int]bool{}
		for i, d := range c.Depth {
			switch {
			case d < 1 || d > maxDepth:
				bad(fmt.Sprintf("depth.%d", i), "Invalid depth", fmt.Sprintf("A depth is a number of hidden layers between 1 and %d; found %d. (The depth-0 linear model is include_baseline.)", maxDepth, d))
			case seen[d]:
				bad(fmt.Sprintf("depth.%d", i), "Duplicate depth", fmt.Sprintf("Depth %d is listed twice.", d))
			}
			seen[d] = true
		}
		s.depths = slices.Clone(c.Depth)
	}
	wmin, wmax := 4, 1024
	if c.Width != nil {
		wmin, wmax = c.Width.Min, c.Width.Max
		if wmin < 1 || wmin > maxWidth {
			bad("width.min", "Invalid width", fmt.Sprintf("width.min must be between 1 and %d; found %d.", maxWidth, wmin))
		}
		if wmax < 1 || wmax > maxWidth {
			bad("width.max", "Invalid width", fmt.Sprintf("width.max must be between 1 and %d; found %d.", maxWidth, wmax))
		}
		if wmin > wmax {
			bad("width", "Empty width range", fmt.Sprintf("width.min (%d) is above width.max (%d).", wmin, wmax))
		}
	}
	steps := 6
	if c.Steps != nil {
		steps = *c.Steps
		if steps < 1 || steps > maxSteps {
			bad("steps", "Invalid steps", fmt.Sprintf("steps must be between 1 and %d; found %d.", maxSteps, steps))
		}
	}
	start := StartLadder
	if c.Start != "" {
		start = c.Start
		switch {
		case !slices.Contains(starts, c.Start):
			bad("start", "Unknown start", fmt.Sprintf("start must be ladder or narrow; found %q.%s", c.Start, suggest.Hint(c.Start, starts)))
		case c.Start == StartNarrow && c.Steps != nil:
			bad("steps", "Steps without a ladder", "steps counts the widths of the ladder; with start = \"narrow\" round 0 trains width.min and twice it, and the resize stage proposes the rest. Remove steps or set start = \"ladder\".")
		}
	}
	if c.IncludeBaseline != nil {
		s.baseline = *c.IncludeBaseline
	}
	if c.LearningRate != nil {
		s.learningRate = *c.LearningRate
		if !(s.learningRate > 0 && s.learningRate < math.Inf(1)) {
			bad("learning_rate", "Invalid learning rate", fmt.Sprintf("learning_rate must be a positive number; found %g.", s.learningRate))
		}
	}
	if c.BatchSize != nil {
		s.batchSize = *c.BatchSize
		if s.batchSize < 1 || s.batchSize > math.MaxInt32 {
			bad("batch_size", "Invalid batch size", fmt.Sprintf("batch_size must be at least 1; found %d.", s.batchSize))
		}
	}
	if c.Epochs != nil {
		s.epochs = *c.Epochs
		if s.epochs < 1 || s.epochs > math.MaxInt32 {
			bad("epochs", "Invalid epochs", fmt.Sprintf("epochs must be at least 1; found %d.", s.epochs))
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	if len(c.Families) > 0 && mlpBlocks == 0 {
		s.family = ""
	}
	hp := hyper{s.learningRate, s.batchSize, s.epochs}
	for i, f := range c.Families {
		path := fmt.Sprintf("family.%d", i)
		cat := catalog{kind: f.Kind, start: f.Start, steps: 4}
		if f.Steps != nil {
			cat.steps = *f.Steps
		}
		switch f.Kind {
		case tables.KindAxis:
			space, err := axisSpace(f, path, hp)
			if err != nil {
				return nil, err
			}
			cat.name, cat.models = space[0].Family, space
			s.catalogs = append(s.catalogs, cat)
		case tables.KindTable:
			groups, err := tableSpace(f, path, c.BaseDir, hp)
			if err != nil {
				return nil, err
			}
			for _, g := range groups {
				cg := cat
				cg.name, cg.models = g[0].Family, g
				s.catalogs = append(s.catalogs, cg)
			}
		}
	}
	if err := checkNames(s.catalogs); err != nil {
		return nil, err
	}
	if s.family == tables.FamilyMLP {
		s.widths = Ladder(wmin, wmax, steps)
		if start == StartNarrow {
			s.widths = Narrow(wmin, wmax)
		}
		slices.Sort(s.depths)
	}
	return s, nil
}

// Ladder returns up to steps distinct integer widths from lo to hi,
// log-spaced: rounded values of lo*(hi/lo)^(i/(steps-1)), each raised to
// one above its predecessor when rounding made them collide, and lowered
// when needed to leave room for the rest below hi. A single step is the
// geometric middle of the range.
func Ladder(lo, hi, steps int) []int {
	if lo > hi || steps < 1 || lo < 1 {
		return nil
	}
	if n := hi - lo + 1; steps >= n {
		out := make([]int, n)
		for i := range out {
			out[i] = lo + i
		}
		return out
	}
	if steps == 1 {
		return []int{int(math.Round(math.Sqrt(float64(lo) * float64(hi))))}
	}
	out := make([]int, steps)
	ratio := math.Log(float64(hi) / float64(lo))
	for i := range out {
		v := int(math.Round(float64(lo) * math.Exp(ratio*float64(i)/float64(steps-1))))
		floor, ceiling := lo, hi-(steps-1-i)
		if i > 0 {
			floor = out[i-1] + 1
		}
		out[i] = min(max(v, floor), ceiling)
	}
	return out
}

// Narrow returns the widths of a narrow start: lo and 2·lo, or hi when
// 2·lo is above it (lo alone when lo == hi).
func Narrow(lo, hi int) []int {
	if lo < 1 || lo > hi {
		return nil
	}
	if lo == hi {
		return []int{lo}
	}
	return []int{lo, min(2*lo, hi)}
}

// Candidates builds the ladder for a dataset with the given inputs and
// outputs, before any max_params filter.
func (s *Stage) Candidates(inputs, outputs int64) []tables.Candidate {
	var out []tables.Candidate
	add := func(family string, depth, width int) {
		params, flops := mlp.Count(mlp.LayerSizes(inputs, int64(depth), int64(width), outputs))
		name := mlp.Name(family, depth, width)
		out = append(out, tables.Candidate{
			ID: name, Name: name, Kind: tables.KindMLP, Size: float64(width), Knobs: mlp.Knobs(depth, width),
			Family: family, Depth: int32(depth), Width: int32(width),
			Params: params, FLOPs: flops,
			LearningRate: s.learningRate, BatchSize: int32(s.batchSize), Epochs: int32(s.epochs),
			Preprocess: "none", Quantize: "none",
		})
	}
	if s.baseline || s.family == tables.FamilyLinear {
		add(tables.FamilyLinear, 0, 0)
	}
	if s.family == tables.FamilyMLP {
		for _, d := range s.depths {
			for _, w := range s.widths {
				add(tables.FamilyMLP, d, w)
			}
		}
	}
	return out
}

// readRequirements reads the one requirements row from the input port.
func readRequirements(in sdk.Inputs) (tables.Requirements, error) {
	r, err := in.Reader(InputPort)
	if err != nil {
		return tables.Requirements{}, err
	}
	var rows []tables.Requirements
	for r.Next() {
		b := r.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		row, err := tables.ReadRequirements(b)
		if err != nil {
			return tables.Requirements{}, &sdk.InputError{Port: InputPort, Row: -1, Err: err}
		}
		rows = append(rows, row)
	}
	if err := r.Err(); err != nil {
		return tables.Requirements{}, fmt.Errorf("read port %s: %w", InputPort, err)
	}
	if len(rows) != 1 {
		return tables.Requirements{}, &sdk.InputError{Port: InputPort, Row: -1, Err: fmt.Errorf("the requirements table has %d rows, want 1", len(rows))}
	}
	return rows[0], nil
}

// mlpCandidates counts the MLP family's ladder for the task's inputs and
// outputs, which only the MLP family needs.
func (s *Stage) mlpCandidates(req tables.Requirements, inputErr func(string, error) error) ([]tables.Candidate, error) {
	if req.Features == nil || *req.Features < 1 {
		return nil, inputErr("n_features", errors.New("the number of features is unknown or zero: the mlp family counts its parameters from the dataset, so connect a dataset to the requirements stage (dataset = dataset.NAME)"))
	}
	if req.Task != tables.Classification && req.Task != tables.Regression {
		return nil, inputErr("task", fmt.Errorf("task %q is neither classification nor regression", req.Task))
	}
	var classes int64
	if req.Task == tables.Classification {
		if req.Classes == nil || *req.Classes < 2 {
			return nil, inputErr("n_classes", errors.New("a classification task needs n_classes of 2 or more: connect a dataset to the requirements stage"))
		}
		classes = int64(*req.Classes)
	}
	return s.Candidates(int64(*req.Features), mlp.Outputs(req.Task, classes)), nil
}

// Run reads the requirements and writes the candidates.
func (s *Stage) Run(ctx context.Context, in sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer(OutputPort)
	if err != nil {
		return err
	}
	req, err := readRequirements(in)
	if err != nil {
		return err
	}
	inputErr := func(column string, err error) error {
		return &sdk.InputError{Port: InputPort, Row: 0, Column: column, Err: err}
	}
	var all []tables.Candidate
	if s.family != "" {
		mlps, err := s.mlpCandidates(req, inputErr)
		if err != nil {
			return err
		}
		all = mlps
	}
	// Catalog families: round 0 is a pick of each family's models; the
	// space port lists them all, for the search to propose from.
	var space []tables.Candidate
	for _, c := range s.catalogs {
		models := c.models
		if req.MaxParams != nil {
			limit := *req.MaxParams
			models = slices.DeleteFunc(slices.Clone(models), func(m tables.Candidate) bool { return m.Params > limit })
		}
		space = append(space, models...)
		all = append(all, pick(models, c.start, c.steps)...)
	}
	if sw, err := out.Writer(SpacePort); err == nil {
		rec := tables.BuildCandidates(sdk.Allocator(ctx), space)
		err := sw.Write(rec)
		rec.Release()
		if err != nil {
			return fmt.Errorf("write port %s: %w", SpacePort, err)
		}
	}
	kept := all
	if req.MaxParams != nil {
		limit := *req.MaxParams
		kept = slices.DeleteFunc(slices.Clone(all), func(c tables.Candidate) bool { return c.Params > limit })
		if len(kept) == 0 {
			if len(all) == 0 {
				return inputErr("max_params", fmt.Errorf("every model of every family has more than max_params = %d parameters: raise max_params", limit))
			}
			smallest := slices.MinFunc(all, func(a, b tables.Candidate) int { return cmp.Compare(a.Params, b.Params) })
			return inputErr("max_params", fmt.Errorf("every candidate has more than max_params = %d parameters; the smallest, %s, has %d: lower width.min or depth, or raise max_params", limit, smallest.Name, smallest.Params))
		}
		if dropped := len(all) - len(kept); dropped > 0 {
			sdk.Logger(ctx).Info("candidates over max_params dropped", "dropped", dropped, "max_params", limit)
		}
	}
	rec := tables.BuildCandidates(sdk.Allocator(ctx), kept)
	defer rec.Release()
	if err := w.Write(rec); err != nil {
		return fmt.Errorf("write port %s: %w", OutputPort, err)
	}
	return nil
}
