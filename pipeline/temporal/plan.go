// Package temporal runs sweetspot pipelines on Temporal: one run is one
// workflow (workflow id = run id), each stage execution is an activity,
// and a stage whose kind declares sdk.Resume (a list of independent trials,
// like evaluation) fans out into one activity per trial. Workers start the
// stage plugins locally, exactly as the local runner does
// (runner.HostExecutor), and exchange Arrow data only through shared
// storage: activities read their inputs from the run directory and write
// their outputs there (with a bucket, Activities.Storage, the run
// directory is the worker's cache, filled from and uploaded to the
// bucket), and Temporal carries small descriptors (path, rows, bytes,
// sha256, uri) that the consumer verifies.
//
// The workflow is deterministic: the pipeline is turned into a Plan (pure
// data) before it starts; what runs when, with which inputs, until when a
// loop goes on and where an execution's outputs come from are decided by
// pipeline/engine, as in the local runner; the loop's decision is read
// from its file, and the cache looked up and filled, by activities.
package temporal

import (
	"fmt"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/engine"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
	"github.com/sweetspot-ml/sweetspot/sdk/stagerpc"
)

// Names under which the workflow, its query and activities are registered.
const (
	WorkflowName = "sweetspot.Run"
	QueryState   = "state"

	activityRunStage     = "sweetspot.RunStage"
	activitySplitTrials  = "sweetspot.SplitTrials"
	activityRunTrial     = "sweetspot.RunTrial"
	activityGatherTrials = "sweetspot.GatherTrials"
	activityReadDecision = "sweetspot.ReadDecision"
	activityRecordSpan   = "sweetspot.RecordSpan"
	activityReuse        = "sweetspot.Reuse"
	activityRemember     = "sweetspot.Remember"
)

// DefaultTaskQueue is where the workflow and every stage without a
// task_queue go.
const DefaultTaskQueue = "cpu"

// Defaults of a Plan's limits.
const (
	DefaultHeartbeatTimeout = 30 * time.Second
	// DefaultMaxPendingTrials bounds a stage's trial activities in flight,
	// far below Temporal's limit on a workflow's pending activities (2000).
	DefaultMaxPendingTrials = 200
	// DefaultMaxTrialActivities bounds the trial activities of one stage
	// execution; a larger sweep puts several trials in each, so the
	// workflow's history stays far below Temporal's limits (50,000 events,
	// 50 MB).
	DefaultMaxTrialActivities = 1000
	// A loop continues as new between two rounds once its run's history
	// holds DefaultContinueAfterEvents events (Temporal warns at 10,240
	// and stops a workflow at 51,200) or it has scheduled
	// DefaultContinueAfterActivities activities (a few events each).
	DefaultContinueAfterEvents     = 10000
	DefaultContinueAfterActivities = 2500
)

// Plan is a run as the workflow sees it: the pipeline reduced to data,
// with every choice that needs the file system or the plugins made.
type Plan struct {
	RunID    string `json:"run_id"`
	Pipeline string `json:"pipeline"`
	// Run is the client's run span, the parent of everything the workflow
	// records.
	Run       SpanRef `json:"run_span"`
	TaskQueue string  `json:"task_queue"`
	// Parallel bounds the stages running at once.
	Parallel int `json:"parallel"`
	// MaxPendingTrials bounds a stage's trial activities in flight;
	// MaxTrialActivities bounds how many a stage execution is split into.
	MaxPendingTrials   int           `json:"max_pending_trials"`
	MaxTrialActivities int           `json:"max_trial_activities"`
	HeartbeatTimeout   time.Duration `json:"heartbeat_timeout"`
	// RetryInterval is the first wait before an activity is tried again;
	// MaxAttempts bounds the tries of one activity.
	RetryInterval time.Duration `json:"retry_interval"`
	MaxAttempts   int32         `json:"max_attempts"`
	// ContinueAfterEvents and ContinueAfterActivities bound one run's
	// history: past either, a loop continues as new between two rounds.
	ContinueAfterEvents     int `json:"continue_after_events"`
	ContinueAfterActivities int `json:"continue_after_activities"`
	// Carry is the state handed over by the run that continued as new
	// into this one; nil in the first run.
	Carry  *Carry        `json:"carry,omitempty"`
	Stages []StagePlan   `json:"stages"`
	Units  []engine.Unit `json:"units"`
	// UseCache serves executions from earlier runs' outputs with the same
	// content address (the run store's cache), and remembers this run's.
	UseCache bool `json:"use_cache,omitempty"`
	// Previous are the executions that finished in the run this one
	// resumes: one with the same content address is kept, not run again.
	Previous engine.Finished `json:"previous,omitempty"`
	// PreviousTrials are the trials the run this one resumes finished of
	// executions it did not finish, by "stage#round".
	PreviousTrials map[string]*PartialTrials `json:"previous_trials,omitempty"`
}

// StagePlan is one stage block: what the engine core schedules it by,
// and what a worker runs it with.
type StagePlan struct {
	engine.Stage
	Kind          string `json:"kind"`
	Plugin        string `json:"plugin"`
	PluginVersion string `json:"plugin_version"`
	// Config is the constant config value as the wire carries it
	// (stagerpc.EncodeConfig), with its type.
	Config     []byte                     `json:"config"`
	ConfigType []byte                     `json:"config_type"`
	Outputs    []describe.PortDescription `json:"outputs"`
	Resume     *sdk.Resume                `json:"resume,omitempty"`
	Timeout    time.Duration              `json:"timeout,omitempty"`
	TaskQueue  string                     `json:"task_queue,omitempty"`
	// Cache is what the stage's content address holds besides round and
	// inputs, gathered by the client (plugin hash, files the config
	// names); the workflow computes each execution's address from it.
	Cache engine.CacheBase `json:"cache"`
	// PassEnv names the variables of the worker's environment the stage's
	// plugin gets (pass_env): names only, never values.
	PassEnv []string `json:"pass_env,omitempty"`
	// MemoryLimit bounds the plugin process's resident memory, in bytes
	// (memory_limit); 0 means none.
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// PluginHashes is the plugin's entry in the client's lock file
	// (LockFile), platform to "sha256:HEX": workers check the executable
	// they start against it. Empty for a plugin the client does not lock.
	PluginHashes map[string]string `json:"plugin_hashes,omitempty"`
	LockFile     string            `json:"lock_file,omitempty"`
	// FanOut runs the stage as one activity per trial: one per row of its
	// primary input.
	FanOut bool `json:"fan_out,omitempty"`
}

