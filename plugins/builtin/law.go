package builtin

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/fit"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/suggest"
	"github.com/sweetspot-ml/sweetspot/plugins/internal/tablefile"
)

// The law tool is another mode of the built-in executable: `sweetspot law
// fit` starts its own executable with LawToolArg to fit the scaling law
// L(N, D) = E + A/N^alpha + B/D^beta on a table of measured runs. The
// fitter (plugins/internal/fit) and the table reader
// (plugins/internal/tablefile) are plugin-side packages, which Go's
// internal rule keeps out of the host; reading an outside table is
// plugin-side work, as `sweetspot model predict`'s is. The tool reads the
// file named in its arguments, writes the report (text or JSON) to
// stdout, and a failure as one message on stderr with exit status
// LawExitInput (the file or the flags are at fault) or 1 (the fit failed).
//
//	fit [--size COL] [--data COL] [--metric COL] [--run COL] [--accuracy]
//	    [--budget-flops C] [--flops-per-param-sample K] [--target V]
//	    [--confidence P] [--bootstrap N] [--seed S] [--input-format F]
//	    [--json] FILE
const LawToolArg = "__law"

// LawExitInput is the law tool's exit status when the input is at fault.
const LawExitInput = 2

// Column names tried, in order, when a flag does not name the column: the
// names sweeps commonly write.
var (
	lawSizeNames     = []string{"params", "N", "n_params"}
	lawDataNames     = []string{"tokens", "data", "D", "samples"}
	lawLossNames     = []string{"loss", "final_loss"}
	lawAccuracyNames = []string{"accuracy", "acc", "final_accuracy"}
)

// lawParams is the number of the law's parameters (E, A, alpha, B, beta).
const lawParams = 5

// LawConfig is what `law fit` was asked.
type LawConfig struct {
	Path, Format            string
	Size, Data, Metric, Run string
	Accuracy                bool
	Budget, K, Target       float64
	HasBudget, HasTarget    bool
	Confidence              float64
	Bootstrap               int
	Seed                    uint64
	JSON                    bool
}

// DefaultLawConfig holds the defaults of `law fit`'s flags, for the
// host's flags and the tool's alike.
func DefaultLawConfig() LawConfig {
	return LawConfig{K: 6, Confidence: 0.9, Bootstrap: 200, Seed: 1}
}

// ToolArgs encodes c as the law tool's arguments (after LawToolArg), the
// form lawTool parses back.
func (c LawConfig) ToolArgs() []string {
	args := []string{"fit",
		"--confidence", strconv.FormatFloat(c.Confidence, 'g', -1, 64),
		"--bootstrap", strconv.Itoa(c.Bootstrap),
		"--seed", strconv.FormatUint(c.Seed, 10),
		"--flops-per-param-sample", strconv.FormatFloat(c.K, 'g', -1, 64),
	}
	for _, f := range []struct{ flag, v string }{{"size", c.Size}, {"data", c.Data}, {"metric", c.Metric}, {"run", c.Run}, {"input-format", c.Format}} {
		if f.v != "" {
			args = append(args, "--"+f.flag, f.v)
		}
	}
	if c.HasBudget {
		args = append(args, "--budget-flops", strconv.FormatFloat(c.Budget, 'g', -1, 64))
	}
	if c.HasTarget {
		args = append(args, "--target", strconv.FormatFloat(c.Target, 'g', -1, 64))
	}
	if c.Accuracy {
		args = append(args, "--accuracy")
	}
	if c.JSON {
		args = append(args, "--json")
	}
	// "--" keeps a file named like a flag a file.
	return append(args, "--", c.Path)
}

// inputError marks a problem of the file or the flags.
type inputError struct{ error }

func (e inputError) Unwrap() error { return e.error }

// LawTool runs the law tool with args (after LawToolArg) and returns the
// process's exit status.
func LawTool(args []string, stdout, stderr io.Writer) int {
	err := lawTool(args, stdout)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, err)
	var ie inputError
	if errors.As(err, &ie) {
		return LawExitInput
	}
	return 1
}

func lawTool(args []string, stdout io.Writer) error {
	c, err := parseLawArgs(args)
	if err != nil {
		return err
	}
	rep, err := FitLaw(context.Background(), c)
	if err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	_, err = io.WriteString(stdout, rep.Text())
	return err
}

