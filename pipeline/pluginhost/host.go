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
	"github.com/sweetspot-ml/sweetspot/pipeline/install/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
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
	builtinDesc *sdk.PluginDescription
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
	raw, err := lockfile.HashFile(path)
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
// started. Plugins the file does not lock run as before, with a warning in
// the log; the built-in plugin and reattached plugins are not checked. A
// missing file locks nothing; an unreadable or invalid one makes New fail.
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
	Description *sdk.PluginDescription
	// Err is why the plugin could not be described (a *ChecksumError when
	// its executable does not match the lock file).
	Err error
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
	// ChecksumUnlocked: no lock entry; the plugin runs unchecked.
	ChecksumUnlocked ChecksumStatus = "unlocked"
)

// Lock returns the lock file's path and content; the path is "" when the
// host checks no lock file (no WithLockFile), and the content is empty when
// the file does not exist.
func (h *Host) Lock() (string, *lockfile.File) { return h.lockPath, h.lock }

// Plugins lists the built-in plugin and every plugin in the search paths,
// described. A plugin found in more than one directory is listed from the
// first, which shadows the others.
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
		p.Description, p.Err = h.describeFile(p.Name, p.Path)
		p.Checksum = ChecksumUnlocked
		if h.lock != nil {
			p.Locked = h.lock.Plugins[p.Name]
		}
		var ce *ChecksumError
		switch {
		case errors.As(p.Err, &ce):
			p.Checksum = ChecksumMismatch
		case p.Locked != nil:
			p.Checksum = ChecksumOK
		}
		out = append(out, p)
	}
	return out, nil
}

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
func (h *Host) Resolve(kind, plugin string) (*sdk.PluginDescription, error) {
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
// Two providers are ambiguous: the user must choose.
func (h *Host) onlyProvider(kind string) (*sdk.PluginDescription, bool, error) {
	infos, err := h.Plugins()
	if err != nil {
		return nil, false, err
	}
	var match []PluginInfo
	for _, p := range infos {
		if p.Err == nil && !p.Builtin && p.Description.Stage(kind) != nil {
			match = append(match, p)
		}
	}
	switch len(match) {
	case 0:
		return nil, false, nil
	case 1:
		return match[0].Description, true, nil
	}
	names := make([]string, len(match))
	for i, p := range match {
		names[i] = fmt.Sprintf("%q (%s)", p.Name, p.Path)
	}
	return nil, false, fmt.Errorf("stage kind %q is provided by several plugins: %s; choose one with plugin = \"NAME\" in the block", kind, strings.Join(names, ", "))
}

func stageKinds(d *sdk.PluginDescription) string {
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
func (h *Host) describe(name string) (*sdk.PluginDescription, error) {
	if h.builtinDesc != nil && name == h.builtinDesc.Name {
		return h.builtinDesc, nil
	}
	path, err := h.find(name)
	if err != nil {
		return nil, err
	}
	return h.describeFile(name, path)
}

// Kinds lists every stage kind of the built-in and the external plugins.
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
	desc *sdk.PluginDescription
	err  error
}

// describeFile runs `PATH describe`, cached by the file's path, size and
// modification time so a rebuilt plugin is described again. The executable
// is checked against the lock file first: describing runs it.
func (h *Host) describeFile(name, path string) (*sdk.PluginDescription, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	key := describeKey{path: path, size: fi.Size(), mtime: fi.ModTime()}
	h.mu.Lock()
	e, ok := h.cache[key]
	h.mu.Unlock()
	if ok {
		return e.desc, e.err
	}
	_, err = h.verify(name, path)
	var d *sdk.PluginDescription
	if err == nil {
		d, err = DescribeFile(name, path, h.env...)
	}
	h.mu.Lock()
	h.cache[key] = describeEntry{d, err}
	h.mu.Unlock()
	return d, err
}

// DescribeFile runs `PATH describe` and checks that the plugin speaks this
// host's protocol version (a *ProtocolError if not). It checks no lock
// file: the installer uses it on the executable it is about to lock. The
// process gets BaseEnv from the host's environment and env ("K=V").
func DescribeFile(name, path string, env ...string) (*sdk.PluginDescription, error) {
	ctx, cancel := context.WithTimeout(context.Background(), describeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "describe")
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
	var d sdk.PluginDescription
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
// must run before anything executes the file. It returns the locked sha256,
// or nil for a plugin the host does not check.
func (h *Host) verify(name, path string) ([]byte, error) {
	if h.lock == nil {
		return nil, nil
	}
	lp, ok := h.lock.Plugins[name]
	if !ok {
		h.warnUnlocked(name, path)
		return nil, nil
	}
	return verifyLocked(name, path, h.lockPath, lp)
}

// verifyLocked checks the executable at path against a lock file entry
// (from lockPath, named in errors).
func verifyLocked(name, path, lockPath string, lp *lockfile.Plugin) ([]byte, error) {
	got, err := lockfile.HashFile(path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: verify checksum: %w", name, err)
	}
	platform := lockfile.Platform()
	want, ok := lp.Hash(platform)
	if !ok {
		return nil, &ChecksumError{Plugin: name, Path: path, LockFile: lockPath, Platform: platform, Got: got}
	}
	if !bytes.Equal(want, got) {
		return nil, &ChecksumError{Plugin: name, Path: path, LockFile: lockPath, Platform: platform, Want: want, Got: got}
	}
	return want, nil
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
}
