package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/zclconf/go-cty/cty"
	"google.golang.org/grpc"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagehost"
	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// The run types are the protocol client's; they are re-exported here so
// the runner needs only this package.
type (
	RunRequest = stagehost.RunRequest
	InputFile  = stagehost.InputFile
	RunResult  = stagehost.RunResult
	RunError   = stagehost.RunError
	ErrorKind  = stagehost.ErrorKind
)

// Error kinds of a RunError.
const (
	KindInternal       = stagehost.KindInternal
	KindConfig         = stagehost.KindConfig
	KindSchemaMismatch = stagehost.KindSchemaMismatch
	KindCanceled       = stagehost.KindCanceled
	KindRetryAfter     = stagehost.KindRetryAfter
	KindInput          = stagehost.KindInput
	KindCrashed        = stagehost.KindCrashed
)

// ErrPluginCrashed is wrapped by the error of a run whose plugin process
// exited or whose connection broke.
var ErrPluginCrashed = stagehost.ErrPluginCrashed

// crashWait is how long a broken run waits for the process to be seen
// exiting, so the error can say how it ended.
const crashWait = 2 * time.Second

// Client is one running plugin process.
type Client struct {
	host   *Host
	name   string
	path   string // the plugin's executable as found; "" when reattached
	pc     *plugin.Client
	cfg    *plugin.ClientConfig
	cmd    *exec.Cmd // nil when reattached
	pid    int
	rpc    *stagehost.Client
	stderr *tailBuffer
	stdout *stdoutWatch
	// transport is how the connection is secured (Transport).
	transport string

	killOnce sync.Once

	mu      sync.Mutex
	peakRSS int64
}