// parseLawArgs reads the law tool's arguments, as ToolArgs writes them.
func parseLawArgs(args []string) (LawConfig, error) {
	if len(args) == 0 || args[0] != "fit" {
		return LawConfig{}, inputError{errors.New("law tool: say fit")}
	}
	c := DefaultLawConfig()
	fs := flag.NewFlagSet("fit", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Format, "input-format", "", "")
	fs.StringVar(&c.Size, "size", "", "")
	fs.StringVar(&c.Data, "data", "", "")
	fs.StringVar(&c.Metric, "metric", "", "")
	fs.StringVar(&c.Run, "run", "", "")
	fs.BoolVar(&c.Accuracy, "accuracy", false, "")
	fs.Float64Var(&c.Budget, "budget-flops", 0, "")
	fs.Float64Var(&c.K, "flops-per-param-sample", c.K, "")
	fs.Float64Var(&c.Target, "target", 0, "")
	fs.Float64Var(&c.Confidence, "confidence", c.Confidence, "")
	fs.IntVar(&c.Bootstrap, "bootstrap", c.Bootstrap, "")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "")
	fs.BoolVar(&c.JSON, "json", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		return LawConfig{}, inputError{fmt.Errorf("law fit: %w", err)}
	}
	fs.Visit(func(f *flag.Flag) {
		c.HasBudget = c.HasBudget || f.Name == "budget-flops"
		c.HasTarget = c.HasTarget || f.Name == "target"
	})
	if fs.NArg() != 1 {
		return LawConfig{}, inputError{errors.New("law fit: name one table file")}
	}
	c.Path = fs.Arg(0)
	return c, nil
}

// CheckLawFlags checks the flags that need no file, so that the host can
// refuse them before starting the tool.
func CheckLawFlags(c LawConfig) error {
	switch {
	case !(c.Confidence > 0 && c.Confidence < 1):
		return fmt.Errorf("--confidence %g: want a level between 0 and 1, such as 0.9", c.Confidence)
	case c.Bootstrap < 0:
		return fmt.Errorf("--bootstrap %d: want a number of bootstrap draws, or 0 for none (no intervals)", c.Bootstrap)
	case c.HasBudget && !(c.Budget > 0 && !math.IsInf(c.Budget, 0)):
		return fmt.Errorf("--budget-flops %g: want a positive compute budget, such as 1e18", c.Budget)
	case !(c.K > 0 && !math.IsInf(c.K, 0)):
		return fmt.Errorf("--flops-per-param-sample %g: want a positive cost per parameter and sample (6 for a forward and backward pass)", c.K)
	case c.HasTarget && (math.IsNaN(c.Target) || math.IsInf(c.Target, 0)):
		return fmt.Errorf("--target %g: want a finite loss (or accuracy, with --accuracy)", c.Target)
	case c.HasTarget && c.Accuracy && !(c.Target > 0 && c.Target < 1):
		return fmt.Errorf("--target %g: an accuracy target lies between 0 and 1", c.Target)
	case c.HasTarget && !c.Accuracy && !(c.Target > 0):
		return fmt.Errorf("--target %g: a loss target is positive", c.Target)
	}
	return nil
}

// Num is a number in the JSON report. The only value that is not finite
// is the upper end of an interval open above (+Inf: some bootstrap laws
// never reach a target), written as null and read back as +Inf.
type Num float64

// UnmarshalJSON reads null as +Inf.
func (n *Num) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Num(math.Inf(1))
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	*n = Num(f)
	return err
}

// MarshalJSON writes a finite number as is, anything else as null.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// Estimate is a fitted value with its interval.
type Estimate struct {
	Value Num `json:"value"`
	Lo    Num `json:"lo"`
	Hi    Num `json:"hi"`
}

func estimate(v float64, ci fit.Interval) Estimate {
	return Estimate{Value: Num(v), Lo: Num(ci.Lo), Hi: Num(ci.Hi)}
}

// LawColumns are the columns a fit read.
type LawColumns struct {
	Size   string `json:"size"`
	Data   string `json:"data"`
	Metric string `json:"metric"`
	Run    string `json:"run,omitempty"`
	// Guessed lists the roles whose column was found by its common name
	// rather than named by a flag.
	Guessed []string `json:"guessed,omitempty"`
}

