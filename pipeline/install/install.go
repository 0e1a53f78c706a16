// Package install installs the plugins a pipeline requires
// (`sweetspot { required_plugins { NAME = { source, version } } }`) and
// keeps their lock file, .sweetspot.lock.hcl: the selected version and the
// sha256 of each executable, which the plugin host checks before it starts
// a plugin (pluginhost.WithLockFile).
//
// A source is a Go module or package path (resolved through the Go module
// proxy with `go list -m -versions`, built with `go install PATH@VERSION`),
// a local directory holding a Go main package (built with `go build`), or a
// local mirror directory of prebuilt executables named
// sweetspot-plugin-NAME_VERSION_OS_ARCH with a SHA256SUMS file, for
// machines without network access.
//
// As with Terraform's lock file, an existing entry wins: init installs the
// locked version and checks its hash, and only Upgrade selects anew.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/hashicorp/hcl/v2"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// DefaultDir is where init installs plugins: the first directory the plugin
// host searches (pluginhost.DefaultSearchPaths), relative to the working
// directory.
var DefaultDir = filepath.Join(".sweetspot", "plugins")

// GlobalDir is ~/.sweetspot/plugins, the second directory the host
// searches, shared by every project of the user.
func GlobalDir() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the home directory: %w", err)
	}
	return filepath.Join(home, ".sweetspot", "plugins"), nil
}

// reservedName is the built-in plugin's: it always wins the lookup, so an
// installed plugin of that name would never run.
const reservedName = "builtin"

// Options says what Init installs, from where, and where to.
type Options struct {
	// Required are the pipeline's required_plugins
	// (config.LoadSettings(...).Required.Plugins).
	Required map[string]config.RequiredPlugin
	// BaseDir is the directory relative local sources are resolved from:
	// the pipeline's.
	BaseDir string
	// LockFile is the lock file's path (lockfile.PathFor).
	LockFile string
	// Dir receives the executables (DefaultDir, or GlobalDir()).
	Dir string
	// Upgrade selects every plugin anew, the newest version its constraint
	// allows, instead of the locked one.
	Upgrade bool
	// Env adds "K=V" variables to the go commands and to the `describe` of
	// each installed plugin (e.g. GOPROXY, GOFLAGS).
	Env []string
}

// Action is what Init did with one plugin.
type Action string

const (
	// ActionUnchanged: the locked executable was already installed.
	ActionUnchanged Action = "unchanged"
	// ActionInstalled: a plugin without a lock entry was selected and
	// installed.
	ActionInstalled Action = "installed"
	// ActionReinstalled: the locked version was installed again (it was
	// missing, or not yet installed on this platform) and checked.
	ActionReinstalled Action = "reinstalled"
	// ActionUpgraded: Upgrade selected another version or build.
	ActionUpgraded Action = "upgraded"
)

// Installed is one plugin after Init.
type Installed struct {
	Name   string
	Source string
	Kind   string // KindLocal, KindMirror or KindGo
	// Version is the selected version; Previous the locked one it
	// replaced, for ActionUpgraded.
	Version, Previous string
	Path              string // the executable
	Sum               []byte // its sha256
	// Stages are the stage kinds the plugin provides; nil when Init did not
	// run it (ActionUnchanged).
	Stages []string
	Action Action
}

// Result is what Init did.
type Result struct {
	Plugins []Installed
	// Removed are lock entries dropped because the pipeline no longer
	// requires them.
	Removed []string
	// LockWritten says whether the lock file changed.
	LockWritten bool
	// Warnings are problems that do not stop the install, such as another
	// copy of a plugin that the host would find first.
	Warnings []string
}

type installer struct {
	o Options
}

// Init installs every required plugin into o.Dir and writes the lock file.
// A plugin that fails does not stop the others; its lock entry is kept as
// it was, and the errors are returned together. The lock file is written
// only when its content changes, so re-running Init on a consistent
// installation changes nothing on disk.
func Init(ctx context.Context, o Options) (*Result, error) {
	in := &installer{o: o}
	lock, existed, err := lockfile.ReadOptional(o.LockFile)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	next := &lockfile.File{Plugins: map[string]*lockfile.Plugin{}}
	if len(o.Required) > 0 {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("create the plugin directory: %w", err)
		}
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(o.Required)) {
		old := lock.Plugins[name]
		entry, inst, err := in.one(ctx, o.Required[name], old)
		if err != nil {
			errs = append(errs, err)
			if old != nil {
				next.Plugins[name] = old
			}
			continue
		}
		next.Plugins[name] = entry
		res.Plugins = append(res.Plugins, *inst)
		if w := shadowed(inst.Path, name); w != "" {
			res.Warnings = append(res.Warnings, w)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(lock.Plugins)) {
		if _, ok := o.Required[name]; !ok {
			res.Removed = append(res.Removed, name)
		}
	}
	if existed || len(next.Plugins) > 0 {
		before, _ := os.ReadFile(o.LockFile)
		if err := lockfile.Write(o.LockFile, next); err != nil {
			return res, errors.Join(append(errs, err)...)
		}
		res.LockWritten = !bytes.Equal(before, next.Bytes())
	}
	return res, errors.Join(errs...)
}

