package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

func newExplainCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:   "explain RUN STAGE",
		Short: "Say why a stage was or was not served from the cache",
		Long: `Explain tells, for each round a stage ran in, where its outputs came from:
the cache (and which earlier run), the interrupted run it resumed, or a
fresh execution, and then what differed from the latest earlier run of the
same stage (plugin version or executable, config attributes, input data).`,
		Example: "  sweetspot explain 20261128-231726 evaluation.train",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			lines, err := runstore.Open(root).Explain(args[0], args[1])
			if err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			for _, l := range lines {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", args[1], l)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "out", runstore.DefaultRoot, "directory that holds run directories")
	return cmd
}
