package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/attribute"

	"github.com/sweetspot-ml/sweetspot/internal/telemetry"
	"github.com/sweetspot-ml/sweetspot/pipeline/blobstore"
	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
	"github.com/sweetspot-ml/sweetspot/pipeline/runner"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/pipeline/temporal"
)

// temporalFlags are the flags that say which Temporal service to use.
type temporalFlags struct {
	address   string
	namespace string
	queues    []string
	storage   string
}

func (t *temporalFlags) register(cmd *cobra.Command, queueHelp string) {
	addr := os.Getenv("TEMPORAL_ADDRESS")
	if addr == "" {
		addr = "localhost:7233"
	}
	ns := os.Getenv("TEMPORAL_NAMESPACE")
	if ns == "" {
		ns = "default"
	}
	f := cmd.Flags()
	f.StringVar(&t.address, "temporal", addr, "Temporal frontend HOST:PORT (default $TEMPORAL_ADDRESS, else localhost:7233)")
	f.StringVar(&t.namespace, "namespace", ns, "Temporal namespace")
	f.StringSliceVar(&t.queues, "task-queue", []string{temporal.DefaultTaskQueue}, queueHelp)
	f.StringVar(&t.storage, "storage", "", "object storage the client and workers exchange Arrow files through (file:///dir or s3://bucket?region=R); --out is then each machine's own cache (default: --out, a directory they all share)")
}

// openStorage opens --storage, or returns nil without it.
func (t *temporalFlags) openStorage(ctx context.Context) (*blobstore.Store, error) {
	if t.storage == "" {
		return nil, nil
	}
	s, err := blobstore.Open(ctx, t.storage)
	if err != nil {
		return nil, fmt.Errorf("--storage: %w", err)
	}
	return s, nil
}

type workerOptions struct {
	tf         temporalFlags
	out        string
	identity   string
	activities int
	otlp       string
	traceFile  string
	logLevel   string
}

