package main

import (
	"bytes"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/report"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

func newReportCmd() *cobra.Command {
	var root, out string
	cmd := &cobra.Command{
		Use:   "report RUN",
		Short: "Write a run's report: one self-contained HTML file with the plots",
		Long: `Writes one HTML file that opens offline: the decision and its reason, the
chosen model against the requirements, quality against size with the fitted
curve and its band, latency, model size and train time against size, the
Pareto fronts, each round's decision and the sortable table of trials.

RUN is a run id or a unique prefix of one. The file goes to report.html in
the run's directory unless -o names another path.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := runstore.Open(root).Load(args[0])
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			path := out
			if path == "" {
				path = run.Path("report.html")
			}
			var buf bytes.Buffer
			if err := report.Write(&buf, run); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			// Atomic, so a report open in a browser is replaced whole;
			// readable by others, as a document is meant to be shared.
			stream := isStream(path)
			if err := writeOutputBytes(path, 0o644, buf.Bytes()); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if abs, err := filepath.Abs(path); err == nil {
				path = abs
			}
			if !stream {
				fmt.Fprintln(cmd.OutOrStdout(), path)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: report.html in the run directory)")
	cmd.Flags().StringVar(&root, "out", runstore.DefaultRoot, "directory that holds run directories")
	return cmd
}
