// Command sweetspot finds the smallest model that meets its requirements by
// running an HCL pipeline of out-of-process stage plugins.
//
// main only wires flags to the pipeline packages and renders diagnostics.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/plugins/builtin"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes. A run that ends has one of the first five; one stopped by a
// signal exits 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
const (
	exitOK      = 0 // success: the search converged, or found a model meeting the requirements before its budget ran out
	exitFailed  = 1 // the run failed
	exitInvalid = 2 // invalid pipeline or usage
	// exitInfeasible: the run succeeded and its decision is that no model
	// meets the requirements.
	exitInfeasible = 3
	// exitNoAnswer: the run succeeded but its budget (the requirements'
	// max_trials or max_wall, or the loop's max_rounds) ran out before any
	// model met the requirements.
	exitNoAnswer = 4
)

// pluginModeArg makes the binary serve its built-in stages as a plugin: the
// host starts its own executable again with it, so built-in stages run out of
// process with nothing else built.
const pluginModeArg = "__plugin"

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func main() {
	if len(os.Args) > 1 && os.Args[1] == pluginModeArg {
		if err := builtin.Set(version).Run(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(exitFailed)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == builtin.ModelToolArg {
		// `sweetspot model` decodes model files here, not in the host.
		os.Exit(builtin.ModelTool(os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == builtin.LawToolArg {
		// `sweetspot law fit` reads the table and fits the law here.
		os.Exit(builtin.LawTool(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(execute(os.Args[1:]))
}

func execute(args []string) int {
	root := newRootCmd()
	root.SetArgs(normalizeArgs(args))
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "Error:", ee.err)
		}
		return ee.code
	}
	// cobra's own errors are usage errors: unknown flag, wrong arg count.
	fmt.Fprintln(os.Stderr, "Error:", err)
	return exitInvalid
}

// normalizeArgs accepts Terraform's single-dash spelling of long flags
// (-var, -var-file, -check), which HCL users type from habit.
func normalizeArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a == "-var" || a == "-var-file" || a == "-check" || a == "-no-color" || a == "-upgrade":
			a = "-" + a
		case strings.HasPrefix(a, "-var=") || strings.HasPrefix(a, "-var-file="):
			a = "-" + a
		}
		out[i] = a
	}
	return out
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "sweetspot",
		Short: "Find the sweet spot between a model's size and its efficiency",
		Long: `sweetspot runs an HCL pipeline of stages (requirements, model choice,
optimization, evaluation, resize) as out-of-process plugins that pass Apache
Arrow data, and loops evaluation and resize until it finds the smallest model
that meets the requirements. Every run is one OpenTelemetry trace.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		// A log level no logger knows would log at its default in silence.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if f := cmd.Flags().Lookup("log-level"); f != nil && f.Value.String() != "" {
				if err := checkLogLevel(f.Value.String()); err != nil {
					return &exitError{code: exitInvalid, err: fmt.Errorf("--log-level: %w", err)}
				}
			} else if env := os.Getenv("SWEETSPOT_LOG"); env != "" {
				if err := checkLogLevel(env); err != nil {
					return &exitError{code: exitInvalid, err: fmt.Errorf("SWEETSPOT_LOG: %w", err)}
				}
			}
			return nil
		},
	}
	root.AddCommand(newRunCmd(), newValidateCmd(), newFmtCmd(), newGraphCmd(), newPluginsCmd(), newRunsCmd(), newExplainCmd(), newReportCmd(), newInitCmd(), newWorkerCmd(), newUICmd(), newModelCmd(), newLawCmd())
	return root
}
