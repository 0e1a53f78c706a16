package main

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
)

func newValidateCmd() *cobra.Command {
	var vf varFlags
	cmd := &cobra.Command{
		Use:   "validate PATH",
		Short: "Check a pipeline without running it",
		Long: `Validate checks syntax, references, every stage's config against the schema
its plugin declares, and that each output port fits the input port it feeds;
then each plugin checks its stages' values (ranges, files that must exist).
It reports every problem at once with file:line:col, runs no stage and
leaves no plugin process running.
Exit codes: 0 valid, 2 invalid.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := newLogger("")
			host, err := newHost(logger, pluginhost.WithPipelineLock(args...))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer host.Close()
			p, err := loadPipeline(args, &vf, host)
			if err != nil {
				return err
			}
			// The plugins' own checks (value ranges, files that must exist):
			// each plugin runs just long enough to answer.
			diags, err := runner.Check(cmd.Context(), host, p)
			host.Close()
			if len(diags) > 0 {
				renderDiagnostics(cmd.ErrOrStderr(), p.Files, diags)
			}
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if diags.HasErrors() {
				return &exitError{code: exitInvalid, err: fmt.Errorf("the pipeline is invalid: %s", countErrors(diags))}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "The pipeline is valid: %d stages.\n", len(p.Stages))
			return nil
		},
	}
	vf.register(cmd)
	return cmd
}

func newFmtCmd() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "fmt [--check] PATH...",
		Short: "Rewrite pipeline files in canonical HCL style",
		Long: `Fmt rewrites each .hcl file (or every .hcl file of a directory) in the
canonical style. With --check it changes nothing, lists the files that would
change and exits 2 if there are any.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := hclFiles(args)
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			var diags hcl.Diagnostics
			srcs := map[string]*hcl.File{}
			changed := 0
			for _, path := range files {
				src, err := config.ReadSource(path)
				if err != nil {
					return &exitError{code: exitInvalid, err: err}
				}
				out, d := config.Format(src, path)
				srcs[path] = &hcl.File{Bytes: src}
				if d.HasErrors() {
					diags = append(diags, d...)
					continue
				}
				if string(out) == string(src) {
					continue
				}
				changed++
				fmt.Fprintln(cmd.OutOrStdout(), path)
				if !check {
					if err := writeOutputBytes(path, 0, out); err != nil {
						return &exitError{code: exitFailed, err: err}
					}
				}
			}
			if len(diags) > 0 {
				renderDiagnostics(cmd.ErrOrStderr(), srcs, diags)
				return &exitError{code: exitInvalid, err: fmt.Errorf("cannot format: %s", countErrors(diags))}
			}
			if check && changed > 0 {
				return &exitError{code: exitInvalid, err: fmt.Errorf("%d file(s) are not formatted; run sweetspot fmt", changed)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "list unformatted files and exit 2 instead of rewriting")
	return cmd
}

func newGraphCmd() *cobra.Command {
	var vf varFlags
	cmd := &cobra.Command{
		Use:   "graph PATH",
		Short: "Print the stage graph in DOT",
		Long: `Graph prints the pipeline's stages and the ports that connect them as a
Graphviz DOT digraph; a loop's way back is dashed.`,
		Example: "  sweetspot graph examples/quickstart | dot -Tsvg > graph.svg",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, err := newHost(newLogger(""), pluginhost.WithPipelineLock(args...))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer host.Close()
			p, err := loadPipeline(args, &vf, host)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), p.Graph.DOT())
			return nil
		},
	}
	vf.register(cmd)
	return cmd
}
