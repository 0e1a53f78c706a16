package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
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
  unlocked  not in the lock file: it runs unverified, and only for a
            pipeline that names it (plugin = "NAME", or a stage kind of
            its name)
  missing   locked, but not installed (run sweetspot init)
  builtin   the stages built into this binary

List runs the built-in and the locked plugins (after checking them) to
show their stage kinds. It does not run unlocked plugins: their version
and kinds show as ? and -, and a warning names them (sweetspot plugins
describe NAME shows one's kinds, see its --help).`,
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
			var notRun []string
			for _, p := range infos {
				var ce *pluginhost.ChecksumError
				if errors.As(p.Err, &ce) {
					fmt.Fprintf(cmd.ErrOrStderr(), "\n%v\n", ce)
				}
				if p.NotRun {
					notRun = append(notRun, p.Name)
				}
			}
			if !host.LockFound() {
				fmt.Fprintf(cmd.ErrOrStderr(), "\nNo lock file at %s: external plugins are not verified. List them in sweetspot { required_plugins {} } and run sweetspot init.\n", lockPath)
			}
			if len(notRun) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "\nWarning: not in the lock file, so not run to show their stage kinds: %s. "+
					"An unlocked plugin runs only for a pipeline that names it, and unverified: lock the plugins a pipeline needs "+
					"(sweetspot { required_plugins {} }, then sweetspot init). sweetspot plugins describe NAME shows one's stage kinds (see its --help).\n",
					strings.Join(notRun, ", "))
			}
			return nil
		},
	})
	cmd.AddCommand(newPluginsDescribeCmd())
	return cmd
}

func newPluginsDescribeCmd() *cobra.Command {
	var allowUnlocked bool
	cmd := &cobra.Command{
		Use:   "describe NAME [PATH]",
		Short: "Print a plugin's description (versions, config schemas, port schemas) as JSON",
		Long: `Describe prints what the plugin NAME says about itself: its versions and,
for each stage kind, the config schema and the ports. The built-in plugin
is described without starting anything; an external plugin is run with
the argument describe.

An external plugin is checked first against the lock file beside the
pipeline at PATH (default: the current directory), as a run checks it:

  locked    its executable must have the locked sha256, or it is refused
            (exit 1) without running; a match runs the checked bytes
  unlocked  the lock file exists but does not list it: refused (exit 1),
            since nothing says this executable is the one anyone
            installed, unless --allow-unlocked, which runs it unverified
            after saying so on stderr
  no lock   there is no lock file: it runs unverified, after saying so on
            stderr`,
		Example: `  sweetspot plugins describe builtin
  sweetspot plugins describe standardize examples/standardize
  sweetspot plugins describe myplugin --allow-unlocked`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, path := args[0], "."
			if len(args) == 2 {
				path = args[1]
			}
			host, err := newHost(newLogger(""), pluginhost.WithLockFile(lockfile.PathFor([]string{path})))
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			defer host.Close()
			p, err := host.Find(name)
			if nf := (*pluginhost.NotFoundError)(nil); errors.As(err, &nf) {
				var names []string
				if infos, lerr := host.Plugins(); lerr == nil {
					for _, p := range infos {
						names = append(names, p.Name)
					}
				}
				return &exitError{code: exitInvalid, err: fmt.Errorf("no plugin named %q; known plugins: %s", name, strings.Join(names, ", "))}
			}
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			if p.Err != nil {
				return &exitError{code: exitFailed, err: p.Err}
			}
			lockPath, _ := host.Lock()
			if !p.Builtin && p.Locked == nil {
				if host.LockFound() && !allowUnlocked {
					return &exitError{code: exitFailed, err: fmt.Errorf("plugin %s (%s) is not in the lock file %s, so it was not run: nothing says this executable is the one anyone installed. "+
						"Lock it (list it in sweetspot { required_plugins {} }, then sweetspot init), or run it unverified with --allow-unlocked", name, p.Path, lockPath)}
				}
				why := "there is no lock file at " + lockPath
				if host.LockFound() {
					why = "it is not in the lock file " + lockPath
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Warning: running %s describe unverified: %s.\n", p.Path, why)
			}
			d, err := host.Describe(name)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(d)
		},
	}
	cmd.Flags().BoolVar(&allowUnlocked, "allow-unlocked", false, "run a plugin that the lock file does not list, unverified, to describe it")
	return cmd
}
