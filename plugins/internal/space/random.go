package space

import (
	"math"
	"math/rand/v2"
)

// drawStream is the second word of the PCG seed of a space's draws.
const drawStream = 0x5eed5ace

// draw draws n settings: a PCG generator seeded (Seed, drawStream) gives,
// setting after setting and param after param in block order, one uniform
// number u in [0, 1) (rand.Float64) each, and the param's value is
//
//   - values: values[floor(u × len(values))];
//   - uniform [lo, hi]: lo + u × (hi − lo);
//   - log_uniform [lo, hi]: exp(ln lo + u × (ln hi − ln lo));
//   - int_range [lo, hi]: lo + floor(u × (hi − lo + 1)).
//
// The same seed thus draws the same settings, and adding a param at the
// end leaves the earlier params' draws of the first setting unchanged.
func (sp Space) draw(n int) []Setting {
	rng := rand.New(rand.NewPCG(sp.Seed, drawStream))
	out := make([]Setting, n)
	for i := range out {
		s := make(Setting, len(sp.Params))
		for j, p := range sp.Params {
			s[j] = Value{Name: p.Name, V: p.at(rng.Float64())}
		}
		out[i] = s
	}
	return out
}

// at is the value of p at u in [0, 1).
func (p Param) at(u float64) any {
	switch p.Kind {
	case Values:
		return p.Values[min(int(u*float64(len(p.Values))), len(p.Values)-1)]
	case IntRange:
		return min(p.Lo+math.Floor(u*(p.Hi-p.Lo+1)), p.Hi)
	case LogUniform:
		return min(math.Exp(math.Log(p.Lo)+u*(math.Log(p.Hi)-math.Log(p.Lo))), p.Hi)
	default:
		return min(p.Lo+u*(p.Hi-p.Lo), p.Hi)
	}
}
