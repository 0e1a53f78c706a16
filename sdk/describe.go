package sdk

import "encoding/json"

// Versions of this SDK and of the wire protocol it speaks. ProtocolVersion is
// bumped on any breaking change to sweetspot.stage.v1 or its semantics.
const (
	SDKVersion      = "0.1.0"
	ProtocolVersion = 1
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
	// (flight.SerializeSchema); empty means any schema.
	ArrowSchema []byte `json:"arrow_schema,omitempty"`
}

// FieldDescription is one column of a port schema.
type FieldDescription struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable,omitempty"`
}