// Start starts a new process of the named plugin (the built-in plugin's
// name, or an external plugin's) and connects to it over gRPC, each end
// knowing the other by its Unix socket's peer credentials and a secret
// made for this process, or by mutual TLS where that cannot be (see
// pluginTransport).
// An external plugin that the lock file (WithLockFile) locks is started
// only if its executable has the locked sha256, and then from a private
// copy of the bytes that were checked, so that a file swapped after the
// check is never what runs; otherwise Start returns a *ChecksumError and
// no process is started.
//
// The process's environment is explicit: BaseEnv and the variables opts
// pass through (PassEnv) from the host's, and the host's own plumbing
// (WithEnv, the log level, the span file); nothing else of the host's
// environment reaches it.
func (h *Host) Start(ctx context.Context, name string, start ...StartOption) (*Client, error) {
	var so startOptions
	for _, o := range start {
		o(&so)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("pluginhost: host is closed")
	}
	h.started++
	n := h.started
	h.mu.Unlock()

	logger := h.logger.Named(name)
	c := &Client{host: h, name: name, stderr: newTailBuffer(8 << 10), stdout: &stdoutWatch{}}
	cfg := &plugin.ClientConfig{
		HandshakeConfig: stagerpc.Handshake(sdk.ProtocolVersion),
		VersionedPlugins: map[int]plugin.PluginSet{
			sdk.ProtocolVersion: {stagerpc.PluginName: &stagerpc.Plugin{}},
		},
		Plugins:          plugin.PluginSet{stagerpc.PluginName: &stagerpc.Plugin{}},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           logger,
		GRPCDialOptions:  stagerpc.DialOptions(),
		Stderr:           c.stderr,
		// A plugin's stdout carries nothing after the handshake; what it
		// writes there anyway fails the stage that is running.
		SyncStdout: c.stdout,
		// What the plugin writes to os.Stderr itself (not through its
		// logger) arrives here; keep it for crash reports, and log it.
		SyncStderr:   io.MultiWriter(c.stderr, &lineLogger{logger: logger}),
		StartTimeout: h.startTimout,
	}

	var authSecret []byte
	if ra, ok := h.reattach[name]; ok {
		rc, err := ra.Config()
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", name, err)
		}
		cfg.Reattach = rc
		c.pid = rc.Pid
		c.transport = TransportNone
		// Only SWEETSPOT_REATTACH gets here: a debugger's plugin, started by
		// the user, with neither a checksum check nor mutual TLS.
		logger.Warn("connecting to a plugin already serving in debug mode ("+stagerpc.EnvReattach+"): no checksum check, no mutual TLS", "pid", rc.Pid)
	} else {
		var argv []string
		if h.builtinDesc != nil && name == h.builtinDesc.Name {
			argv = h.builtinCmd
			c.path = argv[0]
		} else {
			path, err := h.find(name)
			if err != nil {
				return nil, err
			}
			exe, err := so.verify(h, name, path)
			if err != nil {
				return nil, err
			}
			c.path = path
			argv = []string{exe}
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		set := append(slices.Clone(h.env), sdk.EnvLogLevel+"="+levelName(h.logger))
		if h.traceDir != "" {
			set = append(set, telemetry.EnvTraceFile+"="+filepath.Join(h.traceDir, fmt.Sprintf("plugin-%s-%d.jsonl", name, n)))
		}
		tlsConfig, tlsEnv, secret, err := h.pluginTransport()
		if err != nil {
			return nil, fmt.Errorf("plugin %s: %w", name, err)
		}
		authSecret = secret

		cmd.Env = append(pluginEnv(os.Environ(), so.passEnv, set), tlsEnv...)
		cfg.Cmd = cmd
		// go-plugin would append the whole host environment; the plugin
		// gets cmd.Env and the handshake variables go-plugin adds.
		cfg.SkipHostEnv = true
		// Peer authentication, or mutual TLS as go-plugin's AutoMTLS does
		// it with P-256 keys (see pluginTransport and connect).
		cfg.TLSConfig = tlsConfig
		c.transport = TransportTLS
		// No go-plugin SecureConfig: it hashes the file by path right before
		// exec, which narrows the window between check and exec but cannot
		// close it. A locked plugin runs from the host's checked copy
		// instead (see execCache), which nobody else can change.
		c.cmd = cmd
	}
	c.cfg = cfg

	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("starting plugin %s: %w", name, err)
	}
	pc := plugin.NewClient(cfg)
	c.pc = pc
	// go-plugin's start takes no context: killing the process is how a
	// cancelled start ends.
	stop := context.AfterFunc(ctx, pc.Kill)
	proto, err := c.connect(pc, authSecret)
	if !stop() {
		pc.Kill()
		return nil, fmt.Errorf("starting plugin %s: %w", name, ctx.Err())
	}
	if err != nil {
		pc.Kill()
		return nil, c.startError(err)
	}
	raw, err := proto.Dispense(stagerpc.PluginName)
	if err != nil {
		pc.Kill()
		return nil, fmt.Errorf("plugin %s: %w", name, err)
	}
	if c.cmd != nil && c.cmd.Process != nil {
		c.pid = c.cmd.Process.Pid
	}
	opts := []stagehost.Option{stagehost.WithPluginName(name), stagehost.WithAllocator(h.alloc)}
	if h.chunkBytes > 0 {
		opts = append(opts, stagehost.WithChunkBytes(h.chunkBytes))
	}
	if h.deliveryHook != nil {
		opts = append(opts, stagehost.WithDeliveryHook(h.deliveryHook))
	}
	c.rpc = stagehost.New(raw.(stagepb.StageServiceClient), opts...)

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		pc.Kill()
		return nil, errors.New("pluginhost: host is closed")
	}
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	return c, nil
}

// The security of the connection to a plugin process (Client.Transport).
const (
	// TransportPeer: each end knows the other from its Unix socket's peer
	// credentials, and the host sends a secret made for this process (see
	// stagerpc.EnvAuth).
	TransportPeer = "unix-peer"
	// TransportTLS: mutual TLS.
	TransportTLS = "tls"
	// TransportNone: a plugin reattached in debug mode (SWEETSPOT_REATTACH).
	TransportNone = "none"
)

// connect waits for the plugin's handshake line and connects. With a peer
// authentication secret, the line decides how: a plugin that sends a
// certificate of its own there (an SDK that predates peer authentication,
// serving as go-plugin's AutoMTLS does) gets mutual TLS with it; any other
// gets peer authentication, and its socket must be served by the process
// the host started.
func (c *Client) connect(pc *plugin.Client, secret []byte) (plugin.ClientProtocol, error) {
	if secret != nil {
		if _, err := pc.Start(); err != nil {
			return nil, err
		}

		if c.cfg.TLSConfig.RootCAs == nil {
			c.cfg.GRPCDialOptions = append(c.cfg.GRPCDialOptions,
				grpc.WithTransportCredentials(stagerpc.HostAuth(c.cmd.Process.Pid, secret)))
			c.transport = TransportPeer
		}
	}
	return pc.Client()
}

// Transport is how the connection to the plugin is secured: TransportPeer,
// TransportTLS or TransportNone.
func (c *Client) Transport() string { return c.transport }

// incompatibleVersion is go-plugin's handshake error for a plugin that
// offers none of the host's protocol versions.
var incompatibleVersion = regexp.MustCompile(`(?i)incompatible API version with plugin\. Plugin version: (\d+)`)