// one installs one plugin and returns its new lock entry.
func (in *installer) one(ctx context.Context, req config.RequiredPlugin, old *lockfile.Plugin) (*lockfile.Plugin, *Installed, error) {
	name := req.Name
	if name == reservedName {
		return nil, nil, fmt.Errorf("plugin %s: the name %q belongs to sweetspot's built-in stages; give the plugin another name in required_plugins", name, name)
	}
	c, err := parseConstraint(req.Version)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	src, err := in.openSource(name, req.Source)
	if err != nil {
		return nil, nil, err
	}
	target := filepath.Join(in.o.Dir, exeName(name))
	platform := lockfile.Platform()
	inst := &Installed{Name: name, Source: req.Source, Kind: src.kind(), Path: target}

	if old != nil && !in.o.Upgrade {
		if err := staleEntry(req, old); err != nil {
			return nil, nil, err
		}
		entry := cloneEntry(old)
		entry.Constraints = req.Version
		inst.Version = old.Version
		want, locked := old.Hash(platform)
		if locked {
			if got, err := lockfile.HashFile(target); err == nil && bytes.Equal(got, want) {
				inst.Sum, inst.Action = got, ActionUnchanged
				return entry, inst, nil
			}
		}
		st, err := in.stage(ctx, src, name, old.Version)
		if err != nil {
			return nil, nil, err
		}
		defer st.cleanup()
		if locked && !bytes.Equal(st.sum, want) {
			return nil, nil, fmt.Errorf("plugin %s: installing the locked version %s from %s gave an executable with %s, but the lock file %s expects %s "+
				"(the source changed, or it was built with another Go toolchain); nothing was installed. "+
				"To accept the new executable, re-lock with `sweetspot init --upgrade`",
				name, old.Version, req.Source, lockfile.FormatHash(st.sum), in.o.LockFile, lockfile.FormatHash(want))
		}
		desc, err := st.describe(name, want, in.o.LockFile, in.o.Env)
		if err != nil {
			return nil, nil, err
		}
		if src.kind() == KindLocal && descVersion(desc) != old.Version {
			return nil, nil, fmt.Errorf("plugin %s: %s now builds version %s, but the lock file %s pins %s; re-lock with `sweetspot init --upgrade`",
				name, req.Source, descVersion(desc), in.o.LockFile, old.Version)
		}
		if err := st.commit(target); err != nil {
			return nil, nil, err
		}
		entry.Hashes[platform] = lockfile.FormatHash(st.sum)
		inst.Sum, inst.Stages, inst.Action = st.sum, stageKinds(desc), ActionReinstalled
		return entry, inst, nil
	}

	v := ""
	if src.kind() != KindLocal {
		available, err := src.versions(ctx)
		if err != nil {
			return nil, nil, err
		}
		var ok bool
		if v, ok = newest(available, c); !ok {
			return nil, nil, noVersionError(name, req.Source, req.Version, available)
		}
	}
	st, err := in.stage(ctx, src, name, v)
	if err != nil {
		return nil, nil, err
	}
	defer st.cleanup()
	desc, err := st.describe(name, nil, in.o.LockFile, in.o.Env)
	if err != nil {
		return nil, nil, err
	}
	if src.kind() == KindLocal {
		v = descVersion(desc)
		if !allows(c, v) {
			return nil, nil, fmt.Errorf("plugin %s: %s builds version %s, which does not satisfy the constraint %q", name, req.Source, v, req.Version)
		}
	}
	if err := st.commit(target); err != nil {
		return nil, nil, err
	}
	entry := &lockfile.Plugin{Name: name, Source: req.Source, Version: v, Constraints: req.Version, Hashes: map[string]string{}}
	maps.Copy(entry.Hashes, src.hashes(v))
	entry.Hashes[platform] = lockfile.FormatHash(st.sum)
	inst.Version, inst.Sum, inst.Stages, inst.Action = v, st.sum, stageKinds(desc), ActionInstalled
	if old != nil {
		inst.Action = ActionUpgraded
		inst.Previous = old.Version
		if prev, ok := old.Hash(platform); ok && old.Version == v && bytes.Equal(prev, st.sum) {
			inst.Action = ActionUnchanged
		}
	}
	return entry, inst, nil
}

// staleEntry reports a lock entry that no longer matches the pipeline's
// requirement: like Terraform, init then asks for an explicit upgrade
// rather than silently moving the pin.
func staleEntry(req config.RequiredPlugin, old *lockfile.Plugin) error {
	if old.Source != req.Source {
		return fmt.Errorf("plugin %s: the lock file pins it to the source %q, but the pipeline now says %q; run `sweetspot init --upgrade` to install from the new source and re-lock",
			req.Name, old.Source, req.Source)
	}
	c, err := parseConstraint(req.Version)
	if err != nil {
		return fmt.Errorf("plugin %s: %w", req.Name, err)
	}
	if !allows(c, old.Version) {
		return fmt.Errorf("plugin %s: the locked version %s does not satisfy the pipeline's constraint %q; run `sweetspot init --upgrade` to select a version that does and re-lock",
			req.Name, old.Version, req.Version)
	}
	return nil
}

