package engine

import (
	"fmt"
	"strings"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// Loop is one loop of a plan, run round by round: each round runs the
// body's stages in order, then the decider's decision says whether
// another round follows.
type Loop struct {
	Unit      Unit
	Decider   string
	MaxRounds int
	// DecisionPort is the decider's port whose last row holds the
	// decision.
	DecisionPort string
}

// Loop returns the loop a unit runs. It fails when the unit's decider
// declares no loop.
func (p *Plan) Loop(u Unit) (*Loop, error) {
	d := p.Stage(u.Decider)
	if d == nil || d.Loop == nil {
		return nil, fmt.Errorf("stage %s has loop_to but its kind declares no loop", u.Decider)
	}
	return &Loop{Unit: u, Decider: d.Addr, MaxRounds: d.MaxRounds, DecisionPort: d.Loop.DecisionPort}, nil
}

// Rounds lists the rounds left to run after done rounds finished, in
// order (a run continued or resumed starts after them).
func (l *Loop) Rounds(done int) []int {
	var out []int
	for r := done + 1; r <= l.MaxRounds; r++ {
		out = append(out, r)
	}
	return out
}

// MayRunAgain says whether a body stage run in round may run in a later
// round, so its plugin process is worth keeping.
func (l *Loop) MayRunAgain(round int) bool { return round < l.MaxRounds }

// Decide completes the decision read after round (a loop still asking
// to continue at max_rounds stops there, and says so) and says whether
// another round follows.
func (l *Loop) Decide(d *runstore.Decision, round int) (again bool) {
	if d.Status == "continue" && round == l.MaxRounds {
		d.Status = "max_rounds"
		d.Reason = strings.TrimSpace(d.Reason + fmt.Sprintf(" (stopped: max_rounds = %d reached)", l.MaxRounds))
	}
	d.Rounds = round
	return d.Status == "continue"
}

// DecisionFile is the file holding the decision of round, or false when
// the decider wrote none.
func (l *Loop) DecisionFile(o Outputs, round int) (runstore.OutputFile, bool) {
	files := o.Files(l.Decider, l.DecisionPort, round, round)
	if len(files) == 0 {
		return runstore.OutputFile{}, false
	}
	return files[0], true
}
