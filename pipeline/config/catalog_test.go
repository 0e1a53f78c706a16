package config

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// fakeCatalog resolves stage kinds from plugin descriptions built in the
// test, as pluginhost would from `describe` output: the same data, no
// processes.
type fakeCatalog struct {
	plugins map[string]*describe.PluginDescription
}

var _ Catalog = (*fakeCatalog)(nil)

const builtinPlugin = "builtin"

func (c *fakeCatalog) Resolve(kind, plugin string) (*describe.PluginDescription, error) {
	if plugin == "" {
		if d := c.plugins[builtinPlugin]; d.Stage(kind) != nil {
			return d, nil
		}
		if d, ok := c.plugins[kind]; ok {
			return d, nil
		}
		return nil, fmt.Errorf("no installed plugin provides the stage kind %q", kind)
	}
	d, ok := c.plugins[plugin]
	if !ok {
		names := slices.Sorted(maps.Keys(c.plugins))
		return nil, fmt.Errorf("no plugin named %q is installed (installed: %s)", plugin, strings.Join(names, ", "))
	}
	return d, nil
}

func (c *fakeCatalog) Kinds() []string {
	var kinds []string
	for _, d := range c.plugins {
		for _, s := range d.Stages {
			kinds = append(kinds, s.Kind)
		}
	}
	slices.Sort(kinds)
	return slices.Compact(kinds)
}

func schemaBytes(fields ...arrow.Field) []byte {
	return flight.SerializeSchema(arrow.NewSchema(fields, nil), memory.DefaultAllocator)
}

func f64(name string) arrow.Field { return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64} }
func i64(name string) arrow.Field { return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int64} }
func i32(name string) arrow.Field { return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Int32} }
func str(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.BinaryTypes.String}
}

// Column sets of the tables in docs/tables.md, trimmed to what the tests need.
var (
	requirementsCols = []arrow.Field{str("task"), str("metric"), f64("min_accuracy"), f64("max_latency_ms"),
		i64("max_params"), i32("max_trials"), i64("n_rows"), i32("n_features"), i32("n_classes")}
	candidateCols = []arrow.Field{str("candidate_id"), i32("round"), str("family"), i32("depth"), i32("width"),
		i64("params"), i64("flops"), f64("learning_rate")}
	resultCols   = append(slices.Clone(candidateCols), f64("accuracy"), f64("loss"), f64("latency_p95_ms"), str("status"))
	decisionCols = []arrow.Field{i32("round"), str("status"), str("chosen_candidate_id"), str("reason")}
)

func ty(t string) json.RawMessage { return json.RawMessage(t) }

func attr(name, t string, required bool) describe.AttributeSchema {
	return describe.AttributeSchema{Name: name, Type: ty(t), Required: required}
}