// PlanOptions are the run-wide settings of a plan.
type PlanOptions struct {
	RunID              string
	Run                SpanRef
	TaskQueue          string
	Parallel           int
	MaxPendingTrials   int
	MaxTrialActivities int
	HeartbeatTimeout   time.Duration
	RetryInterval      time.Duration
	MaxAttempts        int32
	// Lock is the client's lock file (at LockPath), whose entries the
	// workers check the plugins against; nil locks nothing.
	Lock     *lockfile.File
	LockPath string
	// UseCache and Previous: see Plan.
	UseCache       bool
	Previous       engine.Finished
	PreviousTrials map[string]*PartialTrials
	// CacheBase gathers a stage's cache base (it reads files); nil
	// leaves every base empty.
	CacheBase func(st *config.Stage) (engine.CacheBase, error)
}

// BuildPlan turns a loaded pipeline into a plan.
func BuildPlan(p *config.Pipeline, g *graph.Graph, o PlanOptions) (*Plan, error) {
	core, err := engine.NewPlan(p, g)
	if err != nil {
		return nil, err
	}
	plan := &Plan{
		RunID:              o.RunID,
		Pipeline:           "pipeline",
		Run:                o.Run,
		TaskQueue:          o.TaskQueue,
		Parallel:           o.Parallel,
		MaxPendingTrials:   o.MaxPendingTrials,
		MaxTrialActivities: o.MaxTrialActivities,
		HeartbeatTimeout:   o.HeartbeatTimeout,
		RetryInterval:      o.RetryInterval,
		MaxAttempts:        o.MaxAttempts,
		Units:              core.Units,
		UseCache:           o.UseCache,
		Previous:           o.Previous,
		PreviousTrials:     o.PreviousTrials,
	}
	if len(p.Paths) > 0 {
		plan.Pipeline = p.Paths[0]
	}
	plan.defaults()
	for i, st := range p.Stages {
		if st.Spec == nil {
			return nil, fmt.Errorf("stage %s has no resolved stage kind", st.Addr)
		}
		cfg, ty, err := stagerpc.EncodeConfig(st.Config)
		if err != nil {
			return nil, fmt.Errorf("stage %s: %w", st.Addr, err)
		}
		sp := StagePlan{
			Stage: core.Stages[i],
			Kind:  st.Kind, Plugin: st.Plugin,
			Config: cfg, ConfigType: ty,
			Outputs:   st.Spec.Outputs,
			Resume:    st.Spec.Resume,
			Timeout:   st.Timeout,
			TaskQueue: st.TaskQueue,
			PassEnv:   st.PassEnv,

			MemoryLimit: st.MemoryLimit,
		}
		if o.Lock != nil {
			if lp, ok := o.Lock.Plugins[st.Plugin]; ok && lp != nil {
				sp.PluginHashes, sp.LockFile = lp.Hashes, o.LockPath
			}
		}
		if st.Description != nil {
			sp.PluginVersion = st.Description.Version
		}
		if o.CacheBase != nil {
			if sp.Cache, err = o.CacheBase(st); err != nil {
				return nil, &sdk.StageError{Stage: st.Addr, Op: "fingerprint", Err: err}
			}
		}
		primary := false
		for _, in := range sp.Inputs {
			primary = primary || in.Port == sdk.PrimaryInput
		}
		// A stage that journals its output per trial declares that its
		// rows are independent trials of its primary input's rows.
		sp.FanOut = st.Spec.Resume != nil && primary
		plan.Stages = append(plan.Stages, sp)
	}
	return plan, nil
}

func (p *Plan) defaults() {
	if p.TaskQueue == "" {
		p.TaskQueue = DefaultTaskQueue
	}
	if p.Parallel <= 0 {
		p.Parallel = 4
	}
	if p.MaxPendingTrials <= 0 {
		p.MaxPendingTrials = DefaultMaxPendingTrials
	}
	if p.MaxTrialActivities <= 0 {
		p.MaxTrialActivities = DefaultMaxTrialActivities
	}
	if p.HeartbeatTimeout <= 0 {
		p.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if p.RetryInterval <= 0 {
		p.RetryInterval = time.Second
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.ContinueAfterEvents <= 0 {
		p.ContinueAfterEvents = DefaultContinueAfterEvents
	}
	if p.ContinueAfterActivities <= 0 {
		p.ContinueAfterActivities = DefaultContinueAfterActivities
	}
}

// stage returns the plan of the stage at addr.
func (p *Plan) stage(addr string) *StagePlan {
	for i := range p.Stages {
		if p.Stages[i].Addr == addr {
			return &p.Stages[i]
		}
	}
	return nil
}

// core is the plan as the engine core sees it.
func (p *Plan) core() *engine.Plan {
	c := &engine.Plan{Units: p.Units}
	for _, st := range p.Stages {
		c.Stages = append(c.Stages, st.Stage)
	}
	return c
}
