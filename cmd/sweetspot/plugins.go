package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List and describe stage plugins",
		Long: `Plugins are executables named sweetspot-plugin-NAME found in
./.sweetspot/plugins, ~/.sweetspot/plugins and each directory of
$SWEETSPOT_PLUGIN_PATH, plus the built-in stages of this binary.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the plugins found and the stage kinds each provides",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, err := newHost(newLogger(""))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer host.Close()
			infos, err := host.Plugins()
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tPROTOCOL\tKINDS\tPATH")
			for _, p := range infos {
				path := p.Path
				if p.Builtin {
					path = "(built in)"
				}
				if p.Err != nil {
					fmt.Fprintf(tw, "%s\t?\t?\t-\t%s (error: %v)\n", p.Name, path, p.Err)
					continue
				}
				var kinds []string
				for _, s := range p.Description.Stages {
					kinds = append(kinds, s.Kind)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", p.Name, p.Description.Version, p.Description.ProtocolVersion, strings.Join(kinds, ","), path)
			}
			return tw.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "describe NAME",
		Short: "Print a plugin's description (versions, config schemas, port schemas) as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host, err := newHost(newLogger(""))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer host.Close()
			infos, err := host.Plugins()
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			var names []string
			for _, p := range infos {
				names = append(names, p.Name)
				if p.Name != args[0] {
					continue
				}
				if p.Err != nil {
					return &exitError{code: exitFailed, err: fmt.Errorf("plugin %s (%s): %w", p.Name, p.Path, p.Err)}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(p.Description)
			}
			return &exitError{code: exitInvalid, err: fmt.Errorf("no plugin named %q; known plugins: %s", args[0], strings.Join(names, ", "))}
		},
	})
	return cmd
}
