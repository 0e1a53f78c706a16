// Package builtin assembles the first-party stage kinds into the plugin set
// that ships inside the sweetspot binary (the host serves it by starting its
// own executable again in plugin mode).
package builtin

import (
	"github.com/sweetspot-ml/sweetspot/plugins/dataset"
	"github.com/sweetspot-ml/sweetspot/plugins/evaluation"
	"github.com/sweetspot-ml/sweetspot/plugins/exec"
	"github.com/sweetspot-ml/sweetspot/plugins/modelchoice"
	"github.com/sweetspot-ml/sweetspot/plugins/optimization"
	"github.com/sweetspot-ml/sweetspot/plugins/replay"
	"github.com/sweetspot-ml/sweetspot/plugins/requirements"
	"github.com/sweetspot-ml/sweetspot/plugins/resize"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Name is the built-in plugin's name.
const Name = "builtin"

// Set returns the built-in stage kinds: dataset, requirements,
// model_choice, optimization, evaluation and resize. version is the
// sweetspot version, reported by describe.
func Set(version string) *sdk.Set {
	s := sdk.NewSet(sdk.WithName(Name), sdk.WithVersion(version))
	dataset.Register(s)
	requirements.Register(s)
	modelchoice.Register(s)
	optimization.Register(s)
	evaluation.Register(s)
	exec.Register(s)
	resize.Register(s)
	replay.Register(s)
	return s
}
