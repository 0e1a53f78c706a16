package space

import "math"

// GridSize is the number of combinations a grid tries (saturating at
// MaxTrials+1, so a huge grid is reported, not overflowed).
func (sp Space) GridSize() int {
	n := 1
	for _, p := range sp.Params {
		n *= max(1, len(p.gridValues(MaxTrials+1)))
		if n > MaxTrials {
			return MaxTrials + 1
		}
	}
	return n
}

// grid is every combination of the params' values, in order: the first
// param varies slowest, the last fastest, as nested loops in block order.
func (sp Space) grid() []Setting {
	axes := make([][]any, len(sp.Params))
	for i, p := range sp.Params {
		axes[i] = p.gridValues(MaxTrials + 1)
	}
	out := []Setting{{}}
	for i, axis := range axes {
		next := make([]Setting, 0, len(out)*len(axis))
		for _, s := range out {
			for _, v := range axis {
				next = append(next, append(append(Setting(nil), s...), Value{Name: sp.Params[i].Name, V: v}))
			}
		}
		out = next
	}
	return out
}

// gridValues are the values a grid takes of p: a values param's in order;
// every whole number of an int_range (at most limit); points values of a
// continuous range, evenly spaced from lo to hi (in log space for
// log_uniform), the ends exact.
func (p Param) gridValues(limit int) []any {
	switch p.Kind {
	case Values:
		return p.Values
	case IntRange:
		n := min(p.Hi-p.Lo+1, float64(limit))
		out := make([]any, int(n))
		for i := range out {
			out[i] = p.Lo + float64(i)
		}
		return out
	}
	n := p.Points
	if n <= 1 {
		return []any{p.Lo}
	}
	out := make([]any, n)
	for i := range out {
		t := float64(i) / float64(n-1)
		switch {
		case i == 0:
			out[i] = p.Lo
		case i == n-1:
			out[i] = p.Hi
		case p.Kind == LogUniform:
			out[i] = math.Exp(math.Log(p.Lo) + t*(math.Log(p.Hi)-math.Log(p.Lo)))
		default:
			out[i] = p.Lo + t*(p.Hi-p.Lo)
		}
	}
	return out
}
