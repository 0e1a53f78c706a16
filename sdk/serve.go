package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/internal/wire"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// PluginPrefix starts the executable name of every external plugin.
const PluginPrefix = "sweetspot-plugin-"

// BuildTags are the build tags a plugin is built with (`plugins install`
// passes them to go build): the pure-Go name resolver and user lookup, so
// that a plugin using no cgo of its own links no C library and is a static
// executable. Its process then starts without the dynamic loader and cgo's
// runtime setup, about 1 ms (8%) of a plugin's start and handshake on a
// 2-core machine (BenchmarkPluginStart in docs/benchmarks.md). A plugin
// that uses cgo still builds, linked dynamically.
const BuildTags = "netgo,osusergo"

// EnvLogLevel sets a plugin's log level (trace, debug, info, warn, error);
// the host passes its own.
const EnvLogLevel = "SWEETSPOT_LOG_LEVEL"

// Run is a plugin's main: with "describe" it prints the plugin description
// as JSON; with "serve" or no argument it serves the host that started it;
// with "-debug" (or "serve -debug") it serves in the foreground and prints
// the line that lets a host attach to it, for running under a debugger.
func (s *Set) Run(args []string) error {
	cmd, rest := "serve", args
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	debug := false
	switch cmd {
	case "describe":
		if len(rest) > 0 {
			return fmt.Errorf("describe takes no arguments, got %q", rest)
		}
		return s.writeDescription(os.Stdout)
	case "-debug", "--debug":
		debug = true
	case "serve":
		for _, a := range rest {
			switch a {
			case "-debug", "--debug":
				debug = true
			default:
				return fmt.Errorf("serve: unknown argument %q (want -debug)", a)
			}
		}
	default:
		return fmt.Errorf("unknown command %q: a sweetspot plugin understands describe, serve and -debug", cmd)
	}
	if !debug {
		return s.Serve()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	name := s.pluginName()
	return s.Serve(ServeInProcess(ctx, func(r stagerpc.Reattach) {
		js, err := json.Marshal(map[string]stagerpc.Reattach{name: r})
		if err != nil {
			fmt.Fprintln(os.Stderr, "reattach config:", err)
			return
		}
		fmt.Fprintf(os.Stdout, "Plugin %s is serving in debug mode. To use it, set in the host's environment:\n\n\t%s='%s'\n\nPress Ctrl-C to stop.\n", name, stagerpc.EnvReattach, js)
	}), serveTelemetry())
}

func (s *Set) writeDescription(w io.Writer) error {
	js, err := json.MarshalIndent(s.Describe(), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", js)
	return err
}

func (s *Set) pluginName() string {
	if s.name != "" {
		return s.name
	}
	base := filepath.Base(os.Args[0])
	base = strings.TrimSuffix(base, ".exe")
	return strings.TrimPrefix(base, PluginPrefix)
}

// Describe returns the plugin's description: what `describe` prints and the
// Describe call returns. The host uses it to describe built-in stages
// without starting a process.
func (s *Set) Describe() *describe.PluginDescription {
	d := &describe.PluginDescription{
		Name:            s.pluginName(),
		Version:         s.version,
		SDKVersion:      SDKVersion,
		ProtocolVersion: ProtocolVersion,
		Stages:          make([]describe.StageDescription, 0, len(s.kinds)),
	}
	for _, kind := range s.kinds {
		e := s.entries[kind]
		// Register already proved the config type usable.
		schema, _ := configSchemaOf(e.configType)
		d.Stages = append(d.Stages, describe.StageDescription{
			Kind:        kind,
			Description: e.info.Description,
			Config:      schema,
			Inputs:      describePorts(e.info.Inputs),
			Outputs:     describePorts(e.info.Outputs),
			Loop:        e.info.Loop,
			Resume:      e.info.Resume,
			InputFiles:  e.info.InputFiles,
		})
	}
	return d
}

func describePorts(ports []Port) []describe.PortDescription {
	out := make([]describe.PortDescription, 0, len(ports))
	for _, p := range ports {
		pd := describe.PortDescription{Name: p.Name, Description: p.Description, Optional: p.Optional}
		if p.Schema != nil {
			pd.ArrowSchema = stagerpc.SerializeSchema(p.Schema, memory.DefaultAllocator)
			for _, f := range p.Schema.Fields() {
				pd.Fields = append(pd.Fields, describe.FieldDescription{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable})
			}
		}
		out = append(out, pd)
	}
	return out
}

// ServeOption tunes Serve. Run serves with the defaults.
type ServeOption func(*serveOptions)

type serveOptions struct {
	alloc      memory.Allocator
	logger     hclog.Logger
	chunkBytes int64
	tp         trace.TracerProvider
	ctx        context.Context
	reattach   func(stagerpc.Reattach)
	// telemetry says whether to set up tracing from the environment when no
	// tracer provider is given: a plugin process does, a test serving in its
	// own process does not.
	telemetry bool
}

// ServeAllocator sets the allocator for every batch the plugin reads and
// hands to its stages; tests pass a checked allocator.
func ServeAllocator(a memory.Allocator) ServeOption {
	return func(o *serveOptions) { o.alloc = a }
}

// ServeLogger replaces the JSON logger on stderr.
func ServeLogger(l hclog.Logger) ServeOption {
	return func(o *serveOptions) { o.logger = l }
}

// ServeChunkBytes sets the size output batches are split to stay under.
func ServeChunkBytes(n int64) ServeOption {
	return func(o *serveOptions) { o.chunkBytes = n }
}

// ServeTracerProvider makes the plugin record its spans with tp instead of
// setting up its own from the environment.
func ServeTracerProvider(tp trace.TracerProvider) ServeOption {
	return func(o *serveOptions) { o.tp = tp }
}

// ServeInProcess serves in go-plugin's test mode until ctx ends: no
// handshake on stdout, and reattach receives what a host needs to connect
// (the value -debug prints for SWEETSPOT_REATTACH). Serve then returns
// once serving has stopped. sdktest and -debug use it.
func ServeInProcess(ctx context.Context, reattach func(stagerpc.Reattach)) ServeOption {
	return func(o *serveOptions) { o.ctx, o.reattach, o.telemetry = ctx, reattach, false }
}

// serveTelemetry turns environment-configured tracing back on after
// ServeInProcess, for -debug, which is a real plugin process.
func serveTelemetry() ServeOption { return func(o *serveOptions) { o.telemetry = true } }

// Serve serves the set's stages over go-plugin. Without ServeInProcess it
// must run in a process started by a sweetspot host, and returns when the
// host is done with it.
func (s *Set) Serve(opts ...ServeOption) error {
	o := serveOptions{alloc: memory.DefaultAllocator, chunkBytes: stagerpc.DefaultChunkBytes, telemetry: true}
	for _, f := range opts {
		f(&o)
	}
	name := s.pluginName()
	if o.ctx == nil && os.Getenv(stagerpc.MagicCookieKey) != stagerpc.MagicCookieValue {
		// go-plugin would print its own message and exit; this one says
		// what to do instead.
		return fmt.Errorf("%s is a sweetspot plugin: sweetspot starts it; run `%s describe` to see its stages or `%[2]s -debug` to serve it for a debugger", name, filepath.Base(os.Args[0]))
	}
	if o.logger == nil {
		level := hclog.LevelFromString(os.Getenv(EnvLogLevel))
		if level == hclog.NoLevel {
			level = hclog.Info
		}
		o.logger = hclog.New(&hclog.LoggerOptions{
			Level:      level,
			Output:     os.Stderr,
			JSONFormat: true,
		})
	}

	tp := o.tp
	var flush func(context.Context) error
	if tp == nil && o.telemetry {
		p, err := telemetry.Setup(context.Background(), telemetry.FromEnv(telemetry.Config{Service: "sweetspot-plugin-" + name}))
		if err != nil {
			// Tracing is worth a warning, not a failed stage.
			o.logger.Warn("tracing disabled", "error", err)
		} else {
			tp = p
			flush = p.ForceFlush
			defer func() {
				if err := p.Shutdown(context.Background()); err != nil {
					o.logger.Warn("shutting down tracing", "error", err)
				}
			}()
		}
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if flush == nil {
		if f, ok := tp.(interface{ ForceFlush(context.Context) error }); ok {
			flush = f.ForceFlush
		}
	}

	srv := wire.NewServer(&backend{set: s}, wire.Options{
		Logger:     o.logger,
		Allocator:  o.alloc,
		ChunkBytes: o.chunkBytes,
		Tracer:     tp.Tracer("github.com/sweetspot-ml/sweetspot/sdk"),
		ForceFlush: flush,
		Plugin:     name,
	})
	var auth credentials.TransportCredentials
	if o.ctx == nil {
		var err error
		if auth, err = stagerpc.ServerAuth(); err != nil {
			return err
		}
	}
	cfg := &plugin.ServeConfig{
		HandshakeConfig: stagerpc.Handshake(ProtocolVersion),
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {stagerpc.PluginName: &stagerpc.Plugin{Impl: srv}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, stagerpc.ServerOptions(tp)...)
			if auth != nil {
				opts = append(opts, grpc.Creds(auth))
			}
			return grpc.NewServer(opts...)
		},
		// The key the host made for this process, when it gave one;
		// otherwise go-plugin's AutoMTLS makes one.
		TLSProvider: stagerpc.ServerTLS,
		Logger:      o.logger,
	}
	if auth != nil {
		// The host checks who listens, and this process who connects
		// (stagerpc.ServerAuth): no TLS.
		cfg.TLSProvider = nil
	}
	if o.ctx != nil {
		ch := make(chan *plugin.ReattachConfig, 1)
		closed := make(chan struct{})
		cfg.Test = &plugin.ServeTestConfig{Context: o.ctx, ReattachConfigCh: ch, CloseCh: closed}
		go func() {
			select {
			case rc := <-ch:
				if o.reattach != nil {
					o.reattach(stagerpc.ReattachOf(rc))
				}
			case <-closed:
			}
		}()
		plugin.Serve(cfg)
		<-closed
		return nil
	}
	go exitWithParent(o.logger)
	plugin.Serve(cfg)
	return nil
}

// exitWithParent ends the plugin when the host that started it is gone:
// a host killed with SIGKILL cannot stop its plugins, and an orphaned stage
// would go on burning CPU. Re-parenting shows as a change of parent pid.
func exitWithParent(logger hclog.Logger) {
	parent := os.Getppid()
	for range time.Tick(500 * time.Millisecond) {
		if os.Getppid() != parent {
			logger.Error("the sweetspot host is gone; stopping", "host_pid", parent)
			os.Exit(1)
		}
	}
}

// ErrNotConnected is returned by Inputs.Reader for an input port that the
// pipeline leaves unconnected.
var ErrNotConnected = errors.New("port not connected")
