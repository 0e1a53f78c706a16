// Package pluginhost finds, describes and starts stage plugins, and runs
// stages in them over the sweetspot.stage.v1 protocol.
//
// A plugin is an executable named sweetspot-plugin-NAME in one of the search
// paths, or the built-in set that ships inside the sweetspot binary (which
// still runs out of process: the host executes its own binary again in
// plugin mode). Plugins are described by running `PLUGIN describe`, with
// the result cached, so a pipeline can be validated without starting any
// plugin server.
package pluginhost

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// EnvPluginPath lists extra plugin directories, colon-separated.
const EnvPluginPath = "SWEETSPOT_PLUGIN_PATH"

// describeTimeout bounds `PLUGIN describe`: it prints a constant document
// and has no reason to take long.
const describeTimeout = 10 * time.Second

// Host finds and starts plugins. It is safe for concurrent use.
type Host struct {
	logger      hclog.Logger
	searchPaths []string
	builtin     *sdk.Set
	builtinDesc *describe.PluginDescription
	builtinCmd  []string
	env         []string
	traceDir    string
	alloc       memory.Allocator
	chunkBytes  int64
	reattach    map[string]stagerpc.Reattach
	startTimout time.Duration
	// deliveryHook, when set, watches output inboxes (tests).
	deliveryHook func(port string, queued int)

	mu       sync.Mutex
	cache    map[describeKey]describeEntry
	clients  map[*Client]struct{}
	started  int
	closed   bool
	discover []PluginInfo // nil until the search paths were listed
	sums     map[string]*fingerprint

	// tlsID is the host's side of the mutual TLS with its plugins.
	tlsID hostIdentity
	// spareID makes the next plugin process's key ahead of its start,
	// where TLS is how the host and its plugins know each other.
	spareID spareIdentity
	// peerAuth says whether plugins are known by their sockets' peer
	// credentials (stagerpc.PeerAuthSupported), else by mutual TLS; tests
	// turn it off to check the TLS that other platforms use.
	peerAuth bool
	// sockDir is the private directory of the plugins' sockets ("" until
	// the first start; see socketDir).
	sockDir string

	// exec holds the checked copies that locked plugins run from, and
	// memoizes executables' sha256.
	exec *execCache
	// afterCheck, when set, runs between a locked plugin's check and its
	// start (tests: it swaps the file that was checked).
	afterCheck func(name string)

	// lockPath is the lock file external plugins are checked against ("":
	// none, every plugin runs unchecked as before lock files existed).
	// lock is its content, empty when the file does not exist.
	lockPath  string
	lock      *lockfile.File
	lockFound bool
	warned    map[string]bool
}

// Fingerprint returns the sha256 of the executable that serves a plugin,
// so that caches can tell a rebuilt plugin from the one that ran before
// even when its version string did not change. Computed once per Host:
// concurrent callers wait for the one hashing (the built-in plugin is the
// whole sweetspot executable, a hundred megabytes), and a failure is not
// kept, so the next call tries again.
func (h *Host) Fingerprint(name string) (string, error) {
	h.mu.Lock()
	f, ok := h.sums[name]
	if !ok {
		if h.sums == nil {
			h.sums = map[string]*fingerprint{}
		}
		f = &fingerprint{done: make(chan struct{})}
		h.sums[name] = f
	}
	h.mu.Unlock()
	if ok {
		<-f.done
		return f.sum, f.err
	}
	f.sum, f.err = h.hashExecutable(name)
	if f.err != nil {
		h.mu.Lock()
		delete(h.sums, name)
		h.mu.Unlock()
	}
	close(f.done)
	return f.sum, f.err
}

type fingerprint struct {
	done chan struct{} // closed once sum or err is set
	sum  string
	err  error
}

func (h *Host) hashExecutable(name string) (string, error) {
	var path string
	if h.builtinDesc != nil && name == h.builtinDesc.Name && len(h.builtinCmd) > 0 {
		path = h.builtinCmd[0]
	} else {
		p, err := h.find(name)
		if err != nil {
			return "", err
		}
		path = p
	}
	raw, err := h.exec.sumOf(path)
	if err != nil {
		return "", fmt.Errorf("fingerprint plugin %s: %w", name, err)
	}
	return hex.EncodeToString(raw), nil
}

// Option configures a Host.
type Option func(*Host)

