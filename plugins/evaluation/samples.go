package evaluation

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/sweetspot-ml/sweetspot/plugins/internal/nn"
)

// subsampleStream keeps the subsample's random stream apart from the
// other streams drawn from the stage's seed.
const subsampleStream = 0x5a4d_0001

// SubsampleRows are the training rows a candidate with samples > 0 trains
// on: the first samples rows of one permutation of the training split's n
// rows, drawn from the stage's seed alone, in ascending order. The
// permutation does not depend on the candidate, so every size trains on
// the same rows at a given samples, and the rows of a smaller samples are
// among those of a larger one: the runs of a sweep differ in how much data
// they saw, not in which. The validation and test rows are other splits
// and never drawn. samples above n is an error: the trial would silently
// train on less than it says.
func SubsampleRows(n int, samples int64, seed uint64) ([]int, error) {
	if samples <= 0 {
		return nil, fmt.Errorf("samples %d is not positive", samples)
	}
	if samples > int64(n) {
		return nil, fmt.Errorf("samples %d is more than the %d training rows", samples, n)
	}
	perm := rand.New(rand.NewPCG(seed, subsampleStream)).Perm(n)[:samples]
	slices.Sort(perm)
	return perm, nil
}

// subsample returns the rows of d that rows lists.
func subsample(d *nn.Data, rows []int) *nn.Data {
	out := &nn.Data{Rows: len(rows), Cols: d.Cols, X: make([]float32, 0, len(rows)*d.Cols)}
	for _, i := range rows {
		out.X = append(out.X, d.X[i*d.Cols:(i+1)*d.Cols]...)
		if d.Labels != nil {
			out.Labels = append(out.Labels, d.Labels[i])
		}
		if d.Targets != nil {
			out.Targets = append(out.Targets, d.Targets[i])
		}
	}
	return out
}

// trainingRows is the training data of candidate samples (0: every row).
func (s *Stage) trainingRows(train *nn.Data, samples int64) (*nn.Data, error) {
	if samples == 0 {
		return train, nil
	}
	rows, err := SubsampleRows(train.Rows, samples, s.seed)
	if err != nil {
		return nil, err
	}
	return subsample(train, rows), nil
}
