package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/install"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
)

func newInitCmd() *cobra.Command {
	var upgrade, global bool
	cmd := &cobra.Command{
		Use:   "init [PATH]",
		Short: "Install the plugins a pipeline requires and lock their versions and checksums",
		Long: `Init installs each plugin of the pipeline's required_plugins,

  sweetspot {
    required_plugins {
      scale = { source = "./plugins/scale", version = ">= 0.1, < 1" }
      prune = { source = "example.com/acme/sweetspot-plugin-prune", version = "~> 1.2" }
    }
  }

into ./.sweetspot/plugins (or ~/.sweetspot/plugins with --global), and
writes .sweetspot.lock.hcl beside the pipeline: the version selected for each
plugin and the sha256 of its executable. Commit the lock file. sweetspot
refuses to start a locked plugin whose executable has changed since.

A source is a Go module or package path (the newest version the constraint
allows, built with the local Go toolchain: go install PATH@VERSION), or a
local directory (./dir, relative to the pipeline) holding either a Go main
package, which is built, or prebuilt executables named
sweetspot-plugin-NAME_VERSION_OS_ARCH with a SHA256SUMS file (a mirror, for
machines without network access).

A plugin already in the lock file is installed at its locked version and
checked against its locked checksum; re-running init changes nothing.
--upgrade selects every plugin anew and re-locks it.

PATH is a pipeline file or directory (default: the current directory).`,
		Example: `  sweetspot init
  sweetspot init examples/standardize --upgrade`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "."
			if len(args) == 1 {
				path = args[0]
			}
			return runInit(cmd, path, upgrade, global)
		},
	}
	cmd.Flags().BoolVar(&upgrade, "upgrade", false, "select the newest version each constraint allows, ignoring the lock file, and re-lock")
	cmd.Flags().BoolVar(&global, "global", false, "install into ~/.sweetspot/plugins instead of ./.sweetspot/plugins")
	return cmd
}

func runInit(cmd *cobra.Command, path string, upgrade, global bool) error {
	out := cmd.OutOrStdout()
	p, diags := config.LoadSettings([]string{path})
	if len(diags) > 0 {
		renderDiagnostics(cmd.ErrOrStderr(), p.Files, diags)
	}
	if diags.HasErrors() {
		return &exitError{code: exitInvalid, err: fmt.Errorf("the pipeline's settings are invalid: %s", countErrors(diags))}
	}
	dir := install.DefaultDir
	if global {
		d, err := install.GlobalDir()
		if err != nil {
			return &exitError{code: exitFailed, err: err}
		}
		dir = d
	}
	baseDir := path
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
		baseDir = filepath.Dir(path)
	}
	lockPath := lockfile.PathFor([]string{path})
	if len(p.Required.Plugins) == 0 {
		fmt.Fprintf(out, "%s requires no plugins (it has no sweetspot { required_plugins {} }); nothing to install.\n", path)
	}
	res, err := install.Init(cmd.Context(), install.Options{
		Required: p.Required.Plugins,
		BaseDir:  baseDir,
		LockFile: lockPath,
		Dir:      dir,
		Upgrade:  upgrade,
	})
	if res != nil {
		printInit(out, res, lockPath)
		for _, w := range res.Warnings {
			fmt.Fprintln(cmd.ErrOrStderr(), "Warning:", w)
		}
	}
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("init: %w", indentJoined(err))}
	}
	return nil
}

func printInit(w io.Writer, res *install.Result, lockPath string) {
	for _, p := range res.Plugins {
		what := string(p.Action)
		if p.Action == install.ActionUpgraded {
			what = fmt.Sprintf("upgraded from %s", p.Previous)
		}
		fmt.Fprintf(w, "- %s %s from %s (%s): %s, %s\n", p.Name, p.Version, p.Source, p.Kind, what, p.Path)
		if len(p.Stages) > 0 {
			fmt.Fprintf(w, "    stages: %s\n", strings.Join(p.Stages, ", "))
		}
		fmt.Fprintf(w, "    sha256: %s\n", hex.EncodeToString(p.Sum))
	}
	for _, name := range res.Removed {
		fmt.Fprintf(w, "- %s: no longer required, removed from the lock file\n", name)
	}
	switch {
	case res.LockWritten:
		fmt.Fprintf(w, "Wrote the lock file %s; commit it with the pipeline.\n", lockPath)
	case len(res.Plugins) > 0:
		fmt.Fprintf(w, "The lock file %s is up to date.\n", lockPath)
	}
}

// indentJoined puts each of several joined errors on a line of its own.
func indentJoined(err error) error {
	var multi interface{ Unwrap() []error }
	if !errors.As(err, &multi) || len(multi.Unwrap()) < 2 {
		return err
	}
	var b strings.Builder
	for _, e := range multi.Unwrap() {
		b.WriteString("\n  ")
		b.WriteString(e.Error())
	}
	return errors.New(b.String())
}
