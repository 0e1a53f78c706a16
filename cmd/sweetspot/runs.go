package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

func newRunsCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and inspect past runs",
	}
	cmd.PersistentFlags().StringVar(&root, "out", runstore.DefaultRoot, "directory that holds run directories")
	cmd.AddCommand(newRunsExportCmd(&root))
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List runs, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store := runstore.Open(root)
			ids, err := store.IDs()
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tPIPELINE\tSTARTED\tSTATUS\tDECISION\tTRACE")
			for _, id := range ids {
				run, err := store.Load(id)
				if err != nil {
					fmt.Fprintf(tw, "%s\t?\t?\tunreadable: %v\t\t\n", id, err)
					continue
				}
				m := run.Manifest()
				decision := "-"
				if m.Decision != nil {
					decision = m.Decision.Status
					if m.Decision.ChosenName != "" {
						decision += " " + m.Decision.ChosenName
					} else if m.Decision.Chosen != "" {
						decision += " " + m.Decision.Chosen
					}
				}
				pipeline := "-"
				if len(m.Pipeline) > 0 {
					pipeline = m.Pipeline[0]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.RunID, pipeline, m.StartedAt.Local().Format("2006-01-02 15:04:05"), m.Status, decision, m.TraceID)
			}
			return tw.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show RUN",
		Short: "Show a run's stages, outputs and decision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := runstore.Open(root).Load(args[0])
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			m := run.Manifest()
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "run:      %s\nstatus:   %s\npipeline: %v\nhash:     %s\ntrace:    %s\n", m.RunID, m.Status, m.Pipeline, m.PipelineHash, m.TraceID)
			if m.Error != "" {
				fmt.Fprintf(w, "error:    %s\n", m.Error)
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "\nSTAGE\tPLUGIN\tPID\tSTATUS\tPORT\tROUND\tROWS\tFILE")
			for _, s := range m.Stages {
				if len(s.Outputs) == 0 {
					fmt.Fprintf(tw, "%s\t%s@%s\t%d\t%s\t\t\t\t%s\n", s.Addr, s.Plugin, s.PluginVersion, s.Pid, s.Status, s.Error)
				}
				for _, f := range s.Outputs {
					fmt.Fprintf(tw, "%s\t%s@%s\t%d\t%s\t%s\t%d\t%d\t%s\n", s.Addr, s.Plugin, s.PluginVersion, s.Pid, s.Status, f.Port, f.Round, f.Rows, f.Path)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if err := printResources(w, &m); err != nil {
				return err
			}
			ms, err := printTrials(w, run, &m)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if err := printDecisions(w, run, &m, ms); err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			printPlacement(w, &m)
			if d := m.Decision; d != nil {
				fmt.Fprintf(w, "\ndecision: %s after %d round(s)", d.Status, d.Rounds)
				if d.Chosen != "" {
					fmt.Fprintf(w, ": %s", ms.named(d.Chosen))
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	})
	return cmd
}
