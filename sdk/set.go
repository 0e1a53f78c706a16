package sdk

import (
	"context"
	"fmt"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hashicorp/go-hclog"
)

// Set is the collection of stage kinds one plugin binary serves.
type Set struct {
	name    string
	version string
	kinds   []string
	entries map[string]*entry
}

// entry is one registered stage kind, with its config type erased.
type entry struct {
	kind       string
	info       StageInfo
	configType reflect.Type
	// newStage decodes nothing: it receives a pointer to a decoded config
	// value of configType and builds the stage.
	newStage func(config any) (Stage, error)
}

// SetOption configures a Set.
type SetOption func(*Set)

// WithName sets the plugin's name (default: the executable's name without
// the "sweetspot-plugin-" prefix).
func WithName(name string) SetOption { return func(s *Set) { s.name = name } }

// WithVersion sets the plugin's version, reported by describe.
func WithVersion(version string) SetOption { return func(s *Set) { s.version = version } }

// NewSet returns an empty set of stage kinds.
func NewSet(opts ...SetOption) *Set {
	s := &Set{version: "0.0.0", entries: map[string]*entry{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Register adds a stage kind to the set. C is the config struct: its `hcl`
// tags define the HCL schema of the stage block (`hcl:"name"` required
// attribute, `hcl:"name,optional"`, `hcl:"name,block"` nested block; a
// `doc:"..."` tag documents the field). newStage receives the decoded config
// and returns a config problem as an error built with AttrError.
//
// Register panics on a duplicate kind or an unusable config type: both are
// programmer errors, caught the first time the plugin starts.
func Register[C any](s *Set, kind string, info StageInfo, newStage func(C) (Stage, error)) {
	if _, dup := s.entries[kind]; dup {
		panic(fmt.Sprintf("sdk: stage kind %q registered twice", kind))
	}
	ct := reflect.TypeFor[C]()
	if _, err := configSchemaOf(ct); err != nil {
		panic(fmt.Sprintf("sdk: stage kind %q: config type %s: %v", kind, ct, err))
	}
	s.entries[kind] = &entry{
		kind:       kind,
		info:       info,
		configType: ct,
		newStage:   func(c any) (Stage, error) { return newStage(*c.(*C)) },
	}
	s.kinds = append(s.kinds, kind)
}

// Run-time facilities a stage reaches through its context.

type runInfoKey struct{}

// RunInfo identifies the running stage.
type RunInfo struct {
	RunID   string
	Stage   string // e.g. "evaluation.train"
	Round   int
	WorkDir string
}

// Info returns the identity of the stage running under ctx.
func Info(ctx context.Context) RunInfo {
	ri, _ := ctx.Value(runInfoKey{}).(RunInfo)
	return ri
}

// Progress is a stage's report of how far it has come.
type Progress struct {
	Done, Total int64
	Message     string
	Metrics     map[string]float64
}

type progressKey struct{}

// ReportProgress sends a progress event to the host. It never blocks on the
// host for long and is safe to call from several goroutines.
func ReportProgress(ctx context.Context, p Progress) {
	if f, ok := ctx.Value(progressKey{}).(func(Progress)); ok {
		f(p)
	}
}

type loggerKey struct{}

// Logger returns the stage's logger. Its lines go to stderr as JSON and the
// host re-logs them under the plugin's name.
func Logger(ctx context.Context) hclog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(hclog.Logger); ok {
		return l
	}
	return hclog.NewNullLogger()
}

type allocatorKey struct{}

// Allocator returns the allocator a stage should build its batches with. Tests
// put a checked allocator here to prove every batch is released.
func Allocator(ctx context.Context) memory.Allocator {
	if a, ok := ctx.Value(allocatorKey{}).(memory.Allocator); ok {
		return a
	}
	return memory.DefaultAllocator
}
