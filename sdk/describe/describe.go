// Package describe holds what a plugin says about itself: the JSON that
// `PLUGIN describe` prints and the Describe call returns, with each stage
// kind's config schema and port schemas. The SDK writes it from what
// Register was given; the host reads it to check a pipeline before any
// stage runs. It also holds the host's half of the config contract, so
// that every host (sweetspot's, sdktest's) decodes a stage block alike:
// the hcldec spec of a config schema, the body wrapper that sends deferred
// expressions as text, and the limits HCL text is checked against before
// it is parsed (which the SDK applies to a deferred expression too).
// Plugin authors never need it.
package describe

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/sweetspot-ml/sweetspot/internal/ipcverify"
)

// PluginDescription is what `PLUGIN describe` prints and the Describe RPC
// returns: enough for the host to validate a pipeline without running a stage.
type PluginDescription struct {
	Name            string             `json:"name"`
	Version         string             `json:"version"`
	SDKVersion      string             `json:"sdk_version"`
	ProtocolVersion int                `json:"protocol_version"`
	Stages          []StageDescription `json:"stages"`
}

// Stage returns the description of a stage kind, or nil.
func (d *PluginDescription) Stage(kind string) *StageDescription {
	for i := range d.Stages {
		if d.Stages[i].Kind == kind {
			return &d.Stages[i]
		}
	}
	return nil
}

// StageDescription is one stage kind's contract.
type StageDescription struct {
	Kind        string            `json:"kind"`
	Description string            `json:"description,omitempty"`
	Config      ConfigSchema      `json:"config"`
	Inputs      []PortDescription `json:"inputs"`
	Outputs     []PortDescription `json:"outputs"`
	Loop        *Loop             `json:"loop,omitempty"`
	Resume      *Resume           `json:"resume,omitempty"`
	InputFiles  []string          `json:"input_files,omitempty"`
}

// ConfigSchema is the HCL body schema of a stage block, derived from the
// config struct's `hcl` tags. Types are go-cty JSON type descriptions.
type ConfigSchema struct {
	Attributes []AttributeSchema `json:"attributes,omitempty"`
	Blocks     []BlockSchema     `json:"blocks,omitempty"`
}

// AttributeSchema is one attribute of a config body.
type AttributeSchema struct {
	Name string `json:"name"`
	// Type is the attribute's cty type in go-cty's JSON form, e.g. "number"
	// or ["list","string"].
	Type        json.RawMessage `json:"type"`
	Required    bool            `json:"required,omitempty"`
	Description string          `json:"description,omitempty"`
	// Expression marks a deferred expression (a field of type Expression):
	// the host does not evaluate it but sends its source text as a string,
	// with every var. and local. reference replaced by its value, for the
	// plugin to evaluate with variables of its own. Type is "string".
	Expression bool `json:"expression,omitempty"`
}

// BlockNesting says how many times a nested block may appear.
type BlockNesting string

const (
	NestingSingle BlockNesting = "single" // at most once
	NestingList   BlockNesting = "list"   // any number of times, in order
)

// BlockSchema is a nested block of a config body (e.g. `budget { ... }`).
type BlockSchema struct {
	Name        string       `json:"name"`
	Nesting     BlockNesting `json:"nesting"`
	Required    bool         `json:"required,omitempty"`
	Description string       `json:"description,omitempty"`
	// Labels names the block's labels, in order: `family "table" { ... }`
	// has one, named by the first `hcl:"NAME,label"` field of the block's
	// struct. Every block of the type has exactly these labels; the config
	// value holds each as a string attribute of the block's object.
	Labels []string     `json:"labels,omitempty"`
	Body   ConfigSchema `json:"body"`
}

// PortDescription is a port as the host sees it.
type PortDescription struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Optional    bool   `json:"optional,omitempty"`
	// Fields is the human-readable form of the port schema; nil means any.
	Fields []FieldDescription `json:"fields,omitempty"`
	// ArrowSchema is the port schema as an Arrow IPC schema message
	// (stagerpc.SerializeSchema, as Arrow Flight serializes one); empty means any schema.
	ArrowSchema []byte `json:"arrow_schema,omitempty"`
}

