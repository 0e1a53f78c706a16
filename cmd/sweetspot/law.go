package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/plugins/builtin"
)

// `sweetspot law fit` fits the scaling law on a table of runs the user
// measured. The fitter and the table reader live in plugins/internal,
// which Go's internal rule keeps from the host; the host parses the
// flags, then starts this executable again in its law tool mode
// (builtin.LawTool), as `model predict` does with its model tool, so that
// reading an outside table stays on the plugin side of the wall.

func newLawCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "law",
		Short: "Fit the scaling law of loss against size and data on measured runs",
	}
	cmd.AddCommand(newLawFitCmd())
	return cmd
}

func newLawFitCmd() *cobra.Command {
	c := builtin.DefaultLawConfig()
	cmd := &cobra.Command{
		Use:   "fit FILE",
		Short: "Fit L(N, D) = E + A/N^alpha + B/D^beta on a table of runs",
		Long: `Fit fits the law of loss against model size N and data seen D,

  L(N, D) = E + A/N^alpha + B/D^beta,

on a table of runs already measured (your own sweeps): one row per run
with its size, the data it saw and its final loss. The fit minimises the
Huber loss of the log residuals from several starts (L-BFGS); the
intervals come from a bootstrap over runs (rows are runs, unless --run
groups rows of one run, such as checkpoints of one training). It prints
E, A, alpha, B and beta with their intervals and the fit's quality (the
RMSE of the log residuals, about the relative error, and the Huber
objective).

FILE is CSV or TSV with a header line (optionally gzip-compressed),
Parquet, or Arrow IPC, told by its name (or --input-format).

Columns are found by name unless named: the size is params, N or
n_params; the data is tokens, data, D or samples; the loss is loss or
final_loss (with --accuracy: accuracy, acc or final_accuracy). The output
says which were used. A row whose size or data is not a positive number,
or whose loss is missing, is named by file, line and column.

The law needs at least 6 runs with 3 distinct sizes and 3 distinct data
amounts; intervals read off a handful of runs are wide, as they should be.
Answers beyond the sizes and data measured are extrapolations, and say so.`,
		Example: `  sweetspot law fit examples/law/runs.csv
  sweetspot law fit examples/law/runs.csv --budget-flops 1e15 --target 2.2
  sweetspot law fit sweep.parquet --size n_params --data samples_seen --metric val_loss --run seed
  sweetspot law fit sweep.csv --accuracy --metric test_acc --target 0.95 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.HasBudget = cmd.Flags().Changed("budget-flops")
			c.HasTarget = cmd.Flags().Changed("target")
			if err := builtin.CheckLawFlags(c); err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			c.Path = args[0]
			toolArgs := c.ToolArgs()
			return runLawTool(toolArgs, cmd)
		},
	}
	f := cmd.Flags()
	f.StringVar(&c.Size, "size", "", "column of the model size N (default: params, N or n_params)")
	f.StringVar(&c.Data, "data", "", "column of the data seen D (default: tokens, data, D or samples)")
	f.StringVar(&c.Metric, "metric", "", "column of the final loss (default: loss or final_loss; with --accuracy: accuracy, acc or final_accuracy)")
	f.StringVar(&c.Run, "run", "", "column of the run id; rows of one run are resampled together (default: every row is a run)")
	f.BoolVar(&c.Accuracy, "accuracy", false, "the metric is an accuracy in [0, 1]: fit the error rate 1 - accuracy")
	f.Float64Var(&c.Budget, "budget-flops", 0, "compute budget C: print N*(C), D*(C) and the predicted loss, with intervals")
	f.Float64Var(&c.K, "flops-per-param-sample", c.K, "cost K of one parameter on one sample, C = K N D (6: a forward and a backward pass; seconds per parameter-sample for a budget in seconds)")
	f.Float64Var(&c.Target, "target", 0, "print the least compute, and its N and D, reaching this loss (accuracy with --accuracy)")
	f.Float64Var(&c.Confidence, "confidence", c.Confidence, "two-sided level of every interval")
	f.IntVar(&c.Bootstrap, "bootstrap", c.Bootstrap, "bootstrap draws over runs (0: no intervals)")
	f.Uint64Var(&c.Seed, "seed", c.Seed, "seed of the bootstrap")
	f.StringVar(&c.Format, "input-format", "", "csv, tsv, parquet or arrow (default: from the file name)")
	f.BoolVar(&c.JSON, "json", false, "print one JSON object")
	return cmd
}

// runLawTool starts this executable in its law tool mode; the tool's
// report goes to stdout, its error becomes the command's, with its exit
// status (2 when the file or the flags are at fault).
func runLawTool(args []string, cmd *cobra.Command) error {
	self, err := os.Executable()
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	c := exec.Command(self, append([]string{builtin.LawToolArg}, args...)...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err = c.Run()
	msg := strings.TrimSpace(stderr.String())
	var ee *exec.ExitError
	switch {
	case err == nil:
		_, werr := cmd.OutOrStdout().Write(stdout.Bytes())
		return werr
	case errors.As(err, &ee) && msg != "":
		code := exitFailed
		if ee.ExitCode() == builtin.LawExitInput {
			code = exitInvalid
		}
		return &exitError{code: code, err: errors.New(msg)}
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("law tool: %w", err)}
}