// WithLogger sets the logger; each plugin logs under a logger named after it.
func WithLogger(l hclog.Logger) Option { return func(h *Host) { h.logger = l } }

// WithSearchPaths replaces the directories searched for plugins.
func WithSearchPaths(dirs ...string) Option {
	return func(h *Host) { h.searchPaths = append([]string(nil), dirs...) }
}

// WithBuiltin sets the built-in plugin: described in process from set,
// started by executing cmd (e.g. the sweetspot binary with a hidden
// plugin-mode argument).
func WithBuiltin(set *sdk.Set, cmd []string) Option {
	return func(h *Host) { h.builtin, h.builtinCmd = set, append([]string(nil), cmd...) }
}

// WithEnv sets environment variables ("K=V") for every plugin process:
// the host's own plumbing, such as the OTLP settings.
func WithEnv(env ...string) Option { return func(h *Host) { h.env = append(h.env, env...) } }

// WithTraceDir makes each plugin process record its spans in
// dir/plugin-NAME-N.jsonl.
func WithTraceDir(dir string) Option { return func(h *Host) { h.traceDir = dir } }

// WithAllocator sets the allocator of the batches the host receives.
func WithAllocator(a memory.Allocator) Option { return func(h *Host) { h.alloc = a } }

// WithChunkBytes sets the size input batches are split to stay under.
func WithChunkBytes(n int64) Option { return func(h *Host) { h.chunkBytes = n } }

// WithLockFile makes the host check every external plugin's executable
// against the lock file at path (see lockfile.PathFor) before it runs the
// plugin in any way, `describe` included: a plugin the file locks whose
// executable's sha256 differs is refused with a *ChecksumError and never
// started, and one whose sha256 matches runs from a private copy of the
// bytes that were checked (see execCache), so that what runs is what was
// checked. A plugin the file does not lock is run only when the pipeline
// names it (Resolve with its name, or a stage kind of its name; Start),
// with a warning in the log: never to list the plugins (Plugins), to
// collect stage kinds (Kinds) or to find which plugin provides a kind.
// The built-in plugin and reattached plugins are not checked. A missing
// file locks nothing; an unreadable or invalid one makes New fail.
func WithLockFile(path string) Option { return func(h *Host) { h.lockPath = path } }

// WithPipelineLock is WithLockFile for the lock file that belongs to the
// pipeline at paths (as given to config.Load): .sweetspot.lock.hcl in its
// directory, or in the directory of its first file.
func WithPipelineLock(paths ...string) Option { return WithLockFile(lockfile.PathFor(paths)) }

