package engine

import (
	"encoding/json"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// CacheBase is what a stage's content address holds besides its round
// and input files: the plugin (name, version, executable sha256), the
// kind, the config value as JSON and the sha256 of each file the config
// names. A driver gathers it (it reads files); the address is computed
// here.
type CacheBase struct {
	Plugin        string            `json:"plugin"`
	PluginVersion string            `json:"plugin_version"`
	PluginSHA256  string            `json:"plugin_sha256"`
	Kind          string            `json:"kind"`
	Config        json.RawMessage   `json:"config"`
	Files         map[string]string `json:"files,omitempty"`
}

// Address is the content address of one execution: the base, the round
// and the sha256 of every input file, port by port.
func (b CacheBase) Address(round int, inputs []PortFiles) (runstore.CacheInputs, string) {
	in := runstore.CacheInputs{Plugin: b.Plugin, PluginVersion: b.PluginVersion, PluginSHA256: b.PluginSHA256,
		Kind: b.Kind, Round: round, Config: b.Config, Files: b.Files, Ports: map[string][]string{}}
	for _, p := range inputs {
		sums := make([]string, len(p.Files))
		for i, f := range p.Files {
			sums[i] = f.SHA256
		}
		in.Ports[p.Port] = sums
	}
	return in, in.Key()
}

// Finished are the executions that succeeded in a run being resumed, by
// stage and round.
type Finished map[string]map[int]runstore.Execution

// FinishedOf indexes the executions of a run's manifest that succeeded.
func FinishedOf(m runstore.Manifest) Finished {
	out := Finished{}
	for _, s := range m.Stages {
		for _, e := range s.Executions {
			if e.Status != runstore.StatusSucceeded {
				continue
			}
			if out[s.Addr] == nil {
				out[s.Addr] = map[int]runstore.Execution{}
			}
			out[s.Addr][e.Round] = e
		}
	}
	return out
}

// Source says where an execution's outputs come from.
type Source string

const (
	// Run: run the stage's plugin.
	Run Source = "ran"
	// Resumed: the run being resumed finished this execution with the
	// same address; its files are kept.
	Resumed Source = "resumed"
	// Cache: ask the cache for an earlier run's outputs with the same
	// address, and run the plugin when it has none.
	Cache Source = "cache"
)

// Serve decides where the outputs of the stage at addr in round come
// from, before anything runs: kept from the run being resumed when it
// finished this execution with the same address, else looked up in the
// cache when the run uses one, else run. With Resumed it returns the
// finished execution.
func Serve(prev Finished, addr string, round int, key string, useCache bool) (Source, runstore.Execution) {
	if e, ok := prev[addr][round]; ok && e.Key == key {
		return Resumed, e
	}
	if useCache {
		return Cache, runstore.Execution{}
	}
	return Run, runstore.Execution{}
}

// KeptTrials says which trials of an execution spread over trial
// activities a resumed run keeps from the run it resumes, in order: those
// the interrupted run finished (finished(i)) of the same execution (the
// same content address) on the same trial input (the sha256 of each
// trial's input file).
func KeptTrials(prevKey string, prevInputs []string, finished func(int) bool, key string, inputs []string) []int {
	if prevKey == "" || prevKey != key {
		return nil
	}
	var out []int
	for i, sum := range inputs {
		if i < len(prevInputs) && prevInputs[i] == sum && finished(i) {
			out = append(out, i)
		}
	}
	return out
}