func newWorkerCmd() *cobra.Command {
	var o workerOptions
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run stages and trials of distributed runs (Temporal)",
		Long: `Worker polls Temporal task queues for the workflows and activities of runs
started with 'sweetspot run --engine temporal': each stage execution, and
each trial of an evaluation stage, is an activity; the worker runs it by
starting the stage's plugin here, exactly as a local run does.

Arrow data travel only through the run store (--out), which every worker
and the client must share (the same directory, e.g. a shared file system
mounted at the same path), or, with --storage, through a bucket: outputs
are uploaded once written and downloaded by the worker that reads them
into its own --out. Temporal carries small descriptors whose sha256 the
reader checks.

A stage with task_queue = "gpu" runs only on workers started with
--task-queue gpu. Stop a worker with Ctrl-C; a worker killed mid-activity
costs only that activity, which another worker retries once the heartbeat
timeout passes.`,
		Example: `  sweetspot worker --temporal 127.0.0.1:7233 --out /shared/runs
  sweetspot worker --temporal temporal.lan:7233 --task-queue gpu --activities 1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorker(cmd.Context(), &o, cmd.ErrOrStderr())
		},
	}
	o.tf.register(cmd, "task queues to poll, comma-separated or repeated (\"cpu\", \"gpu\", ...)")
	f := cmd.Flags()
	f.StringVar(&o.out, "out", runstore.DefaultRoot, "run store shared with the client and the other workers")
	f.StringVar(&o.identity, "identity", "", "name of this worker in manifests and spans (default PID@HOSTNAME)")
	f.IntVar(&o.activities, "activities", 0, "activities (stages, trials) run at once per task queue (default: Temporal's)")
	f.StringVar(&o.otlp, "otlp", "", "export spans over OTLP to this endpoint (host:port or URL)")
	f.StringVar(&o.traceFile, "trace-file", "", "also record every span of this worker in this JSON-lines file")
	f.StringVar(&o.logLevel, "log-level", "", "log level: trace, debug, info, warn, error (default warn, or $SWEETSPOT_LOG)")
	return cmd
}

func defaultIdentity() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%d@%s", os.Getpid(), host)
}

func runWorker(parent context.Context, o *workerOptions, stderr io.Writer) error {
	if parent == nil {
		parent = context.Background()
	}
	if o.identity == "" {
		o.identity = defaultIdentity()
	}
	if o.otlp != "" {
		if err := telemetry.CheckEndpoint(o.otlp); err != nil {
			return &exitError{code: exitInvalid, err: fmt.Errorf("--otlp: %w", err)}
		}
	}
	root, err := filepath.Abs(o.out)
	if err != nil {
		return &exitError{code: exitInvalid, err: fmt.Errorf("--out: %w", err)}
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("--out: %w", err)}
	}
	storage, err := o.tf.openStorage(parent)
	if err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	if storage != nil {
		defer storage.Close()
	}
	logger := newLogger(o.logLevel)
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()

	tcfg := telemetry.Config{
		Service:      "sweetspot",
		TraceFile:    o.traceFile,
		OTLPEndpoint: o.otlp,
		Attributes:   []attribute.KeyValue{attribute.String("sweetspot.worker", o.identity)},
		IDGenerator:  temporal.SpanIDGenerator(),
	}
	tp, err := telemetry.Setup(ctx, tcfg)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	spans := temporal.NewRunSpanFiles(root, o.identity)
	tp.RegisterSpanProcessor(spans)
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			fmt.Fprintln(stderr, "warning: flushing spans:", err)
		}
	}()

	c, err := temporal.Dial(ctx, temporal.ClientOptions{HostPort: o.tf.address, Namespace: o.tf.namespace, Identity: o.identity, Logger: logger.Named("temporal")})
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	defer c.Close()

	acts := &temporal.Activities{
		Root:     root,
		Storage:  storage,
		Identity: o.identity,
		Logger:   logger,
		Spans:    spans,
		NewLauncher: func(traceDir string) (temporal.Launcher, error) {
			return newHost(logger, pluginhost.WithTraceDir(traceDir), pluginhost.WithEnv(tcfg.PluginEnv("")...))
		},
	}
	defer acts.Close()
	workers := temporal.NewWorkers(c, acts, temporal.WorkerOptions{TaskQueues: o.tf.queues, Identity: o.identity, Activities: o.activities})
	for i, w := range workers {
		if err := w.Start(); err != nil {
			for _, started := range workers[:i] {
				started.Stop()
			}
			return &exitError{code: exitFailed, err: fmt.Errorf("start worker on task queue %s: %w", o.tf.queues[i], err)}
		}
	}
	fmt.Fprintf(stderr, "worker %s polling task queue(s) %s of %s (namespace %s); run store %s\n",
		o.identity, strings.Join(o.tf.queues, ", "), o.tf.address, o.tf.namespace, root)
	<-ctx.Done()
	fmt.Fprintf(stderr, "worker %s stopping\n", o.identity)
	for _, w := range workers {
		w.Stop()
	}
	return nil
}

// temporalEngine returns the engine of `run --engine temporal`.
func temporalEngine(ctx context.Context, o *runOptions, launcher runner.Launcher, events func(runner.Event)) (runner.Engine, func(), error) {
	logger := newLogger(o.logLevel)
	c, err := temporal.Dial(ctx, temporal.ClientOptions{HostPort: o.temporal.address, Namespace: o.temporal.namespace, Identity: defaultIdentity() + " (client)", Logger: logger.Named("temporal")})
	if err != nil {
		return nil, nil, err
	}
	storage, err := o.temporal.openStorage(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	queue := temporal.DefaultTaskQueue
	if len(o.temporal.queues) > 0 {
		queue = o.temporal.queues[0]
	}
	r := &temporal.Runner{
		Storage:  storage,
		Client:   c,
		Launcher: launcher,
		Logger:   logger,
		Events:   events,
		NoCache:  o.noCache,
		Resume:   o.resume != "",
		Plan: temporal.PlanOptions{
			TaskQueue:        queue,
			Parallel:         o.parallel,
			HeartbeatTimeout: o.heartbeat,
			MaxPendingTrials: o.maxPendingTrials,
		},
	}
	// Workers check each plugin against the lock file this client checks
	// its own against.
	if h, ok := launcher.(*pluginhost.Host); ok {
		r.Plan.LockPath, r.Plan.Lock = h.Lock()
	}
	closeAll := func() {
		c.Close()
		if storage != nil {
			storage.Close()
		}
	}
	return r, closeAll, nil
}

// checkEngine rejects engine flags that cannot work together.
func (o *runOptions) checkEngine() error {
	switch o.engine {
	case "local":
		for _, f := range []struct {
			flag string
			set  bool
		}{{"--storage", o.temporal.storage != ""}, {"--heartbeat-timeout", o.heartbeat != 0}, {"--max-pending-trials", o.maxPendingTrials != 0}} {
			if f.set {
				return fmt.Errorf("%s applies to --engine temporal only; this run's engine is local", f.flag)
			}
		}
	case "temporal":
		if len(o.temporal.queues) > 1 {
			return errors.New("--task-queue takes one queue for a run: the default queue of its stages (a stage picks another with task_queue)")
		}
		if o.temporal.storage != "" {
			if err := blobstore.CheckURL(o.temporal.storage); err != nil {
				return fmt.Errorf("--storage: %w", err)
			}
		}
	default:
		return fmt.Errorf("--engine %q: use local or temporal", o.engine)
	}
	return nil
}

// printPlacement shows where each stage of a Temporal run ran, and how its
// trials spread over the workers.
func printPlacement(w io.Writer, m *runstore.Manifest) {
	if m.Engine == "" {
		return
	}
	fmt.Fprintf(w, "\nengine: %s (workflow %s)\n", m.Engine, m.RunID)
	for _, s := range m.Stages {
		for _, e := range s.Executions {
			if len(e.Trials) == 0 {
				fmt.Fprintf(w, "  %-28s round %-3d worker %s (attempt %d)\n", s.Addr, e.Round, e.Worker, e.Attempt)
				continue
			}
			count := map[string]int{}
			retried := 0
			for _, t := range e.Trials {
				count[t.Worker]++
				if t.Attempt > 1 {
					retried++
				}
			}
			var parts []string
			for wk, n := range count {
				parts = append(parts, fmt.Sprintf("%s: %d", wk, n))
			}
			sort.Strings(parts)
			fmt.Fprintf(w, "  %-28s round %-3d %d trial activities (%s), %d retried\n", s.Addr, e.Round, len(e.Trials), strings.Join(parts, ", "), retried)
		}
	}
}
