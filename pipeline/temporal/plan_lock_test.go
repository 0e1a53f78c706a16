package temporal

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/lockfile"
	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// The plan carries what a worker needs to start each stage's plugin as the
// client would: the names pass_env lists (never values) and the client's
// lock file entry of the plugin.
func TestPlanCarriesPassEnvAndLock(t *testing.T) {
	stage := func(addr, kind, plugin string, pass ...string) *config.Stage {
		return &config.Stage{Addr: addr, Kind: kind, Plugin: plugin, Spec: &describe.StageDescription{Kind: kind}, Config: cty.EmptyObjectVal, PassEnv: pass}
	}
	p := &config.Pipeline{Stages: []*config.Stage{
		stage("emit.locked", "emit", "testkit", "AWS_PROFILE"),
		stage("emit.builtin", "emit", "sweetspot"),
	}}
	var nodes []graph.Node
	for _, st := range p.Stages {
		nodes = append(nodes, graph.Node{Addr: st.Addr, Kind: st.Kind, Plugin: st.Plugin})
	}
	g, diags := graph.Build(nodes)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	hashes := map[string]string{lockfile.Platform(): "sha256:" + "00"}
	plan, err := BuildPlan(p, g, PlanOptions{
		RunID:    "20261128-120000-abcdef",
		Lock:     &lockfile.File{Plugins: map[string]*lockfile.Plugin{"testkit": {Name: "testkit", Hashes: hashes}}},
		LockPath: "/p/.sweetspot.lock.hcl",
	})
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		PassEnv  []string
		Hashes   map[string]string
		LockFile string
	}
	have := map[string]got{}
	for _, sp := range plan.Stages {
		have[sp.Addr] = got{sp.PassEnv, sp.PluginHashes, sp.LockFile}
	}
	want := map[string]got{
		"emit.locked":  {[]string{"AWS_PROFILE"}, hashes, "/p/.sweetspot.lock.hcl"},
		"emit.builtin": {},
	}
	if diff := cmp.Diff(want, have); diff != "" {
		t.Errorf("stage plans (-want +got):\n%s", diff)
	}
}
