# Quickstart: how big must an MLP be to separate two interleaved spirals?
#
# Runs on a generated dataset, so it needs nothing but this repository:
#   go run ./cmd/sweetspot run examples/quickstart

variable "target_accuracy" {
  type        = number
  default     = 0.95
  description = "Least test accuracy the chosen model must reach."
}

locals {
  seed = 7
}

dataset "spirals" {
  generator     = "spirals"
  rows          = 2000
  noise         = 0.05
  test_fraction = 0.25
  seed          = local.seed
}

stage "requirements" "sla" {
  dataset        = dataset.spirals
  min_accuracy   = var.target_accuracy
  max_latency_ms = 0.5
  max_params     = 200000

  budget {
    max_trials = 24
    max_wall   = "2m"
  }
}

stage "model_choice" "mlp" {
  input = stage.requirements.sla
  depth = [1, 2]
  width = { min = 4, max = 512 }
  steps = 6
}

stage "optimization" "tune" {
  input         = stage.model_choice.mlp
  dataset       = dataset.spirals
  learning_rate = [0.003, 0.01, 0.03]
  preprocess    = ["standardize"]
  parallelism   = 2
}

stage "evaluation" "train" {
  input       = stage.optimization.tune
  dataset     = dataset.spirals
  epochs      = 60
  parallelism = 2
}

stage "resize" "fit" {
  input        = stage.evaluation.train
  requirements = stage.requirements.sla
  strategy     = "smallest_meeting"
  loop_to      = stage.evaluation.train
  max_rounds   = 12
}
