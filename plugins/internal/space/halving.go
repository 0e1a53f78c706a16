package space

// Rung is one step of successive halving: Settings settings each train
// Resource epochs.
type Rung struct {
	Settings int
	Resource int
}

// Rungs is successive halving's plan (Jamieson & Talwalkar, 2016) for n
// settings and a full budget of full epochs: rung 0 trains all n, each
// later rung the best ceil(n_prev / eta) of the one before, until one
// remains; the last rung trains full epochs and each rung before it 1/eta
// of the next one's (whole epochs, at least MinResource, at most full).
// Every rung trains from scratch. One setting is a single rung at full.
func (sp Space) Rungs(n, full int) []Rung {
	counts := []int{n}
	for n > 1 {
		n = (n + sp.Eta - 1) / sp.Eta
		counts = append(counts, n)
	}
	out := make([]Rung, len(counts))
	r := full
	for i := len(counts) - 1; i >= 0; i-- {
		out[i] = Rung{Settings: counts[i], Resource: min(full, max(r, sp.MinResource))}
		r /= sp.Eta
	}
	return out
}
