// Package engine is what a run's engines share, written once: the plan
// of a run (its units, each stage's inputs and which rounds feed them),
// the schedule (which units may start, what a failure takes down), the
// loop (the input of each round, when to stop), the choice of each
// execution's input files and where its outputs come from (the run being
// resumed, the cache, or running it). Everything here is pure: no I/O,
// no clock, no dependence on map order, so the local runner calls it
// from goroutines and the Temporal workflow from deterministic workflow
// code. Drivers do the rest: start plugins, move files, record.
package engine

import (
	"fmt"
	"sort"

	"github.com/sweetspot-ml/sweetspot/pipeline/config"
	"github.com/sweetspot-ml/sweetspot/pipeline/graph"
	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

// Plan is a pipeline as the engines schedule it: pure data, which a
// workflow carries in its history.
type Plan struct {
	Stages []Stage `json:"stages"`
	Units  []Unit  `json:"units"`
}

// Stage is what scheduling needs of one stage block.
type Stage struct {
	Addr string `json:"addr"`
	// Inputs are the connected input ports, in the order the kind
	// declares them.
	Inputs []Input `json:"inputs"`
	// Loop is set for a stage whose kind decides loops; LoopTo and
	// MaxRounds for one that closes a loop (loop_to).
	Loop      *sdk.Loop `json:"loop,omitempty"`
	LoopTo    string    `json:"loop_to,omitempty"`
	MaxRounds int       `json:"max_rounds,omitempty"`
}

// Input is one connected input port and what feeds it.
type Input struct {
	Port         string `json:"port"`
	Producer     string `json:"producer"`
	ProducerPort string `json:"producer_port"`
	// Rounds says which of the producer's rounds feed the port.
	Rounds Rounds `json:"rounds"`
}

// Unit is what a scheduler runs: a single stage, or a whole loop.
type Unit struct {
	ID      string   `json:"ID"`
	Stages  []string `json:"Stages"`  // in topological order
	Decider string   `json:"Decider"` // set for loops
	Deps    []string `json:"Deps"`    // unit ids
}

// NewPlan reduces a loaded pipeline to its plan.
func NewPlan(p *config.Pipeline, g *graph.Graph) (*Plan, error) {
	units, err := Units(p, g)
	if err != nil {
		return nil, err
	}
	plan := &Plan{}
	for _, u := range units {
		plan.Units = append(plan.Units, *u)
	}
	inLoop := map[string]string{} // stage -> its loop's decider
	for _, u := range units {
		for _, a := range u.Stages {
			if u.Decider != "" {
				inLoop[a] = u.Decider
			}
		}
	}
	for _, st := range p.Stages {
		if st.Spec == nil {
			return nil, fmt.Errorf("stage %s has no resolved stage kind", st.Addr)
		}
		s := Stage{Addr: st.Addr, Loop: st.Spec.Loop, LoopTo: st.LoopTo, MaxRounds: st.MaxRounds}
		for _, port := range st.Spec.Inputs {
			ref, ok := st.Inputs[port.Name]
			if !ok {
				continue
			}
			in := Input{Port: port.Name, Producer: ref.Stage, ProducerPort: ref.Port, Rounds: RoundsAll}
			if d := inLoop[st.Addr]; d != "" && inLoop[ref.Stage] == d {
				// Inside a loop's body a stage sees the current round;
				// the decider judges every round so far.
				in.Rounds = RoundsCurrent
				if st.LoopTo != "" {
					in.Rounds = RoundsSoFar
				}
			}
			s.Inputs = append(s.Inputs, in)
		}
		plan.Stages = append(plan.Stages, s)
	}
	return plan, nil
}

// Units splits a pipeline into what a scheduler runs: one unit per loop
// (its body, in order) and one per stage outside any loop, each with the
// units it waits for.
func Units(p *config.Pipeline, g *graph.Graph) ([]*Unit, error) {
	unitOf := map[string]string{}
	var units []*Unit
	for _, st := range p.Stages {
		if st.LoopTo == "" {
			continue
		}
		body := g.LoopBody(st.Addr)
		u := &Unit{ID: "loop " + st.Addr, Decider: st.Addr}
		inBody := map[string]bool{}
		for _, a := range body {
			inBody[a] = true
		}
		for _, a := range g.Order() {
			if inBody[a] {
				if other, ok := unitOf[a]; ok {
					return nil, fmt.Errorf("stage %s belongs to two loops (%s and %s): nested or overlapping loops are not supported", a, other, u.ID)
				}
				unitOf[a] = u.ID
				u.Stages = append(u.Stages, a)
			}
		}
		units = append(units, u)
	}
	for _, a := range g.Order() {
		if _, ok := unitOf[a]; ok {
			continue
		}
		u := &Unit{ID: a, Stages: []string{a}}
		unitOf[a] = u.ID
		units = append(units, u)
	}
	for _, u := range units {
		seen := map[string]bool{}
		for _, a := range u.Stages {
			for _, up := range g.Upstream(a) {
				if d := unitOf[up]; d != u.ID && !seen[d] {
					seen[d] = true
					u.Deps = append(u.Deps, d)
				}
			}
		}
		sort.Strings(u.Deps)
	}
	return units, nil
}

// Stage returns the stage at addr, or nil.
func (p *Plan) Stage(addr string) *Stage {
	for i := range p.Stages {
		if p.Stages[i].Addr == addr {
			return &p.Stages[i]
		}
	}
	return nil
}

// Rounds says which of a producer's rounds feed an input port.
type Rounds string

const (
	// RoundsAll: every round the producer ran (a stage outside the
	// producer's loop, or any stage outside loops).
	RoundsAll Rounds = "all"
	// RoundsCurrent: the round being run (a stage in the same loop body).
	RoundsCurrent Rounds = "current"
	// RoundsSoFar: rounds 1 to the current one (the loop's decider).
	RoundsSoFar Rounds = "so_far"
)

// Range is the first and last producer round that feed the port when its
// stage runs in round (0 outside loops).
func (r Rounds) Range(round int) (from, to int) {
	switch {
	case r == RoundsCurrent && round > 0:
		return round, round
	case r == RoundsSoFar && round > 0:
		return 1, round
	}
	return 0, 1 << 30
}

// PortFiles is one input port and the files that feed it.
type PortFiles struct {
	Port  string                `json:"port"`
	Files []runstore.OutputFile `json:"files"`
}

// Outputs are the files a run's executions committed, by stage and port
// (key stage+"\x00"+port), each list in the order recorded.
type Outputs map[string][]runstore.OutputFile

// Add records an execution's files.
func (o Outputs) Add(stage string, files []runstore.OutputFile) {
	for _, f := range files {
		k := stage + "\x00" + f.Port
		o[k] = append(o[k], f)
	}
}

// Files returns a stage port's files of rounds from..to inclusive.
func (o Outputs) Files(stage, port string, from, to int) []runstore.OutputFile {
	var out []runstore.OutputFile
	for _, f := range o[stage+"\x00"+port] {
		if f.Round >= from && f.Round <= to {
			out = append(out, f)
		}
	}
	return out
}

// Inputs picks the files of each input port of the stage at addr when it
// runs in round: its producers' files of the rounds its ports read, and,
// from a loop's second round on, the decider's proposals of the round
// before in place of the primary input of the stage the loop goes back
// to.
func (p *Plan) Inputs(addr string, round int, o Outputs) []PortFiles {
	st := p.Stage(addr)
	if st == nil {
		return nil
	}
	var feed *PortFiles
	if round > 1 {
		for i := range p.Stages {
			d := &p.Stages[i]
			if d.LoopTo == addr && d.Loop != nil {
				files := o.Files(d.Addr, d.Loop.ProposalsPort, round-1, round-1)
				if files == nil {
					files = []runstore.OutputFile{}
				}
				feed = &PortFiles{Port: sdk.PrimaryInput, Files: files}
			}
		}
	}
	var out []PortFiles
	for _, in := range st.Inputs {
		if feed != nil && in.Port == sdk.PrimaryInput {
			out = append(out, *feed)
			feed = nil
			continue
		}
		from, to := in.Rounds.Range(round)
		out = append(out, PortFiles{Port: in.Port, Files: o.Files(in.Producer, in.ProducerPort, from, to)})
	}
	if feed != nil {
		out = append(out, *feed)
	}
	return out
}