// LawReport is the result of `law fit`, as --json prints it.
type LawReport struct {
	File    string     `json:"file"`
	Columns LawColumns `json:"columns"`
	// Metric is "loss" or "accuracy" (the law fitted to 1 − accuracy).
	Metric string `json:"metric"`
	Form   string `json:"form"`
	Rows   int    `json:"rows"`
	Runs   int    `json:"runs"`
	Sizes  int    `json:"distinct_sizes"`
	Datas  int    `json:"distinct_data"`
	// MinN .. MaxD are the range measured, against which a budget's
	// answer is an extrapolation or not.
	MinN       Num     `json:"min_size"`
	MaxN       Num     `json:"max_size"`
	MinD       Num     `json:"min_data"`
	MaxD       Num     `json:"max_data"`
	Confidence float64 `json:"confidence"`
	Bootstrap  int     `json:"bootstrap"`
	Seed       uint64  `json:"seed"`
	Law        struct {
		E     Estimate `json:"E"`
		A     Estimate `json:"A"`
		Alpha Estimate `json:"alpha"`
		B     Estimate `json:"B"`
		Beta  Estimate `json:"beta"`
	} `json:"law"`
	Quality struct {
		RMSLE      Num  `json:"rmse_log"`
		Huber      Num  `json:"huber_objective"`
		HuberDelta Num  `json:"huber_delta"`
		Converged  bool `json:"converged"`
	} `json:"fit_quality"`
	Budget *LawBudget `json:"budget,omitempty"`
	Target *LawTarget `json:"target,omitempty"`
}

// LawBudget is the compute-optimal allocation for a budget.
type LawBudget struct {
	FLOPs               Num      `json:"flops"`
	FLOPsPerParamSample Num      `json:"flops_per_param_sample"`
	N                   Estimate `json:"N"`
	D                   Estimate `json:"D"`
	Predicted           Estimate `json:"predicted"`
	// Replicates counts the bootstrap laws that had an optimum.
	Replicates int `json:"replicates"`
}

// LawTarget is the least compute reaching a target.
type LawTarget struct {
	Value               Num      `json:"value"`
	FLOPsPerParamSample Num      `json:"flops_per_param_sample"`
	FLOPs               Estimate `json:"flops"`
	N                   Estimate `json:"N"`
	D                   Estimate `json:"D"`
}