// FieldDescription is one column of a port schema.
type FieldDescription struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable,omitempty"`
}

// Loop names the ports through which a deciding stage steers its loop.
type Loop struct {
	// DecisionPort carries one row per round with a utf8 `status` column; the
	// loop goes on while the last row's status is "continue".
	DecisionPort string
	// ProposalsPort carries the next round's candidates; it replaces the data
	// on the looped-to stage's primary input port ("input").
	ProposalsPort string
}

// Resume names the ports through which a stage picks up interrupted work.
// The host journals every batch written to Output (append-only, synced).
// When an interrupted run is resumed, the journalled rows arrive on the
// optional input port Input; the stage skips the units they record and
// writes those rows to Output again, before any new row, so the output is
// whole (the host keeps the old journal until the new one holds as many
// rows).
type Resume struct {
	Output string `json:"output"`
	Input  string `json:"input"`
	// More are further output and input pairs journalled and handed back
	// alike, for a stage whose trials write to more than one port (the
	// evaluation stage's results and models). Output alone decides which
	// units are finished; a stage writes a unit's rows to the More ports
	// before its Output row, so a finished unit's rows are all journalled.
	More []ResumePort `json:"more,omitempty"`
}

// ResumePort is one journalled output port and the input port its rows
// come back on.
type ResumePort struct {
	Output string `json:"output"`
	Input  string `json:"input"`
}

// Ports lists every journalled pair, Output's first.
func (r *Resume) Ports() []ResumePort {
	if r == nil {
		return nil
	}
	return append([]ResumePort{{Output: r.Output, Input: r.Input}}, r.More...)
}

// ImpliedType is the cty type of a config value conforming to the schema: an
// object with one attribute per attribute and block. A single block is an
// object (null when absent), a list block a list of objects; a block's
// object holds each of its labels as a string attribute.
func (s ConfigSchema) ImpliedType() (cty.Type, error) {
	return s.impliedType(nil)
}

func (s ConfigSchema) impliedType(labels []string) (cty.Type, error) {
	attrs := map[string]cty.Type{}
	for _, l := range labels {
		if _, dup := attrs[l]; dup || l == "" {
			return cty.NilType, fmt.Errorf("label %q is empty or declared twice", l)
		}
		attrs[l] = cty.String
	}
	for _, a := range s.Attributes {
		ty, err := ctyjson.UnmarshalType(a.Type)
		if err != nil {
			return cty.NilType, fmt.Errorf("attribute %s: invalid type %s: %w", a.Name, a.Type, err)
		}
		if _, dup := attrs[a.Name]; dup {
			return cty.NilType, fmt.Errorf("attribute %s: declared twice, or as a label too", a.Name)
		}
		attrs[a.Name] = ty
	}
	for _, b := range s.Blocks {
		bt, err := b.Body.impliedType(b.Labels)
		if err != nil {
			return cty.NilType, fmt.Errorf("block %s: %w", b.Name, err)
		}
		if _, dup := attrs[b.Name]; dup {
			return cty.NilType, fmt.Errorf("block %s: declared twice, or as an attribute or label too", b.Name)
		}
		switch b.Nesting {
		case NestingSingle:
			attrs[b.Name] = bt
		case NestingList:
			attrs[b.Name] = cty.List(bt)
		default:
			return cty.NilType, fmt.Errorf("block %s: unknown nesting %q", b.Name, b.Nesting)
		}
	}
	return cty.Object(attrs), nil
}

// PortSchema decodes a port's Arrow schema; nil means any schema. The
// bytes come from a plugin: they are checked before arrow-go decodes
// them, which a damaged schema could make recurse until the stack
// overflows.
func (p PortDescription) PortSchema() (sch *arrow.Schema, err error) {
	if len(p.ArrowSchema) == 0 {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			sch, err = nil, fmt.Errorf("decoding the Arrow schema: %v", r)
		}
	}()
	rd, err := ipcverify.NewStreamReader(bytes.NewReader(p.ArrowSchema), int64(len(p.ArrowSchema)), memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	defer rd.Release()
	return rd.Schema(), nil
}
