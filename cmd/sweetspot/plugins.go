package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/install/lockfile"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
)

func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List and describe stage plugins",
		Long: `Plugins are executables named sweetspot-plugin-NAME found in
./.sweetspot/plugins, ~/.sweetspot/plugins and each directory of
$SWEETSPOT_PLUGIN_PATH, plus the built-in stages of this binary.
sweetspot init installs a pipeline's required_plugins and locks them.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list [PATH]",
		Short: "List the plugins found, their source, version, checksum status and stage kinds",
		Long: `List shows the built-in plugin and every plugin in the search paths, with
the stage kinds each provides, and compares each executable with the lock
file beside the pipeline at PATH (default: the current directory):

  ok        the lock file has this executable's sha256
  MISMATCH  the lock file locks the plugin to another executable: sweetspot
            will not start it (re-lock with sweetspot init --upgrade)
  unlocked  not in the lock file: it runs unverified
  missing   locked, but not installed (run sweetspot init)
  builtin   the stages built into this binary`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			host, err := newHost(newLogger(""), pluginhost.WithLockFile(lockfile.PathFor([]string{path})))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer host.Close()
			infos, err := host.Plugins()
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tVERSION\tSOURCE\tCHECKSUM\tKINDS\tPATH")
			found := map[string]bool{}
			for _, p := range infos {
				found[p.Name] = true
				version, source, path := "?", "-", p.Path
				if p.Builtin {
					source, path = "sweetspot", "(built in)"
				}
				if p.Locked != nil {
					version, source = p.Locked.Version, p.Locked.Source
				}
				kinds := "-"
				if p.Description != nil {
					version = p.Description.Version
					var ks []string
					for _, s := range p.Description.Stages {
						ks = append(ks, s.Kind)
					}
					kinds = strings.Join(ks, ",")
				}
				var ce *pluginhost.ChecksumError
				if p.Err != nil && !errors.As(p.Err, &ce) {
					path += fmt.Sprintf(" (error: %v)", p.Err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, version, source, p.Checksum, kinds, path)
			}
			lockPath, lock := host.Lock()
			for _, name := range slices.Sorted(maps.Keys(lock.Plugins)) {
				if l := lock.Plugins[name]; !found[name] {
					fmt.Fprintf(tw, "%s\t%s\t%s\tmissing\t-\t(not installed: run sweetspot init)\n", name, l.Version, l.Source)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, p := range infos {
				var ce *pluginhost.ChecksumError
				if errors.As(p.Err, &ce) {
					fmt.Fprintf(cmd.ErrOrStderr(), "\n%v\n", ce)
				}
			}
			if _, err := os.Stat(lockPath); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "\nNo lock file at %s: external plugins are not verified. List them in sweetspot { required_plugins {} } and run sweetspot init.\n", lockPath)
			}
			return nil
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