// FitLaw reads the table c names, fits the law and answers the budget and
// target questions asked.
func FitLaw(ctx context.Context, c LawConfig) (*LawReport, error) {
	if err := CheckLawFlags(c); err != nil {
		return nil, inputError{err}
	}
	runs, err := readLawTable(ctx, c)
	if err != nil {
		return nil, err
	}
	opts := fit.ScalingOptions{Confidence: c.Confidence, Bootstrap: c.Bootstrap, Seed: c.Seed, Run: runs.run}
	if c.Bootstrap == 0 {
		opts.Bootstrap = -1
	}
	if c.Accuracy {
		one := 1.0
		opts.QMax = &one
	}
	f, err := fit.FitScaling(runs.n, runs.d, runs.y, opts)
	if errors.Is(err, fit.ErrTooFewRuns) {
		return nil, inputError{fmt.Errorf("%s: %s", c.Path, runs.tooFew())}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	rep := &LawReport{
		File: c.Path, Columns: runs.cols, Metric: "loss",
		Form: "L(N, D) = E + A/N^alpha + B/D^beta",
		Rows: len(runs.n), Runs: f.Runs, Sizes: f.SizesN, Datas: f.SizesD,
		Confidence: c.Confidence, Bootstrap: len(f.Replicates), Seed: c.Seed,
	}
	if c.Accuracy {
		rep.Metric = "accuracy"
		rep.Form = "accuracy(N, D) = 1 - (E + A/N^alpha + B/D^beta)"
	}
	rep.MinN, rep.MaxN = Num(runs.minN), Num(runs.maxN)
	rep.MinD, rep.MaxD = Num(runs.minD), Num(runs.maxD)
	rep.Law.E = estimate(f.E, f.ECI)
	rep.Law.A = estimate(f.A, f.ACI)
	rep.Law.Alpha = estimate(f.Alpha, f.AlphaCI)
	rep.Law.B = estimate(f.B, f.BCI)
	rep.Law.Beta = estimate(f.Beta, f.BetaCI)
	rep.Quality.RMSLE = Num(f.RMSLE)
	rep.Quality.Huber = Num(f.Objective)
	rep.Quality.HuberDelta = Num(f.Delta)
	rep.Quality.Converged = f.Converged
	if c.HasBudget {
		o, err := f.ComputeOptimal(c.Budget, c.K)
		if err != nil {
			return nil, fmt.Errorf("%s: --budget-flops: %w", c.Path, err)
		}
		rep.Budget = &LawBudget{
			FLOPs: Num(c.Budget), FLOPsPerParamSample: Num(c.K),
			N: estimate(o.N, o.NCI), D: estimate(o.D, o.DCI), Predicted: estimate(o.Loss, o.LossCI),
			Replicates: o.Replicates,
		}
	}
	if c.HasTarget {
		o, err := f.ComputeFor(c.Target, c.K)
		if err != nil {
			return nil, fmt.Errorf("%s: --target: %w", c.Path, err)
		}
		rep.Target = &LawTarget{
			Value: Num(c.Target), FLOPsPerParamSample: Num(c.K),
			FLOPs: estimate(o.C, o.CCI), N: estimate(o.N, o.NCI), D: estimate(o.D, o.DCI),
		}
	}
	return rep, nil
}

// lawRuns are the measured points of a table.
type lawRuns struct {
	path                   string
	n, d, y                []float64
	run                    []int
	runs                   int
	cols                   LawColumns
	minN, maxN, minD, maxD float64
}

func (r *lawRuns) tooFew() string {
	sizes, datas := distinct(r.n), distinct(r.d)
	return fmt.Sprintf("%d runs (%d rows) with %d distinct sizes and %d distinct data amounts: the law has %d parameters (E, A, alpha, B, beta), and fitting it takes at least %d runs, 3 distinct sizes and 3 distinct data amounts",
		r.runs, len(r.n), sizes, datas, lawParams, lawParams+1)
}

func distinct(v []float64) int {
	seen := map[float64]bool{}
	for _, x := range v {
		seen[x] = true
	}
	return len(seen)
}

// pickColumn returns the column named by flag, or the first of names the
// table has (exactly, else up to case). A missing column is an error of
// the header that lists the file's columns, with the closest one.
func pickColumn(t *tablefile.Table, flagName, given string, names []string, role string, cols *LawColumns) (string, error) {
	listed := "The file's columns: " + strings.Join(t.Names, ", ") + "."
	if given != "" {
		if col := t.Column(given); col != nil {
			if col.Dup {
				return "", inputError{fmt.Errorf("%s: --%s %q: the file has two columns of that name; rename one", t.AtHeader(), flagName, given)}
			}
			return given, nil
		}
		return "", inputError{fmt.Errorf("%s: --%s %q: the table has no such column.%s %s", t.AtHeader(), flagName, given, suggest.Hint(given, t.Names), listed)}
	}
	for _, n := range names {
		if col := t.Column(n); col != nil {
			if col.Dup {
				return "", inputError{fmt.Errorf("%s: the file has two columns named %q, the %s column's name; rename one, or name another with --%s", t.AtHeader(), n, role, flagName)}
			}
			cols.Guessed = append(cols.Guessed, role)
			return n, nil
		}
	}
	for _, n := range names {
		for _, have := range t.Names {
			if strings.EqualFold(n, have) {
				cols.Guessed = append(cols.Guessed, role)
				return have, nil
			}
		}
	}
	hint := ""
	for _, n := range names {
		if s := suggest.Name(n, t.Names); s != "" {
			hint = fmt.Sprintf(" Did you mean --%s %s?", flagName, s)
			break
		}
	}
	return "", inputError{fmt.Errorf("%s: no %s column: looked for %s; name it with --%s.%s %s",
		t.AtHeader(), role, strings.Join(names, ", "), flagName, hint, listed)}
}

// readLawTable reads the runs of c's table: every problem of the file at
// once, each with its file, line and column.
func readLawTable(ctx context.Context, c LawConfig) (*lawRuns, error) {
	t, err := tablefile.Read(ctx, c.Path, c.Format, memory.DefaultAllocator)
	if err != nil {
		return nil, inputError{err}
	}
	r := &lawRuns{path: c.Path}
	metricNames, metricRole := lawLossNames, "loss"
	if c.Accuracy {
		metricNames, metricRole = lawAccuracyNames, "accuracy"
	}
	var errs []string
	pick := func(flagName, given string, names []string, role string) string {
		col, err := pickColumn(t, flagName, given, names, role, &r.cols)
		if err != nil {
			errs = append(errs, err.Error())
		}
		return col
	}
	r.cols.Size = pick("size", c.Size, lawSizeNames, "size")
	r.cols.Data = pick("data", c.Data, lawDataNames, "data")
	r.cols.Metric = pick("metric", c.Metric, metricNames, metricRole)
	if c.Run != "" {
		r.cols.Run = pick("run", c.Run, nil, "run")
	}
	if len(errs) > 0 {
		return nil, inputError{errors.New(strings.Join(errs, "\n"))}
	}
	if t.Rows == 0 {
		return nil, inputError{fmt.Errorf("%s: the table has no rows; each row is a measured run", t.AtHeader())}
	}
	rep := tablefile.NewReport(t)
	numbers := func(col, what string, ok func(float64) bool, bad func(float64) (string, string)) []float64 {
		v, ps := t.Numbers(col)
		rep.Extend(ps)
		if v == nil {
			return nil
		}
		faulty := map[int]bool{}
		for _, p := range ps {
			for _, row := range p.Rows {
				faulty[row] = true
			}
		}
		cl := t.Column(col)
		for i, x := range v {
			switch {
			case math.IsNaN(x) && cl.NullNumber(i):
				rep.Add(i, col, "Missing value", fmt.Sprintf("the run has no %s; every run needs its size, its data and its %s.", what, r.cols.Metric))
			case math.IsNaN(x):
				// Numbers named it; another cell of the same problem
				// may be past MaxListed.
			case !ok(x):
				s, d := bad(x)
				rep.Add(i, col, s, d)
			}
		}
		return v
	}
	positive := func(what string) func(float64) (string, string) {
		return func(x float64) (string, string) {
			return "Value not positive", fmt.Sprintf("the value is %s, and %s must be positive (the law takes its power).", fmtNum(x), what)
		}
	}
	isPositive := func(x float64) bool { return x > 0 }
	r.n = numbers(r.cols.Size, "size", isPositive, positive("a size (parameter count)"))
	r.d = numbers(r.cols.Data, "data amount", isPositive, positive("the data seen (samples or tokens)"))
	if c.Accuracy {
		r.y = numbers(r.cols.Metric, "accuracy", func(x float64) bool { return x >= 0 && x <= 1 }, func(x float64) (string, string) {
			return "Accuracy out of range", fmt.Sprintf("the accuracy is %s; --accuracy takes fractions between 0 and 1 (write 0.875, not 87.5).", fmtNum(x))
		})
	} else {
		r.y = numbers(r.cols.Metric, "loss", isPositive, func(x float64) (string, string) {
			return "Loss not positive", fmt.Sprintf("the loss is %s; the law fits log losses, which need positive values (for an accuracy, say --accuracy).", fmtNum(x))
		})
	}
	if r.cols.Run != "" {
		ids := map[string]int{}
		cl := t.Column(r.cols.Run)
		r.run = make([]int, t.Rows)
		for i := range t.Rows {
			var key string
			switch {
			case cl.NullNumber(i) && cl.Text(i) == "":
				rep.Add(i, r.cols.Run, "Missing run id", "the row names no run; with --run every row needs the id of the run it was measured on.")
				continue
			case cl.IsText():
				key = cl.Text(i)
			default:
				v, _ := cl.Number(i)
				key = fmtNum(v)
			}
			id, ok := ids[key]
			if !ok {
				id = len(ids)
				ids[key] = id
			}
			r.run[i] = id
		}
		r.runs = len(ids)
	} else {
		r.runs = t.Rows
	}
	if ps := rep.Problems(); len(ps) > 0 {
		return nil, inputError{ps}
	}
	r.minN, r.maxN = minMax(r.n)
	r.minD, r.maxD = minMax(r.d)
	if r.runs < lawParams+1 {
		return nil, inputError{fmt.Errorf("%s: %s", c.Path, r.tooFew())}
	}
	return r, nil
}

func minMax(v []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range v {
		lo, hi = math.Min(lo, x), math.Max(hi, x)
	}
	return lo, hi
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// Text is the report as `law fit` prints it without --json.
func (r *LawReport) Text() string {
	var b strings.Builder
	metric := r.Metric
	runsNote := "each row a run"
	if r.Columns.Run != "" {
		runsNote = fmt.Sprintf("rows grouped into runs by %q", r.Columns.Run)
	}
	fmt.Fprintf(&b, "%s: %d rows, %d runs (%s), %d sizes from %s to %s, %d data amounts from %s to %s\n",
		r.File, r.Rows, r.Runs, runsNote, r.Sizes, fmtNum(float64(r.MinN)), fmtNum(float64(r.MaxN)), r.Datas, fmtNum(float64(r.MinD)), fmtNum(float64(r.MaxD)))
	fmt.Fprintf(&b, "columns: size %q, data %q, %s %q", r.Columns.Size, r.Columns.Data, metric, r.Columns.Metric)
	if len(r.Columns.Guessed) > 0 {
		fmt.Fprintf(&b, " (found by name: %s; name others with --size, --data, --metric)", strings.Join(r.Columns.Guessed, ", "))
	}
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "%s\n", r.Form)
	if r.Bootstrap > 0 {
		fmt.Fprintf(&b, "%g%% intervals from %d bootstrap draws over runs (seed %d)\n", 100*r.Confidence, r.Bootstrap, r.Seed)
	} else {
		b.WriteString("no intervals (--bootstrap 0)\n")
	}
	row := func(name string, e Estimate) {
		fmt.Fprintf(&b, "  %-6s %-10s %s\n", name, fmtNum(float64(e.Value)), interval(e))
	}
	row("E", r.Law.E)
	row("A", r.Law.A)
	row("alpha", r.Law.Alpha)
	row("B", r.Law.B)
	row("beta", r.Law.Beta)
	conv, fitted := "converged", "loss"
	if r.Metric == "accuracy" {
		fitted = "error rate"
	}
	if !r.Quality.Converged {
		conv = "NOT converged: treat the law with care"
	}
	fmt.Fprintf(&b, "fit: RMSE of log residuals %s (about %.2g%% of the %s), Huber objective %s (delta %s), %s\n",
		fmtNum(float64(r.Quality.RMSLE)), 100*float64(r.Quality.RMSLE), fitted,
		fmtNum(float64(r.Quality.Huber)), fmtNum(float64(r.Quality.HuberDelta)), conv)
	if g := r.Budget; g != nil {
		fmt.Fprintf(&b, "\nbudget %s FLOPs (C = %s N D):\n", fmtNum(float64(g.FLOPs)), fmtNum(float64(g.FLOPsPerParamSample)))
		fmt.Fprintf(&b, "  N*     %-10s %s%s\n", fmtNum(float64(g.N.Value)), interval(g.N), beyond(float64(g.N.Value), float64(r.MinN), float64(r.MaxN), "sizes"))
		fmt.Fprintf(&b, "  D*     %-10s %s%s\n", fmtNum(float64(g.D.Value)), interval(g.D), beyond(float64(g.D.Value), float64(r.MinD), float64(r.MaxD), "data amounts"))
		fmt.Fprintf(&b, "  %-6s %-10s %s\n", metric, fmtNum(float64(g.Predicted.Value)), interval(g.Predicted))
	}
	if g := r.Target; g != nil {
		fmt.Fprintf(&b, "\ntarget %s %s: the least compute reaching it (C = %s N D):\n", metric, fmtNum(float64(g.Value)), fmtNum(float64(g.FLOPsPerParamSample)))
		fmt.Fprintf(&b, "  FLOPs  %-10s %s\n", fmtNum(float64(g.FLOPs.Value)), interval(g.FLOPs))
		fmt.Fprintf(&b, "  N      %-10s %s%s\n", fmtNum(float64(g.N.Value)), interval(g.N), beyond(float64(g.N.Value), float64(r.MinN), float64(r.MaxN), "sizes"))
		fmt.Fprintf(&b, "  D      %-10s %s%s\n", fmtNum(float64(g.D.Value)), interval(g.D), beyond(float64(g.D.Value), float64(r.MinD), float64(r.MaxD), "data amounts"))
	}
	return b.String()
}

func interval(e Estimate) string {
	hi := fmtNum(float64(e.Hi))
	if math.IsInf(float64(e.Hi), 1) {
		hi = "inf (some bootstrap laws never get there)"
	}
	return fmt.Sprintf("[%s, %s]", fmtNum(float64(e.Lo)), hi)
}

// beyond flags an answer outside the range measured: the law is then an
// extrapolation, which holds only as far as the law does.
func beyond(v, lo, hi float64, what string) string {
	switch {
	case v > hi:
		return fmt.Sprintf("  (%.3gx the largest of the %s measured: extrapolated)", v/hi, what)
	case v < lo:
		return fmt.Sprintf("  (below the %s measured: extrapolated)", what)
	}
	return ""
}
