package engine

// Schedule is the state of a run's units: which may start, and what a
// failure takes down. A unit starts once every unit it depends on
// succeeded; a failed unit makes every unit that depends on it, directly
// or not, skipped, naming the stage that failed, while independent units
// run to the end. It holds no goroutines and reads no clock: a driver
// asks it for ready units, runs them its own way and reports each end.
type Schedule struct {
	units []Unit
	state map[string]unitState
}

type unitState int

const (
	pending unitState = iota
	started
	succeeded
	failed
	skipped
	paused
)

// Skip is a unit that will not run because Culprit (a stage) failed.
type Skip struct {
	Unit    Unit
	Culprit string
}

// NewSchedule starts a schedule of units, those in done already
// succeeded (a workflow continued as new).
func NewSchedule(units []Unit, done []string) *Schedule {
	s := &Schedule{units: units, state: map[string]unitState{}}
	for _, id := range done {
		s.state[id] = succeeded
	}
	return s
}

// Ready returns the units not yet started whose dependencies all
// succeeded, in plan order, and marks them started.
func (s *Schedule) Ready() []Unit {
	var out []Unit
	for _, u := range s.units {
		if s.state[u.ID] != pending {
			continue
		}
		ready := true
		for _, d := range u.Deps {
			if s.state[d] != succeeded {
				ready = false
				break
			}
		}
		if ready {
			s.state[u.ID] = started
			out = append(out, u)
		}
	}
	return out
}

// Succeeded records that a unit finished.
func (s *Schedule) Succeeded(id string) { s.state[id] = succeeded }

// Paused records that a unit stopped without finishing or failing (a
// loop that continues in a new workflow): what depends on it waits.
func (s *Schedule) Paused(id string) { s.state[id] = paused }

// Failed records that a unit failed at stage culprit and returns the
// units that now cannot run, in plan order.
func (s *Schedule) Failed(id, culprit string) []Skip {
	s.state[id] = failed
	// Units are not in topological order (loops come first): spread
	// the failure until nothing changes.
	down := map[string]bool{id: true}
	for changed := true; changed; {
		changed = false
		for _, u := range s.units {
			for _, d := range u.Deps {
				if down[d] && !down[u.ID] {
					down[u.ID], changed = true, true
				}
			}
		}
	}
	var out []Skip
	for _, u := range s.units {
		if down[u.ID] && s.state[u.ID] == pending {
			s.state[u.ID] = skipped
			out = append(out, Skip{Unit: u, Culprit: culprit})
		}
	}
	return out
}

// Done lists the units that succeeded, in plan order.
func (s *Schedule) Done() []string {
	var out []string
	for _, u := range s.units {
		if s.state[u.ID] == succeeded {
			out = append(out, u.ID)
		}
	}
	return out
}
