package config

import (
	"fmt"
	"maps"
	"slices"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/sdk"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// Host-reserved attributes of stage and dataset blocks. The host reads
// them; plugins never see them.
const (
	attrPlugin      = "plugin"
	attrTimeout     = "timeout"
	attrLoopTo      = "loop_to"
	attrMaxRounds   = "max_rounds"
	attrDescription = "description"
	// attrTaskQueue routes a stage's work to the Temporal workers that poll
	// that queue (`task_queue = "gpu"`); the local runner ignores it.
	attrTaskQueue = "task_queue"
	// attrPassEnv lists the host environment variables the stage's plugin
	// process gets beyond the harmless base set (`pass_env = ["AWS_PROFILE"]`).
	attrPassEnv = "pass_env"
	// attrMemoryLimit bounds the resident memory of the stage's plugin
	// process and its children (`memory_limit = "512MiB"`); the host kills
	// a plugin that goes over it.
	attrMemoryLimit = "memory_limit"
)

// attrBaseDir is the one attribute the host fills in for plugins: when a
// stage's schema declares it as a string and the block leaves it unset, it
// gets the directory of the file that declares the stage.
const attrBaseDir = "base_dir"

// reservedAttrs gives the type of each of sdk.HostAttributes, the names
// the SDK and its conformance suite keep out of stage configs.
var reservedAttrs = map[string]cty.Type{
	attrPlugin:      cty.String,
	attrTimeout:     cty.String,
	attrLoopTo:      cty.DynamicPseudoType,
	attrMaxRounds:   cty.Number,
	attrDescription: cty.String,
	attrTaskQueue:   cty.String,
	attrPassEnv:     cty.List(cty.String),
	attrMemoryLimit: cty.String,
}

func init() {
	if len(reservedAttrs) != len(sdk.HostAttributes) {
		panic("config: reservedAttrs and sdk.HostAttributes differ")
	}
	for _, name := range sdk.HostAttributes {
		if _, ok := reservedAttrs[name]; !ok {
			panic("config: no type for the host attribute " + name)
		}
	}
}

// stageSpec is the full spec of a stage body: the plugin's config, the
// host-reserved attributes and one attribute per input port (ports lists
// the usable ones). Decoding all of
// them at once gives "Did you mean" hints across all three.
func stageSpec(sd *describe.StageDescription) (full hcldec.ObjectSpec, ports []describe.PortDescription, config []string, problems []string) {
	// The plugin's config is decoded as every host decodes it, sdktest
	// included: describe.ConfigSchema.Spec is the one rule.
	cfg, problems := sd.Config.Spec()
	full = hcldec.ObjectSpec{}
	for name, t := range reservedAttrs {
		full[name] = &hcldec.AttrSpec{Name: name, Type: t}
	}
	for _, p := range sd.Inputs {
		if _, clash := full[p.Name]; clash || p.Name == "" {
			problems = append(problems, fmt.Sprintf("the input port %q clashes with a host attribute", p.Name))
			continue
		}
		full[p.Name] = &hcldec.AttrSpec{Name: p.Name, Type: cty.DynamicPseudoType}
		ports = append(ports, p)
	}
	for _, name := range slices.Sorted(maps.Keys(cfg)) {
		if _, clash := full[name]; clash {
			problems = append(problems, fmt.Sprintf("the config entry %q clashes with a host attribute or an input port", name))
			continue
		}
		full[name] = cfg[name]
		config = append(config, name)
	}
	slices.Sort(problems)
	return full, ports, config, problems
}