func cloneEntry(p *lockfile.Plugin) *lockfile.Plugin {
	c := *p
	c.Hashes = maps.Clone(p.Hashes)
	if c.Hashes == nil {
		c.Hashes = map[string]string{}
	}
	return &c
}

// descVersion is a described plugin's version, with a stand-in for a
// plugin that reports none (the lock file needs one).
func descVersion(d *describe.PluginDescription) string {
	if d.Version == "" {
		return "unversioned"
	}
	return d.Version
}

func stageKinds(d *describe.PluginDescription) []string {
	kinds := make([]string, 0, len(d.Stages))
	for _, s := range d.Stages {
		kinds = append(kinds, s.Kind)
	}
	return kinds
}

// staged is an executable fetched into a private directory beside its
// final place, so that nothing half-written or unchecked is ever where the
// host looks, and the final rename is atomic.
type staged struct {
	dir, path string
	sum       []byte
}

func (in *installer) stage(ctx context.Context, src source, name, v string) (*staged, error) {
	dir, err := os.MkdirTemp(in.o.Dir, ".install-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	// Builds run in the source's directory: the output path must not be
	// relative to ours.
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	// The executable carries its final name even here: a plugin takes its
	// name from argv[0] when it describes itself.
	st := &staged{dir: dir, path: filepath.Join(dir, exeName(name))}
	if err := src.fetch(ctx, v, st.path); err != nil {
		st.cleanup()
		return nil, err
	}
	if err := os.Chmod(st.path, 0o755); err != nil {
		st.cleanup()
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	if st.sum, err = lockfile.HashFile(st.path); err != nil {
		st.cleanup()
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	return st, nil
}

// describe runs the staged plugin's `describe`, which also proves it is a
// sweetspot plugin speaking this host's protocol version. What runs is the
// host's checked copy of the staged file (pluginhost.DescribeChecked): with
// want (the lock file's sum) set, a file of another sum is not run; and the
// sum kept for the lock file is that of the bytes that described
// themselves, which also leaves their checked copy ready for the first run.
func (st *staged) describe(name string, want []byte, lockFile string, env []string) (*describe.PluginDescription, error) {
	d, sum, err := pluginhost.DescribeChecked(name, st.path, want, lockFile, env...)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: not installed: %w", name, err)
	}
	st.sum = sum
	return d, nil
}

func (st *staged) commit(target string) error {
	if err := os.Rename(st.path, target); err != nil {
		return fmt.Errorf("install %s: %w", target, err)
	}
	return nil
}

func (st *staged) cleanup() { os.RemoveAll(st.dir) }

// shadowed warns when the host would find another executable of the
// plugin before the one just installed.
func shadowed(installed, name string) string {
	want, err := os.Stat(installed)
	if err != nil {
		return ""
	}
	for _, dir := range pluginhost.DefaultSearchPaths() {
		p := filepath.Join(dir, exeName(name))
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		if os.SameFile(fi, want) {
			return ""
		}
		return fmt.Sprintf("plugin %s: %s is found before the installed %s, and will not match the lock file; remove it", name, p, installed)
	}
	return ""
}

// CheckLock compares the pipeline's required_plugins with the lock file at
// lockPath and reports, at each entry, what `sweetspot init` must fix
// first: a plugin with no lock entry (or none for this platform), locked
// from another source, or locked at a version its constraint no longer
// allows. A run calls it after loading the pipeline, so that the user reads
// "run sweetspot init" rather than a plugin lookup failure. A pipeline
// without required_plugins passes.
func CheckLock(req config.Requirements, lockPath string) hcl.Diagnostics {
	if len(req.Plugins) == 0 {
		return nil
	}
	var diags hcl.Diagnostics
	lock, _, err := lockfile.ReadOptional(lockPath)
	if err != nil {
		return diags.Append(&hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid lock file", Detail: err.Error() + "."})
	}
	for _, name := range slices.Sorted(maps.Keys(req.Plugins)) {
		rp := req.Plugins[name]
		old := lock.Plugins[name]
		var detail string
		switch {
		case old == nil:
			detail = fmt.Sprintf("The plugin %q is required but the lock file %s does not lock it. Run `sweetspot init` to install and lock it.", name, lockPath)
		case staleEntry(rp, old) != nil:
			detail = staleEntry(rp, old).Error() + "."
		default:
			if _, ok := old.Hash(lockfile.Platform()); !ok {
				detail = fmt.Sprintf("The lock file %s records no checksum of the plugin %q for %s. Run `sweetspot init` to install it here and record it.", lockPath, name, lockfile.Platform())
			}
		}
		if detail != "" {
			diags = diags.Append(&hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Plugin not installed by sweetspot init",
				Detail:   detail,
				Subject:  rp.Range.Ptr(),
			})
		}
	}
	return diags
}
