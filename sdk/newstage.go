package sdk

import "github.com/zclconf/go-cty/cty"

// NewStage decodes a constant config value for kind and builds the stage in
// this process, exactly as the plugin does before a run, without serving it.
// The zero cty.Value stands for an empty config. Config problems come back
// as error diagnostics, each with the attribute path at fault.
//
// Hosts never need it: sdktest's conformance suite does, to call a stage's
// Close twice, which no run over the wire ever does.
func (s *Set) NewStage(kind string, config cty.Value) (Stage, Diagnostics) {
	if config == cty.NilVal {
		config = cty.EmptyObjectVal
	}
	return (&backend{set: s}).build(kind, config)
}