// DefaultSearchPaths are ./.sweetspot/plugins, ~/.sweetspot/plugins, then
// each entry of SWEETSPOT_PLUGIN_PATH.
func DefaultSearchPaths() []string {
	dirs := []string{filepath.Join(".sweetspot", "plugins")}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".sweetspot", "plugins"))
	}
	for _, d := range filepath.SplitList(os.Getenv(EnvPluginPath)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// New returns a host. SWEETSPOT_REATTACH (see stagerpc.EnvReattach) names
// plugins already serving in debug mode; the host connects to those instead
// of starting them.
func New(opts ...Option) (*Host, error) {
	h := &Host{
		logger:      hclog.NewNullLogger(),
		searchPaths: DefaultSearchPaths(),
		alloc:       memory.DefaultAllocator,
		startTimout: 30 * time.Second,
		cache:       map[describeKey]describeEntry{},
		clients:     map[*Client]struct{}{},
		exec:        newExecCache(""),
		peerAuth:    stagerpc.PeerAuthSupported,
	}
	for _, o := range opts {
		o(h)
	}
	if h.builtin != nil {
		if len(h.builtinCmd) == 0 {
			return nil, errors.New("pluginhost: the built-in plugin needs a command to start it")
		}
		h.builtinDesc = h.builtin.Describe()
	}
	if h.lockPath != "" {
		lock, found, err := lockfile.ReadOptional(h.lockPath)
		if err != nil {
			return nil, fmt.Errorf("pluginhost: %w", err)
		}
		h.lock, h.lockFound, h.warned = lock, found, map[string]bool{}
	}
	ra, err := stagerpc.ParseReattachEnv(os.Getenv(stagerpc.EnvReattach))
	if err != nil {
		return nil, fmt.Errorf("pluginhost: %w", err)
	}
	h.reattach = ra
	return h, nil
}

var _ config.Catalog = (*Host)(nil)

// PluginInfo is one plugin as `plugins list` shows it.
type PluginInfo struct {
	Name        string
	Path        string // the executable; empty for the built-in plugin
	Builtin     bool
	Description *describe.PluginDescription
	// Err is why the plugin could not be described (a *ChecksumError when
	// its executable does not match the lock file).
	Err error
	// NotRun: the plugin is not in the lock file, so Plugins did not run
	// it to describe it (Description is nil).
	NotRun bool
	// Checksum is how the executable compares with the lock file.
	Checksum ChecksumStatus
	// Locked is the plugin's lock file entry, or nil.
	Locked *lockfile.Plugin
}

// ChecksumStatus is how a plugin's executable compares with the lock file.
type ChecksumStatus string

const (
	// ChecksumBuiltin: the built-in plugin is this executable; it needs no
	// lock entry.
	ChecksumBuiltin ChecksumStatus = "builtin"
	// ChecksumOK: the lock file has the executable's sha256.
	ChecksumOK ChecksumStatus = "ok"
	// ChecksumMismatch: the lock file locks the plugin, but not to this
	// executable (or not on this platform); it will not be started.
	ChecksumMismatch ChecksumStatus = "MISMATCH"
	// ChecksumUnlocked: no lock entry; the plugin runs unchecked, and only
	// when the pipeline names it.
	ChecksumUnlocked ChecksumStatus = "unlocked"
)

// Lock returns the lock file's path and content; the path is "" when the
// host checks no lock file (no WithLockFile), and the content is empty when
// the file does not exist.
func (h *Host) Lock() (string, *lockfile.File) { return h.lockPath, h.lock }

// LockFound says whether the host checks a lock file that exists.
func (h *Host) LockFound() bool { return h.lockFound }

// Plugins lists the built-in plugin and every plugin in the search paths.
// The built-in plugin and the plugins the lock file locks are described
// (a locked plugin after its check); a plugin the lock file does not lock
// is listed as found, NotRun, without running it: it is not known to be
// the executable anyone installed. A plugin found in more than one
// directory is listed from the first, which shadows the others.
func (h *Host) Plugins() ([]PluginInfo, error) {
	found, err := h.discoverPlugins()
	if err != nil {
		return nil, err
	}
	var out []PluginInfo
	if h.builtinDesc != nil {
		out = append(out, PluginInfo{Name: h.builtinDesc.Name, Builtin: true, Description: h.builtinDesc, Checksum: ChecksumBuiltin})
	}
	for _, p := range found {
		if h.builtinDesc != nil && p.Name == h.builtinDesc.Name {
			continue
		}
		p = h.status(p)
		if p.Locked != nil {
			p.Description, p.Err = h.describeFile(p.Name, p.Path)
			if errors.As(p.Err, new(*ChecksumError)) {
				p.Checksum = ChecksumMismatch
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// status fills in a found plugin's lock entry and, for an unlocked one,
// its status; nothing runs.
func (h *Host) status(p PluginInfo) PluginInfo {
	p.Checksum = ChecksumUnlocked
	if h.lock != nil {
		p.Locked = h.lock.Plugins[p.Name]
	}
	if p.Locked != nil {
		p.Checksum = ChecksumOK
	} else {
		p.NotRun = true
	}
	return p
}

// Find returns one plugin by name without running it: the built-in
// plugin, or the external plugin the search paths give. A locked plugin's
// executable is checked (hashed, not run): Checksum is ChecksumMismatch,
// and Err the *ChecksumError, when it does not match. A missing plugin is
// a *NotFoundError.
func (h *Host) Find(name string) (PluginInfo, error) {
	if h.builtinDesc != nil && name == h.builtinDesc.Name {
		return PluginInfo{Name: name, Builtin: true, Description: h.builtinDesc, Checksum: ChecksumBuiltin}, nil
	}
	path, err := h.find(name)
	if err != nil {
		return PluginInfo{}, err
	}
	p := h.status(PluginInfo{Name: name, Path: path})
	if p.Locked != nil {
		if _, err := h.verify(name, path); err != nil {
			p.Err = err
			if errors.As(err, new(*ChecksumError)) {
				p.Checksum = ChecksumMismatch
			}
		}
	}
	return p, nil
}

// Describe returns the description of the plugin named name, running it
// as Resolve would for a stage block that names it: the built-in plugin
// is described in process; a locked plugin is checked first and its
// checked copy described; an unlocked plugin is run as it is, with a
// warning in the log when a lock file exists (use Find first to decide
// whether to).
func (h *Host) Describe(name string) (*describe.PluginDescription, error) { return h.describe(name) }

// discoverPlugins lists the plugin executables of the search paths, sorted
// by name. The listing is taken once per Host.
func (h *Host) discoverPlugins() ([]PluginInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.discover != nil {
		return h.discover, nil
	}
	seen := map[string]bool{}
	found := []PluginInfo{}
	for _, dir := range h.searchPaths {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			h.logger.Warn("cannot read plugin directory", "dir", dir, "error", err)
			continue
		}
		for _, e := range entries {
			name, ok := pluginNameOf(e.Name())
			if !ok || seen[name] {
				continue
			}
			path := filepath.Join(dir, e.Name())
			fi, err := os.Stat(path)
			if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
				continue
			}
			seen[name] = true
			found = append(found, PluginInfo{Name: name, Path: path})
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Name < found[j].Name })
	h.discover = found
	return found, nil
}

func pluginNameOf(file string) (string, bool) {
	if !strings.HasPrefix(file, sdk.PluginPrefix) {
		return "", false
	}
	name := strings.TrimSuffix(strings.TrimPrefix(file, sdk.PluginPrefix), ".exe")
	return name, name != ""
}

// find returns the executable of an external plugin.
func (h *Host) find(name string) (string, error) {
	found, err := h.discoverPlugins()
	if err != nil {
		return "", err
	}
	for _, p := range found {
		if p.Name == name {
			return p.Path, nil
		}
	}
	return "", &NotFoundError{Name: name, SearchPaths: h.searchPaths}
}

// NotFoundError is a plugin missing from every search path.
type NotFoundError struct {
	Name        string
	SearchPaths []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("no plugin named %q: looked for %s%s in %s (run `sweetspot init` to install the pipeline's required_plugins, put the plugin in one of those directories, or add its directory to %s)",
		e.Name, sdk.PluginPrefix, e.Name, strings.Join(e.SearchPaths, ", "), EnvPluginPath)
}

// Resolve returns the description of the plugin that provides kind. With
// plugin == "" that is the built-in plugin if it has the kind, else the
// external plugin named like the kind.
func (h *Host) Resolve(kind, plugin string) (*describe.PluginDescription, error) {
	if plugin == "" {
		if h.builtinDesc != nil && h.builtinDesc.Stage(kind) != nil {
			return h.builtinDesc, nil
		}
		d, err := h.describe(kind)
		if err != nil {
			var nf *NotFoundError
			if errors.As(err, &nf) {
				if d, ok, err := h.onlyProvider(kind); ok || err != nil {
					return d, err
				}
				return nil, fmt.Errorf("unknown stage kind %q: the built-in plugin does not have it and %w", kind, err)
			}
			return nil, err
		}
		if d.Stage(kind) == nil {
			return nil, fmt.Errorf("unknown stage kind %q: the built-in plugin does not have it, and plugin %q only has %s", kind, kind, stageKinds(d))
		}
		return d, nil
	}
	d, err := h.describe(plugin)
	if err != nil {
		return nil, err
	}
	if d.Stage(kind) == nil {
		return nil, fmt.Errorf("plugin %q has no stage kind %q (it has %s)", plugin, kind, stageKinds(d))
	}
	return d, nil
}

// onlyProvider finds the one installed plugin that provides kind, so a
// plugin with several stage kinds needs no `plugin = ...` in every block.
// Two providers are ambiguous: the user must choose. When a lock file
// exists, only the plugins it locks are asked: an unlocked executable that
// happens to sit in a plugin directory is not run to find out (an
// *UnlockedError names those, when no locked plugin provides the kind).
// Without a lock file, nothing says which plugins are the pipeline's, so
// every plugin found is asked, as before lock files existed.
func (h *Host) onlyProvider(kind string) (*describe.PluginDescription, bool, error) {
	infos, err := h.Plugins()
	if err != nil {
		return nil, false, err
	}
	var match []PluginInfo
	var unasked []string
	for _, p := range infos {
		if p.Builtin {
			continue
		}
		if p.NotRun {
			if h.lockFound {
				unasked = append(unasked, fmt.Sprintf("%q (%s)", p.Name, p.Path))
				continue
			}
			h.logger.Info("no lock file: asking the plugin which stage kinds it provides, to find the one that provides a stage kind no block names a plugin for (name it with plugin = \"NAME\" to ask only that one)",
				"plugin", p.Name, "path", p.Path, "kind", kind)
			p.Description, p.Err = h.describeFile(p.Name, p.Path)
		}
		if p.Err == nil && p.Description.Stage(kind) != nil {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 0:
		if len(unasked) > 0 {
			return nil, false, &UnlockedError{Kind: kind, Plugins: unasked, LockFile: h.lockPath}
		}
		return nil, false, nil
	case 1:
		return match[0].Description, true, nil
	}
	names := make([]string, len(match))
	for i, p := range match {
		names[i] = fmt.Sprintf("%q (%s)", p.Name, p.Path)
	}
	return nil, false, &AmbiguousKindError{Kind: kind, Plugins: names}
}

// AmbiguousKindError is a stage kind that several plugins provide, for a
// block that does not say which.
type AmbiguousKindError struct {
	Kind    string
	Plugins []string // `"NAME" (PATH)`
}

func (e *AmbiguousKindError) Error() string {
	return fmt.Sprintf("stage kind %q is provided by several plugins: %s; choose one with plugin = \"NAME\" in the block", e.Kind, strings.Join(e.Plugins, ", "))
}

// Is makes the loader report the error as it is (see ProtocolError.Is):
// which plugins provide the kind is known only after asking them, so the
// loader's list of known kinds may not have it yet.
func (e *AmbiguousKindError) Is(target error) bool { return target == config.ErrPluginRefused }

// UnlockedError is a stage kind that no built-in or locked plugin
// provides, while plugins the lock file does not lock, which the host did
// not run to ask, might.
type UnlockedError struct {
	Kind     string
	Plugins  []string // `"NAME" (PATH)`
	LockFile string
}

func (e *UnlockedError) Error() string {
	return fmt.Sprintf("no built-in or locked plugin provides the stage kind %q, and the plugins %s are not in the lock file %s, so they were not run to ask which stage kinds they provide: "+
		"name the plugin with plugin = \"NAME\" in the block, or list it in sweetspot { required_plugins {} } and run `sweetspot init` to lock it",
		e.Kind, strings.Join(e.Plugins, ", "), e.LockFile)
}

// Is makes the loader report the error as it is (see ProtocolError.Is).
func (e *UnlockedError) Is(target error) bool { return target == config.ErrPluginRefused }

func stageKinds(d *describe.PluginDescription) string {
	if len(d.Stages) == 0 {
		return "none"
	}
	kinds := make([]string, len(d.Stages))
	for i, s := range d.Stages {
		kinds[i] = s.Kind
	}
	return strings.Join(kinds, ", ")
}

// describe returns the description of a plugin by name.
func (h *Host) describe(name string) (*describe.PluginDescription, error) {
	if h.builtinDesc != nil && name == h.builtinDesc.Name {
		return h.builtinDesc, nil
	}
	path, err := h.find(name)
	if err != nil {
		return nil, err
	}
	return h.describeFile(name, path)
}

// Kinds lists the stage kinds of the built-in plugin, of the locked
// plugins and of every plugin described so far. It runs no unlocked
// plugin: a stage kind that only such a plugin provides is known once a
// block names the plugin.
func (h *Host) Kinds() []string {
	set := map[string]bool{}
	if h.builtinDesc != nil {
		for _, s := range h.builtinDesc.Stages {
			set[s.Kind] = true
		}
	}
	plugins, _ := h.Plugins()
	for _, p := range plugins {
		if p.Description == nil {
			continue
		}
		for _, s := range p.Description.Stages {
			set[s.Kind] = true
		}
	}
	h.mu.Lock()
	for _, e := range h.cache {
		if e.desc != nil {
			for _, s := range e.desc.Stages {
				set[s.Kind] = true
			}
		}
	}
	h.mu.Unlock()
	kinds := make([]string, 0, len(set))
	for k := range set {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

type describeKey struct {
	path  string
	size  int64
	mtime time.Time
}

type describeEntry struct {
	desc *describe.PluginDescription
	err  error
}

// describeFile runs `describe` of the plugin at path, after checking it
// against the lock file: a locked plugin's checked copy is what runs.
// Descriptions are cached by the executable's path, size and modification
// time, so a rebuilt plugin is described again.
func (h *Host) describeFile(name, path string) (*describe.PluginDescription, error) {
	exe, err := h.verify(name, path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	key := describeKey{path: exe, size: fi.Size(), mtime: fi.ModTime()}
	h.mu.Lock()
	e, ok := h.cache[key]
	h.mu.Unlock()
	if ok {
		return e.desc, e.err
	}
	d, err := describeExe(name, path, exe, h.env)
	h.mu.Lock()
	h.cache[key] = describeEntry{d, err}
	h.mu.Unlock()
	return d, err
}

// DescribeFile runs `PATH describe` and checks that the plugin speaks this
// host's protocol version (a *ProtocolError if not). It checks no lock
// file. The process gets BaseEnv from the host's environment and env
// ("K=V").
func DescribeFile(name, path string, env ...string) (*describe.PluginDescription, error) {
	return describeExe(name, path, path, env)
}

// DescribeChecked is DescribeFile for the installer, which locks what it
// describes: it reads the executable at path once, into a private copy
// (see execCache), and describes the copy, so that the sha256 it returns
// is that of the bytes that described themselves. With want set, an
// executable of another sha256 is not run: a *ChecksumError (naming
// lockFile) says so.
func DescribeChecked(name, path string, want []byte, lockFile string, env ...string) (*describe.PluginDescription, []byte, error) {
	exe, sum, err := newExecCache("").checked(path, want)
	if me := (*mismatchError)(nil); errors.As(err, &me) {
		return nil, me.got, &ChecksumError{Plugin: name, Path: path, LockFile: lockFile, Platform: lockfile.Platform(), Want: want, Got: me.got}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	d, err := describeExe(name, path, exe, env)
	return d, sum, err
}

// describeExe runs `EXE describe` for the plugin at path (named in
// errors).
func describeExe(name, path, exe string, env []string) (*describe.PluginDescription, error) {
	ctx, cancel := context.WithTimeout(context.Background(), describeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "describe")
	cmd.Env = describeEnv(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("plugin %s (%s): describe did not finish within %s", name, path, describeTimeout)
		}
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			msg = ": " + lastLines(msg, 5)
		}
		return nil, fmt.Errorf("plugin %s (%s): describe failed: %v%s", name, path, err, msg)
	}
	var d describe.PluginDescription
	if err := json.Unmarshal(stdout.Bytes(), &d); err != nil {
		return nil, fmt.Errorf("plugin %s (%s): describe printed no valid description: %w", name, path, err)
	}
	if d.ProtocolVersion != sdk.ProtocolVersion {
		return nil, &ProtocolError{Plugin: name, Path: path, PluginVersion: d.ProtocolVersion}
	}
	return &d, nil
}

// ProtocolError is a plugin that speaks another protocol version, found by
// `describe` or refused by the go-plugin handshake.
type ProtocolError struct {
	Plugin, Path  string
	PluginVersion int
}

func (e *ProtocolError) Error() string {
	var advice string
	if e.PluginVersion > sdk.ProtocolVersion {
		advice = fmt.Sprintf("the plugin is newer: upgrade sweetspot to a release that speaks protocol %d, or install a build of the plugin made for protocol %d (an older release of it)",
			e.PluginVersion, sdk.ProtocolVersion)
	} else {
		advice = fmt.Sprintf("the plugin is older: rebuild it against a newer sweetspot SDK (in the plugin's module: go get %s@latest; this sweetspot's SDK is %s, protocol %d), or upgrade the plugin to a release built for protocol %d",
			sdkModule, sdk.SDKVersion, sdk.ProtocolVersion, sdk.ProtocolVersion)
	}
	return fmt.Sprintf("plugin %s (%s) speaks stage protocol version %d, but this sweetspot speaks version %d: %s",
		e.Plugin, e.Path, e.PluginVersion, sdk.ProtocolVersion, advice)
}

// sdkModule is the module plugin authors build against.
const sdkModule = "github.com/sweetspot-ml/sweetspot"

// Is makes the loader report the error as it is: the plugin exists but
// cannot be used.
func (e *ProtocolError) Is(target error) bool { return target == config.ErrPluginRefused }

// ChecksumError is an executable that does not match its lock file entry.
// The host returns it before starting the process.
type ChecksumError struct {
	Plugin   string
	Path     string // the executable
	LockFile string
	Platform string // GOOS_GOARCH
	// Want is the locked sha256, nil when the lock file records none for
	// Platform; Got is the executable's.
	Want, Got []byte
}

func (e *ChecksumError) Error() string {
	if e.Want == nil {
		return fmt.Sprintf("plugin %s: the lock file %s records no checksum of it for %s, so the executable %s (%s) cannot be verified and was not started; "+
			"run `sweetspot init` to install it for this platform and record its checksum, or `sweetspot init --upgrade` to re-lock it",
			e.Plugin, e.LockFile, e.Platform, e.Path, lockfile.FormatHash(e.Got))
	}
	return fmt.Sprintf("plugin %s: checksum mismatch for %s: the lock file %s expects %s, the file has %s; it changed since `sweetspot init` installed it, so it was not started. "+
		"If the change is intended, re-lock with `sweetspot init --upgrade` (or delete the plugin %q block from %s and run `sweetspot init`); "+
		"otherwise run `sweetspot init`, which reinstalls the locked version and checks it",
		e.Plugin, e.Path, e.LockFile, lockfile.FormatHash(e.Want), lockfile.FormatHash(e.Got), e.Plugin, e.LockFile)
}

// Is makes the loader report the error as it is (see ProtocolError.Is).
func (e *ChecksumError) Is(target error) bool { return target == config.ErrPluginRefused }

// verify checks an external plugin's executable against the lock file; it
// must run before anything executes the file. It returns what to execute:
// for a plugin the lock file locks, the checked private copy of its bytes
// (see execCache); for one it does not, the file itself.
func (h *Host) verify(name, path string) (string, error) {
	if h.lock == nil {
		return path, nil
	}
	lp, ok := h.lock.Plugins[name]
	if !ok {
		h.warnUnlocked(name, path)
		return path, nil
	}
	return h.checked(name, path, h.lockPath, lp)
}

// checked checks the executable at path against a lock file entry (from
// lockPath, named in errors) and returns the path of the checked copy of
// its bytes, the one thing to execute.
func (h *Host) checked(name, path, lockPath string, lp *lockfile.Plugin) (string, error) {
	platform := lockfile.Platform()
	want, ok := lp.Hash(platform)
	if !ok {
		got, err := h.exec.sumOf(path)
		if err != nil {
			return "", fmt.Errorf("plugin %s: verify checksum: %w", name, err)
		}
		return "", &ChecksumError{Plugin: name, Path: path, LockFile: lockPath, Platform: platform, Got: got}
	}
	exe, _, err := h.exec.checked(path, want)
	if me := (*mismatchError)(nil); errors.As(err, &me) {
		return "", &ChecksumError{Plugin: name, Path: path, LockFile: lockPath, Platform: platform, Want: want, Got: me.got}
	}
	if err != nil {
		return "", fmt.Errorf("plugin %s: verify checksum: %w", name, err)
	}
	if h.afterCheck != nil {
		h.afterCheck(name)
	}
	return exe, nil
}

// warnUnlocked logs, once per plugin, that it runs unverified. Without a
// lock file at all that is the normal case of a plugin found on the search
// path, worth a note; a lock file that misses the plugin is worth a warning.
func (h *Host) warnUnlocked(name, path string) {
	h.mu.Lock()
	seen := h.warned[name]
	h.warned[name] = true
	h.mu.Unlock()
	if seen {
		return
	}
	const hint = "list it in the pipeline's sweetspot { required_plugins {} } and run `sweetspot init` to lock it"
	if h.lockFound {
		h.logger.Warn("plugin is not in the lock file; its executable is not verified: "+hint, "plugin", name, "path", path, "lock_file", h.lockPath)
		return
	}
	h.logger.Info("no lock file; the plugin's executable is not verified: "+hint, "plugin", name, "path", path, "lock_file", h.lockPath)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close kills every plugin process the host started. It is safe to call
// more than once; Start fails after it.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	clients := make([]*Client, 0, len(h.clients))
	for c := range h.clients {
		clients = append(clients, c)
	}
	h.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Kill()
		}()
	}
	wg.Wait()
	h.mu.Lock()
	dir := h.sockDir
	h.mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}
