package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/internal/diagtext"
	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/plugins/builtin"
)

// varFlags are the variable flags shared by commands that load a pipeline.
type varFlags struct {
	vars     []string
	varFiles []string
}

func (v *varFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&v.vars, "var", nil, "set a variable: -var 'name=value' (repeatable)")
	cmd.Flags().StringArrayVar(&v.varFiles, "var-file", nil, "read variables from an HCL file (repeatable)")
}

func (v *varFlags) options() ([]config.LoadOption, error) {
	vars := map[string]string{}
	for _, kv := range v.vars {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("invalid -var %q: expected name=value", kv)
		}
		vars[strings.TrimSpace(name)] = value
	}
	return []config.LoadOption{config.WithVars(vars), config.WithVarFiles(v.varFiles...)}, nil
}

// newLogger logs to stderr; plugins' lines are re-logged under their names.
// logLevels are the levels --log-level and SWEETSPOT_LOG take.
var logLevels = []string{"trace", "debug", "info", "warn", "error"}

// checkLogLevel refuses a level newLogger would not know.
func checkLogLevel(level string) error {
	if slices.Contains(logLevels, strings.ToLower(strings.TrimSpace(level))) {
		return nil
	}
	return fmt.Errorf("%q is not a log level: use %s", level, strings.Join(logLevels, ", "))
}

func newLogger(level string) hclog.Logger {
	if level == "" {
		level = os.Getenv("SWEETSPOT_LOG")
	}
	if level == "" {
		level = "warn"
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:   "sweetspot",
		Level:  hclog.LevelFromString(level),
		Output: os.Stderr,
		Color:  hclog.AutoColor,
	})
}

// newHost returns a plugin host whose built-in plugin is this executable.
func newHost(logger hclog.Logger, opts ...pluginhost.Option) (*pluginhost.Host, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own executable for built-in stages: %w", err)
	}
	base := []pluginhost.Option{
		pluginhost.WithLogger(logger),
		pluginhost.WithBuiltin(builtin.Set(version), []string{exe, pluginModeArg}),
	}
	return pluginhost.New(append(base, opts...)...)
}

// loadPipeline loads and validates the pipeline at paths, rendering any
// diagnostics to stderr. It returns an *exitError with exitInvalid when the
// pipeline is invalid.
func loadPipeline(paths []string, vf *varFlags, catalog config.Catalog) (*config.Pipeline, error) {
	opts, err := vf.options()
	if err != nil {
		return nil, &exitError{code: exitInvalid, err: err}
	}
	p, diags := config.Load(paths, catalog, opts...)
	if len(diags) > 0 {
		var files map[string]*hcl.File
		if p != nil {
			files = p.Files
		}
		renderDiagnostics(os.Stderr, files, diags)
	}
	if diags.HasErrors() {
		return nil, &exitError{code: exitInvalid, err: fmt.Errorf("the pipeline is invalid: %s", countErrors(diags))}
	}
	return p, nil
}

func countErrors(diags hcl.Diagnostics) string {
	n := 0
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			n++
		}
	}
	if n == 1 {
		return "1 error"
	}
	return fmt.Sprintf("%d errors", n)
}

// renderDiagnostics prints diagnostics with source snippets, in colour on a
// terminal.
func renderDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics) {
	color := false
	width := uint(78)
	if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) && os.Getenv("NO_COLOR") == "" {
		color = true
	}
	_ = diagtext.Write(w, files, diags, width, color)
}
