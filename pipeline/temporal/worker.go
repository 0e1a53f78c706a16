package temporal

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// ClientOptions say which Temporal service to use.
type ClientOptions struct {
	HostPort  string
	Namespace string
	Identity  string
	Logger    hclog.Logger
}

// Dial connects to Temporal with the OpenTelemetry interceptor, so a run's
// trace continues from the client into the workflow and every activity on
// every worker. Call it after the tracer provider is installed: the
// interceptor takes the global one.
func Dial(ctx context.Context, o ClientOptions) (client.Client, error) {
	// Queries are how the client follows a run, several times a second:
	// as spans they would bury the run's own.
	tracing, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{DisableQueryTracing: true})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing: %w", err)
	}
	logger := o.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	c, err := client.DialContext(ctx, client.Options{
		HostPort:     o.HostPort,
		Namespace:    o.Namespace,
		Identity:     o.Identity,
		Logger:       logAdapter{logger},
		Interceptors: []interceptor.ClientInterceptor{tracing},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s: %w", o.HostPort, err)
	}
	return c, nil
}

// logAdapter logs the SDK's messages through hclog.
type logAdapter struct{ l hclog.Logger }

func (a logAdapter) Debug(msg string, kv ...any) { a.l.Debug(msg, kv...) }
func (a logAdapter) Info(msg string, kv ...any)  { a.l.Info(msg, kv...) }
func (a logAdapter) Warn(msg string, kv ...any)  { a.l.Warn(msg, kv...) }
func (a logAdapter) Error(msg string, kv ...any) { a.l.Error(msg, kv...) }

// Register registers the run workflow and a's activities under their
// names.
func Register(r worker.Registry, a *Activities) {
	r.RegisterWorkflowWithOptions(RunWorkflow, workflowRegisterOptions())
	r.RegisterActivityWithOptions(a.RunStage, activity.RegisterOptions{Name: activityRunStage})
	r.RegisterActivityWithOptions(a.SplitTrials, activity.RegisterOptions{Name: activitySplitTrials})
	r.RegisterActivityWithOptions(a.RunTrial, activity.RegisterOptions{Name: activityRunTrial})
	r.RegisterActivityWithOptions(a.GatherTrials, activity.RegisterOptions{Name: activityGatherTrials})
	r.RegisterActivityWithOptions(a.ReadDecision, activity.RegisterOptions{Name: activityReadDecision})
	r.RegisterActivityWithOptions(a.RecordSpan, activity.RegisterOptions{Name: activityRecordSpan})
	r.RegisterActivityWithOptions(a.Reuse, activity.RegisterOptions{Name: activityReuse})
	r.RegisterActivityWithOptions(a.Remember, activity.RegisterOptions{Name: activityRemember})
}

func workflowRegisterOptions() workflow.RegisterOptions {
	return workflow.RegisterOptions{Name: WorkflowName}
}

// WorkerOptions configure a worker process's pollers.
type WorkerOptions struct {
	// TaskQueues are polled, one Temporal worker each (default "cpu").
	TaskQueues []string
	Identity   string
	// Activities bounds the activities (stages, trials) running at once
	// on each queue; 0 is the SDK's default.
	Activities int
}

// NewWorkers returns one Temporal worker per task queue, each with the
// workflow and the activities registered. Start them with worker.Run or
// Start; they share a's plugin processes.
func NewWorkers(c client.Client, a *Activities, o WorkerOptions) []worker.Worker {
	queues := o.TaskQueues
	if len(queues) == 0 {
		queues = []string{DefaultTaskQueue}
	}
	var out []worker.Worker
	for _, q := range queues {
		w := worker.New(c, q, worker.Options{
			Identity:                           o.Identity,
			MaxConcurrentActivityExecutionSize: o.Activities,
		})
		Register(w, a)
		out = append(out, w)
	}
	return out
}