func (c *Client) startError(err error) error {
	msg := err.Error()
	if m := incompatibleVersion.FindStringSubmatch(msg); m != nil {
		v, _ := strconv.Atoi(m[1])
		path := "reattached"
		if c.cmd != nil {
			path = c.path
		}
		return &ProtocolError{Plugin: c.name, Path: path, PluginVersion: v}
	}
	output := ""
	if tail := strings.TrimSpace(c.stderr.String()); tail != "" {
		output = "; plugin output: " + lastLines(tail, 5)
	}
	switch {
	case strings.Contains(msg, "plugin exited before we could connect"):
		how := "exited"
		if c.exited(crashWait / 4) {
			how = c.exitDescription()
		}
		return fmt.Errorf("plugin %s %s during the go-plugin handshake, before it served%s", c.name, how, output)
	case strings.HasPrefix(msg, "Unrecognized remote plugin message: "):
		// go-plugin's advice (architecture, libraries, permissions) is for
		// a process that printed nothing; this one printed something else.
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, "Unrecognized remote plugin message: "), "\n")
		if line == "" {
			// Its stdout closed as it exited: say how it ended.
			if c.exited(crashWait / 4) {
				return fmt.Errorf("plugin %s %s during the go-plugin handshake, before it served%s", c.name, c.exitDescription(), output)
			}
			return fmt.Errorf("plugin %s closed its stdout without writing the go-plugin handshake line%s", c.name, output)
		}
		return fmt.Errorf("plugin %s printed %q on stdout where the go-plugin handshake line belongs: "+
			"it is not a sweetspot plugin, or it writes to stdout before serving (a plugin logs to stderr); the process was killed%s", c.name, line, output)
	}
	msg += output
	return fmt.Errorf("starting plugin %s: %s", c.name, msg)
}

func levelName(l hclog.Logger) string {
	switch {
	case l.IsTrace():
		return "trace"
	case l.IsDebug():
		return "debug"
	case l.IsInfo():
		return "info"
	case l.IsWarn():
		return "warn"
	}
	return "error"
}

// Pid is the plugin's process id.
func (c *Client) Pid() int { return c.pid }

// Name is the plugin's name.
func (c *Client) Name() string { return c.name }

// Describe asks the running plugin for its description.
func (c *Client) Describe(ctx context.Context) (*describe.PluginDescription, error) {
	return c.rpc.Describe(ctx)
}

// Configure validates a config value for a stage kind.
func (c *Client) Configure(ctx context.Context, kind string, config cty.Value) (sdk.Diagnostics, error) {
	diags, err := c.rpc.Configure(ctx, kind, config)
	if err != nil && ctx.Err() == nil && c.exited(crashWait/4) {
		return nil, fmt.Errorf("plugin %s %s while configuring %s", c.name, c.exitDescription(), kind)
	}
	return diags, err
}

// Run runs one stage in the plugin. A run whose context ends kills the
// process (a stage that ignores its context must not keep running): start
// a new client for the next run. A run whose plugin died returns a
// *RunError of KindCrashed saying how the process ended. While the stage
// runs, the host watches the process: over its memory limit (see
// WithMemoryLimit) it is killed with its children and the run fails with a
// *MemoryLimitError; writing to stdout stops it with a *StdoutError.
func (c *Client) Run(ctx context.Context, req RunRequest, opts ...RunOption) (*RunResult, error) {
	var o runOptions
	for _, f := range opts {
		f(&o)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := c.watch(req.Stage, o.memoryLimit, cancel)
	res, err := c.rpc.Run(runCtx, req)
	peak, fault := w.stop()
	c.mu.Lock()
	c.peakRSS = max(c.peakRSS, peak)
	c.mu.Unlock()
	if fault != nil {
		c.Kill()
		return nil, fault
	}
	if err == nil {
		return res, nil
	}
	var re *RunError
	if !errors.As(err, &re) {
		return nil, err
	}
	switch {
	case re.Kind == KindCrashed && tooLarge.MatchString(re.Message):
		// The process is alive and well; what it sent is not.
		m := tooLarge.FindStringSubmatch(re.Message)
		got, _ := strconv.ParseInt(m[1], 10, 64)
		limit, _ := strconv.ParseInt(m[2], 10, 64)
		re.Kind = KindInternal
		re.Message = fmt.Sprintf("the plugin sent one message of %.1f MiB, over the %s MiB gRPC message limit, so the host could not receive it "+
			"(the sweetspot SDK splits batches by rows to stay under the limit; this plugin sends without it); the plugin process (pid %d) was killed",
			float64(got)/(1<<20), mib(limit), c.pid)
		c.Kill()
	case re.Kind == KindCrashed:
		if c.exited(crashWait) {
			re.Message = fmt.Sprintf("the plugin process %s before the stage finished", c.exitDescription())
			if tail := c.panicOutput(); tail != "" {
				re.Message += ":\n" + tail
			}
		} else {
			re.Message = fmt.Sprintf("%s; the plugin process (pid %d) was killed", re.Message, c.pid)
			c.Kill()
		}
	case ctx.Err() != nil:
		c.Kill()
	}
	return nil, re
}

// tooLarge is gRPC's error for a received message over the limit.
var tooLarge = regexp.MustCompile(`received message larger than max \((\d+) vs\. (\d+)\)`)

// PeakRSS is the most resident memory, in bytes, that the plugin process
// (with its children) held by the end of its latest run: the kernel's
// high-water mark, or the host's samples when they saw more. 0 before any
// run, and when /proc is not there to ask.
func (c *Client) PeakRSS() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peakRSS
}

