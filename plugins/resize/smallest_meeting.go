package resize

import "fmt"

// smallestMeeting is the smallest_meeting strategy: the smallest model
// measured to meet every requirement, found by the bracket engine.
type smallestMeeting struct{}

var _ strategy = smallestMeeting{}

func (smallestMeeting) plan(e *engine) (plan, error) { return e.smallest(), nil }

// smallest is smallest_meeting's plan, and the other strategies' while no
// model meets the requirements: settle below the smallest model measured
// to meet them, else below the smallest measured to reach the quality
// target (it breaks a cost limit), else grow.
func (e *engine) smallest() plan {
	for _, s := range e.sizes { // sorted by params
		if !e.meets(s) {
			continue
		}
		if !s.mlp() {
			return plan{status: StatusConverged, action: actionStop, chosen: s,
				reason: fmt.Sprintf("the %s baseline %s already meets every requirement (%s), so no hidden layer is needed", s.family, s.id(), e.qualityText(s))}
		}
		return e.settle(s, true)
	}
	for _, s := range e.sizes {
		if s.mlp() && e.reaches(s) {
			return e.settle(s, false)
		}
	}
	return e.grow()
}
