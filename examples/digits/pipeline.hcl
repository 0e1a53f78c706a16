# How small can a digit classifier be and still reach 96.5% accuracy?
#
# scikit-learn's handwritten digits (1797 images of 8x8 pixels, 10 classes),
# shipped in testdata/ with their licence.
#   go run ./cmd/sweetspot run examples/digits

# The data live in the repository's testdata/, outside this example's
# directory; paths outside the pipeline's directory must be allowed.
sweetspot {
  allow_outside_paths = true
}

variable "target_accuracy" {
  type    = number
  default = 0.965
}

dataset "digits" {
  path          = "../../testdata/datasets/sklearn/digits.csv.gz"
  test_fraction = 0.25
  seed          = 11
}

stage "requirements" "sla" {
  dataset        = dataset.digits
  min_accuracy   = var.target_accuracy
  max_latency_ms = 1
  max_params     = 100000

  budget {
    max_trials = 30
    max_wall   = "5m"
  }
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  depth  = [1]
  width  = { min = 4, max = 256 }
  steps  = 5
  epochs = 40
}

stage "optimization" "tune" {
  input         = stage.model_choice.mlp
  dataset       = dataset.digits
  learning_rate = [0.001, 0.003, 0.01]
  preprocess    = ["standardize", "minmax"]
  quantize      = ["none", "int8"]
  parallelism   = 2
}

stage "evaluation" "train" {
  input       = stage.optimization.tune
  dataset     = dataset.digits
  parallelism = 2
}

stage "resize" "fit" {
  input        = stage.evaluation.train
  requirements = stage.requirements.sla
  loop_to      = stage.evaluation.train
  max_rounds   = 12
}
