package space

import "github.com/sweetspot-ml/sweetspot/sdk/tables"

// Apply is c trained with the setting: the params that name a training
// column of the candidates table (learning_rate, batch_size, epochs,
// preprocess) set it, and the others are returned for the caller, which
// passes them to its trainer as knobs or has refused them already.
func (s Setting) Apply(c tables.Candidate) (tables.Candidate, Setting) {
	var rest Setting
	for _, v := range s {
		switch v.Name {
		case tables.ColLearningRate:
			c.LearningRate = v.V.(float64)
		case tables.ColBatchSize:
			c.BatchSize = int32(v.V.(float64))
		case tables.ColEpochs:
			c.Epochs = int32(v.V.(float64))
		case tables.ColPreprocess:
			c.Preprocess = v.V.(string)
		default:
			rest = append(rest, v)
		}
	}
	return c, rest
}
