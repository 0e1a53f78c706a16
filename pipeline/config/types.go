// Package config loads sweetspot pipeline files: it parses HCL, evaluates
// variables and locals, resolves each stage's plugin through a Catalog,
// decodes stage bodies against the plugin's declared schema and reports every
// problem as an hcl.Diagnostic with a source range.
package config

import (
	"errors"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// Catalog finds the plugin that provides a stage kind. pluginhost implements
// it; tests use an in-process one.
type Catalog interface {
	// Resolve returns the plugin providing kind. plugin is the block's
	// `plugin` attribute, or "" for the default: the built-in plugin when it
	// has the kind, else the external plugin named like the kind.
	Resolve(kind, plugin string) (*describe.PluginDescription, error)
	// Kinds lists every known stage kind, for "did you mean" hints.
	Kinds() []string
}

// ErrPluginRefused is matched (errors.Is) by a Catalog.Resolve error about
// a plugin that exists but must not be used: an executable that does not
// match the lock file, a plugin speaking another protocol version. The
// loader reports such an error as it is, not as an unknown stage kind.
var ErrPluginRefused = errors.New("plugin refused")

// Pipeline is a loaded, fully validated pipeline: every expression evaluated
// to a constant, every reference resolved.
//
// Load returns a Pipeline even when its diagnostics hold errors, so that
// Files can render them; the other fields are then incomplete.
type Pipeline struct {
	// Files holds the parsed sources, for rendering diagnostics. It includes
	// the -var-file files and, for each -var value that was parsed as an
	// expression, a pseudo-file named "<value for var.NAME>".
	Files map[string]*hcl.File
	// Paths are the files the pipeline was loaded from, sorted.
	Paths []string
	// Hash is the sha256 of the sources and variable values, hex.
	Hash string
	// Vars are the final variable values.
	Vars map[string]cty.Value
	// Variables are the declarations behind Vars, with their types and
	// whether they are sensitive (a run manifest must not print those).
	Variables map[string]*Variable
	// Stages in a deterministic (topological, then by address) order.
	// Datasets are stages of kind "dataset".
	Stages []*Stage
	// Telemetry is the optional `telemetry {}` block of the sweetspot block.
	Telemetry Telemetry
	// Required holds the sweetspot block's required_version and
	// required_plugins, not yet interpreted.
	Required Requirements
	// ProjectDir is the directory the pipeline's paths must stay in (the
	// directory of the pipeline, absolute); AllowOutsidePaths is the
	// sweetspot block's allow_outside_paths, which lifts that rule.
	ProjectDir        string
	AllowOutsidePaths bool
	// Graph is the stage DAG built from the input port references, with
	// the declared loops.
	Graph *graph.Graph
}

// Stage returns the stage with the given address, or nil.
func (p *Pipeline) Stage(addr string) *Stage {
	for _, s := range p.Stages {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// Variable is one `variable "NAME"` block and the value it ended up with.
type Variable struct {
	Name        string
	Type        cty.Type // cty.DynamicPseudoType when the block has no type
	Default     cty.Value
	Value       cty.Value
	Description string
	Sensitive   bool
	DeclRange   hcl.Range
}

// Requirements is the sweetspot block's declaration of what the pipeline
// needs, checked for form; pipeline/install acts on the plugins.
type Requirements struct {
	// Version is required_version, a constraint on the sweetspot version.
	Version      string
	VersionRange hcl.Range
	// Plugins maps each required_plugins attribute to its constant value
	// (e.g. { source = "...", version = ">= 1.0" }).
	Plugins map[string]RequiredPlugin
}

// RequiredPlugin is one entry of required_plugins:
//
//	NAME = { source = "example.com/acme/sweetspot-plugin-NAME", version = ">= 1.2, < 2" }
type RequiredPlugin struct {
	Name  string
	Value cty.Value // the entry as written, evaluated
	Range hcl.Range
	// Source is where `sweetspot init` installs the plugin from: a Go
	// module or package path (built with the local Go toolchain), or a
	// local directory, written as a path starting with ./, ../ or / and
	// relative to the pipeline's directory, that holds either a Go main
	// package to build or a mirror of prebuilt executables
	// (sweetspot-plugin-NAME_VERSION_OS_ARCH) with a SHA256SUMS file.
	Source      string
	SourceRange hcl.Range
	// Version is a version constraint in hashicorp/go-version syntax
	// (">= 1.2, < 2", "~> 1.4"), checked when loading; "" allows any.
	Version      string
	VersionRange hcl.Range
}

// Stage is one `stage "KIND" "NAME"` (or `dataset "NAME"`) block.
type Stage struct {
	Kind string
	Name string
	// Addr is "KIND.NAME" ("dataset.NAME" for datasets).
	Addr string
	// Doc is the block's own `description` attribute (Description is the
	// plugin's).
	Doc string
	// Plugin is the resolved plugin's name and its description.
	Plugin      string
	Description *describe.PluginDescription
	Spec        *describe.StageDescription
	// Config is the constant config value sent to the plugin: an object
	// holding every attribute and block of the plugin's schema (host-reserved
	// attributes and port attributes removed).
	Config cty.Value
	// Inputs maps each connected input port to its source.
	Inputs map[string]PortRef
	// Timeout bounds one run of the stage; 0 means none.
	Timeout time.Duration
	// TaskQueue is the Temporal task queue the stage's activities go to
	// (`task_queue`); "" means the run's default queue.
	TaskQueue string
	// PassEnv names the host environment variables passed to the stage's
	// plugin process (`pass_env`), beyond the base set every plugin gets.
	PassEnv []string
	// MemoryLimit bounds the resident memory, in bytes, of the stage's
	// plugin process and its children (`memory_limit`); 0 means none.
	MemoryLimit int64
	// LoopTo is the address of the first stage of the loop this stage
	// decides, or "". MaxRounds bounds the rounds (>= 1 when LoopTo is set).
	LoopTo    string
	MaxRounds int
	// DeclRange is the block header's range; AttrRanges maps attribute
	// paths ("budget.max_wall") to value ranges, for plugin diagnostics.
	DeclRange  hcl.Range
	AttrRanges map[string]hcl.Range
}

// PortRef is an edge: the output port of another stage.
type PortRef struct {
	Stage string // address of the producing stage
	Port  string // its output port
	Range hcl.Range
}

// Telemetry is the `telemetry { otlp_endpoint = "..." }` override.
type Telemetry struct {
	OTLPEndpoint string
	Protocol     string // "grpc" or "http/protobuf"
}
