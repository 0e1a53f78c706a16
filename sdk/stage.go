// Package sdk is the public API for writing sweetspot stage plugins.
//
// A plugin is a Go program that registers one or more stage kinds in a Set and
// hands control to Set.Run. Each stage kind has a typed config struct whose
// HCL schema is derived from its `hcl` struct tags, named input and output
// ports carrying Arrow record batches, and a constructor returning a Stage.
//
// The RPC layer (go-plugin, gRPC, Arrow Flight framing) stays behind this
// package: authors see only the interfaces here.
package sdk

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// Stage is one configured unit of work. Run reads its input ports and writes
// its output ports; it returns nil when its work is done. Returning before
// an input port is drained is allowed: the SDK discards the rest.
type Stage interface {
	Run(ctx context.Context, in Inputs, out Outputs) error
}

// Inputs gives access to a stage's input ports by name.
type Inputs interface {
	// Reader returns the batches arriving on the named input port. The SDK owns
	// the reader: do not Release it. A batch returned by RecordBatch is valid
	// until the next call to Next; Retain it to keep it longer (and Release it
	// when done), but never past the return of the stage's Run: a batch may
	// point into an input file the SDK mapped, and unmaps then.
	Reader(port string) (array.RecordReader, error)
}

// Outputs gives access to a stage's output ports by name.
type Outputs interface {
	Writer(port string) (BatchWriter, error)
}

// BatchWriter sends batches downstream. Write does not take ownership: the
// caller still releases the batch it wrote. The first batch fixes the port's
// schema; it must meet the port's declared schema (CheckSchema). Write blocks while the receiver is
// behind, so a fast producer cannot fill memory.
type BatchWriter interface {
	Write(batch arrow.RecordBatch) error
}

// Closer is implemented by stages holding resources beyond Run. Close may be
// called more than once and must be safe to do so.
type Closer interface {
	Close(ctx context.Context) error
}

// StageInfo describes a stage kind to the host: what it does and its ports.
type StageInfo struct {
	Description string
	Inputs      []Port
	Outputs     []Port
	// Loop is set on stages that decide a loop (the resize stage): the host may
	// run the stages from the block's loop_to target up to this one again.
	Loop *Loop
	// Resume is set on stages whose work is a list of independent units
	// (trials) that each write their rows as they finish: the host journals
	// those rows, and a resumed run hands them back.
	Resume *Resume
	// InputFiles names the config attributes (strings, or lists of
	// strings) that name files the stage reads, such as a dataset path or
	// a training script. The host hashes those files' contents into the
	// stage's cache key, so an edited file is never served from a stale
	// cache. Relative names are taken against a `base_dir` attribute when
	// the config has one. The host also refuses a path that leaves the
	// pipeline's project directory (unless the pipeline allows it): in a
	// list, which is taken as a command line, only relative elements that
	// have a slash or name an existing file are paths.
	InputFiles []string
}

// Resume names the ports through which a stage picks up interrupted work.
type Resume = describe.Resume

// ResumePort is one journalled output port and the input port its rows
// come back on.
type ResumePort = describe.ResumePort

// Port is a named stream of record batches.
//
// In a pipeline file an input port is an attribute of the stage block with
// the port's name whose value is a reference (stage.KIND.NAME[.PORT] or
// dataset.NAME). The first output port is the one a bare stage reference means.
type Port struct {
	Name        string
	Description string
	// Schema lists the columns the port requires (inputs) or guarantees
	// (outputs). Nil means any schema.
	Schema *arrow.Schema
	// Optional input ports may be left unconnected.
	Optional bool
}

// Loop names the ports through which a deciding stage steers its loop.
type Loop = describe.Loop

// PrimaryInput is the name of the input port that a loop feeds.
const PrimaryInput = "input"

// HostAttributes are the attributes of a stage block the host reads itself
// and never passes on to the plugin, so a stage's config cannot declare
// them (nor the names of the stage's own input ports, which connect them).
var HostAttributes = []string{
	"plugin", "timeout", "loop_to", "max_rounds", "description", "task_queue", "pass_env", "memory_limit",
}