func newFakeCatalog() *fakeCatalog {
	builtin := &describe.PluginDescription{
		Name: builtinPlugin, Version: "0.1.0", SDKVersion: sdk.SDKVersion, ProtocolVersion: sdk.ProtocolVersion,
		Stages: []describe.StageDescription{
			{
				Kind: "dataset",
				Config: describe.ConfigSchema{Attributes: []describe.AttributeSchema{
					attr("path", `"string"`, false),
					attr("generator", `"string"`, false),
					attr("target", `"string"`, true),
					attr("test_fraction", `"number"`, false),
					attr("seed", `"number"`, false),
				}},
				Outputs: []describe.PortDescription{{Name: "data", Description: "One column per feature and the target column."}},
			},
			{
				Kind: "requirements",
				Config: describe.ConfigSchema{
					Attributes: []describe.AttributeSchema{
						attr("min_accuracy", `"number"`, false),
						attr("max_latency_ms", `"number"`, false),
						attr("max_params", `"number"`, false),
					},
					Blocks: []describe.BlockSchema{{
						Name: "budget", Nesting: describe.NestingSingle,
						Body: describe.ConfigSchema{Attributes: []describe.AttributeSchema{
							attr("max_trials", `"number"`, true),
							attr("max_wall", `"string"`, false),
						}},
					}},
				},
				Inputs:  []describe.PortDescription{{Name: "dataset", Optional: true}},
				Outputs: []describe.PortDescription{{Name: "requirements", ArrowSchema: schemaBytes(requirementsCols...)}},
			},
			{
				Kind: "model_choice",
				Config: describe.ConfigSchema{Attributes: []describe.AttributeSchema{
					attr("family", `"string"`, true),
					attr("depth", `["list","number"]`, false),
					attr("width", `["object",{"min":"number","max":"number"}]`, false),
				}},
				Inputs: []describe.PortDescription{{Name: "input", Description: "The requirements table.",
					ArrowSchema: schemaBytes(f64("min_accuracy"), i64("max_params"))}},
				Outputs: []describe.PortDescription{{Name: "candidates", ArrowSchema: schemaBytes(candidateCols...)}},
			},
			{
				Kind: "evaluation",
				Config: describe.ConfigSchema{
					Attributes: []describe.AttributeSchema{
						attr("epochs", `"number"`, true),
						attr("parallelism", `"number"`, false),
					},
					Blocks: []describe.BlockSchema{{
						Name: "metric", Nesting: describe.NestingList,
						Body: describe.ConfigSchema{Attributes: []describe.AttributeSchema{
							attr("name", `"string"`, true),
							attr("weight", `"number"`, false),
						}},
					}},
				},
				Inputs: []describe.PortDescription{
					{Name: "input", Description: "Candidates to train.",
						ArrowSchema: schemaBytes(str("candidate_id"), i32("depth"), i32("width"))},
					{Name: "dataset", Description: "The dataset to train and test on."},
				},
				Outputs: []describe.PortDescription{{Name: "results", ArrowSchema: schemaBytes(resultCols...)}},
			},
			{
				Kind:   "resize",
				Config: describe.ConfigSchema{Attributes: []describe.AttributeSchema{attr("strategy", `"string"`, false)}},
				Inputs: []describe.PortDescription{{Name: "input",
					ArrowSchema: schemaBytes(str("candidate_id"), f64("accuracy"), i64("params"))}},
				Outputs: []describe.PortDescription{
					{Name: "decision", ArrowSchema: schemaBytes(decisionCols...)},
					{Name: "proposals", ArrowSchema: schemaBytes(candidateCols...)},
				},
				Loop: &sdk.Loop{DecisionPort: "decision", ProposalsPort: "proposals"},
			},
			{
				Kind:    "standardize",
				Config:  describe.ConfigSchema{Attributes: []describe.AttributeSchema{attr("columns", `["list","string"]`, false)}},
				Inputs:  []describe.PortDescription{{Name: "input"}},
				Outputs: []describe.PortDescription{{Name: "output"}},
			},
		},
	}
	acme := &describe.PluginDescription{
		Name: "acme", Version: "1.2.0", SDKVersion: sdk.SDKVersion, ProtocolVersion: sdk.ProtocolVersion,
		Stages: []describe.StageDescription{
			{
				// An older model chooser whose table does not fit evaluation.
				Kind:    "legacy_choice",
				Config:  describe.ConfigSchema{Attributes: []describe.AttributeSchema{attr("family", `"string"`, false)}},
				Inputs:  []describe.PortDescription{{Name: "input", Optional: true}},
				Outputs: []describe.PortDescription{{Name: "candidates", ArrowSchema: schemaBytes(str("candidate_id"), i64("depth"))}},
			},
			{
				Kind: "standardize",
				Config: describe.ConfigSchema{Attributes: []describe.AttributeSchema{
					attr("columns", `["list","string"]`, true),
					attr("epsilon", `"number"`, false),
				}},
				Inputs:  []describe.PortDescription{{Name: "input"}},
				Outputs: []describe.PortDescription{{Name: "output"}},
			},
		},
	}
	return &fakeCatalog{plugins: map[string]*describe.PluginDescription{builtinPlugin: builtin, "acme": acme, zooKind: zooSet().Describe()}}
}

// zooKind is a stage kind whose schema the SDK derives from a Go struct,
// as a real plugin's is: labeled blocks and deferred expressions, in the
// shape the model_choice stage plans.
const zooKind = "model_zoo"

type zooSize struct {
	Var     string  `hcl:"var,label"`
	Min     float64 `hcl:"min"`
	Max     float64 `hcl:"max"`
	Scale   string  `hcl:"scale,optional"`
	Integer bool    `hcl:"integer,optional"`
}

type zooFamily struct {
	Kind   string          `hcl:"kind,label"`
	Path   string          `hcl:"path,optional"`
	Name   string          `hcl:"name,optional"`
	Sizes  []zooSize       `hcl:"size,block"`
	Knobs  *sdk.Expression `hcl:"knobs,optional"`
	Params *sdk.Expression `hcl:"params,optional"`
}

type zooConfig struct {
	Families []zooFamily `hcl:"family,block"`
}

// zooStage keeps its config, for tests to evaluate its expressions as the
// plugin would.
type zooStage struct{ cfg zooConfig }

func (*zooStage) Run(context.Context, sdk.Inputs, sdk.Outputs) error { return nil }

func zooSet() *sdk.Set {
	set := sdk.NewSet(sdk.WithName(zooKind), sdk.WithVersion("0.1.0"))
	sdk.Register(set, zooKind, sdk.StageInfo{
		Description: "Candidates from model families.",
		Inputs:      []sdk.Port{{Name: "input", Optional: true}},
		Outputs:     []sdk.Port{{Name: "candidates"}},
	}, func(c zooConfig) (sdk.Stage, error) { return &zooStage{cfg: c}, nil })
	return set
}