// exited waits up to d for the process to be seen gone.
func (c *Client) exited(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if c.pc.Exited() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exitDescription says how the process ended, e.g. "exited (exit status
// 3)". Call it once exited reports true.
func (c *Client) exitDescription() string {
	if c.cmd != nil && c.cmd.ProcessState != nil {
		return fmt.Sprintf("exited (%s)", c.cmd.ProcessState)
	}
	return "exited"
}

// panicOutput is the end of what the plugin wrote to stderr that is not a
// JSON log line (a Go panic, a fatal error), if any.
func (c *Client) panicOutput() string {
	var lines []string
	for _, l := range strings.Split(c.stderr.String(), "\n") {
		if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "{") {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	if len(lines) > 20 {
		lines = lines[:20]
	}
	return strings.Join(lines, "\n")
}

// killGrace bounds how long Kill waits for a plugin asked to stop. go-plugin
// waits for its shutdown call to be answered for as long as the process
// lives, so a frozen plugin (stopped, or stuck in the kernel) would hold
// Kill, and the host's exit, forever.
const killGrace = 3 * time.Second

// Kill stops the plugin process (gracefully for up to two seconds, then by
// force; by force at once when it does not answer within killGrace) and
// waits for it. Safe to call more than once.
func (c *Client) Kill() {
	c.killOnce.Do(func() {
		// A plugin's children are re-parented once it is gone and can no
		// longer be found from it: list them first.
		var tree []int
		if c.cmd != nil && c.cmd.Process != nil {
			tree = processTree(c.cmd.Process.Pid)
		}
		defer killStrays(tree)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			c.pc.Kill()
		}()
		select {
		case <-stopped:
		case <-time.After(killGrace):
			c.forceKill()
			<-stopped
		}
		c.host.mu.Lock()
		delete(c.host.clients, c)
		c.host.mu.Unlock()
	})
}

// forceKill sends SIGKILL to a process this host started and to its
// descendants, children first, so none is left behind re-parented.
func (c *Client) forceKill() {
	if c.cmd != nil && c.cmd.Process != nil {
		tree := processTree(c.cmd.Process.Pid)
		for i := len(tree) - 1; i >= 1; i-- {
			_ = syscall.Kill(tree[i], syscall.SIGKILL)
		}
		_ = c.cmd.Process.Kill()
	}
}

// killStrays kills what is left of a stopped plugin's process tree (tree as
// processTree listed it while the plugin lived): a child that ignored the
// plugin's end would otherwise run on, re-parented, after its stage.
func killStrays(tree []int) {
	for i := len(tree) - 1; i >= 1; i-- {
		_ = syscall.Kill(tree[i], syscall.SIGKILL)
	}
}

// Abort kills every plugin process the host started, at once and without
// asking (what a second Ctrl-C asks for), and refuses to start more. Unlike
// Close it does not wait for the processes to end.
func (h *Host) Abort() {
	h.mu.Lock()
	h.closed = true
	for c := range h.clients {
		c.forceKill()
	}
	h.mu.Unlock()
}

// lineLogger logs each line written to it.
type lineLogger struct {
	logger hclog.Logger
	mu     sync.Mutex
	buf    []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		if line := strings.TrimRight(string(l.buf[:i]), "\r"); line != "" {
			l.logger.Info(line)
		}
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTailBuffer(max int) *tailBuffer { return &tailBuffer{max: max} }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
