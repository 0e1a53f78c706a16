# Measures the zoo's family mlp1 (one hidden layer) on scikit-learn's
# handwritten digits.
# Run from the repository root (see examples/zoo/README.md):
#   sweetspot run examples/zoo/measure/mlp1 --quiet --no-cache --parallel 2
#
# Every pipeline under examples/zoo/measure shares the dataset split, the
# training settings and the seeds; only the depth, the width ladder and the
# post-training compression differ.

# The data live in the repository's testdata/, outside this directory.
sweetspot {
  allow_outside_paths = true
}

dataset "digits" {
  path          = "../../../../testdata/datasets/sklearn/digits.csv.gz"
  test_fraction = 0.3
  seed          = 11
}

# No targets: the requirements stage only profiles the dataset (64
# features, 10 classes) so that model_choice counts parameters exactly.
stage "requirements" "profile" {
  dataset = dataset.digits
}

stage "model_choice" "ladder" {
  input            = stage.requirements.profile
  depth            = [1]
  width            = { min = 2, max = 1024 }
  steps            = 56
  include_baseline = false
  learning_rate    = 0.001
  batch_size       = 32
  epochs           = 200
}

# A single learning rate and preprocessing: nothing to tune, so every model
# keeps learning_rate 0.001 and standardized inputs; the stage only expands
# the candidates by the compressions listed.
stage "optimization" "compress" {
  input         = stage.model_choice.ladder
  dataset       = dataset.digits
  learning_rate = [0.001]
  preprocess    = ["standardize"]
  quantize      = ["none"]
  prune         = [0]
}

stage "evaluation" "measure" {
  input            = stage.optimization.compress
  dataset          = dataset.digits
  seed             = 1
  patience         = 10
  holdout_fraction = 0.1
  latency_samples  = 200
  throughput_batch = 256
  parallelism      = 1
}
