# Which MLP, trained for how many epochs, gives the lowest test loss for a
# training budget of 1.6e10 FLOPs (6 x params x samples seen)?
#
# scikit-learn's handwritten digits (1797 images of 8x8 pixels, 10 classes),
# shipped in testdata/ with their licence. The resize stage fits
# loss = E + A/N^alpha + B/D^beta to runs a quarter of the budget or less
# (widths x epochs), then trains the compute-optimal width and epochs and
# reports the loss it predicted there beside the loss measured.
#   go run ./cmd/sweetspot run examples/compute

sweetspot {
  allow_outside_paths = true
}

variable "budget_flops" {
  type    = number
  default = 1.6e10
}

variable "seed" {
  type    = number
  default = 1
}

dataset "digits" {
  path          = "../../testdata/datasets/sklearn/digits.csv.gz"
  test_fraction = 0.25
  seed          = 11
}

stage "requirements" "digits" {
  dataset = dataset.digits

  budget {
    max_trials = 40
  }
}

stage "model_choice" "mlp" {
  input  = stage.requirements.digits
  depth  = [1]
  width  = { min = 4, max = 128 }
  steps  = 5
  epochs = 40
}

# The epochs of each candidate are the resource the search varies: leave
# this stage's epochs attribute unset.
stage "evaluation" "train" {
  input       = stage.model_choice.mlp
  dataset     = dataset.digits
  parallelism = 2
  seed        = var.seed
}

stage "resize" "fit" {
  input        = stage.evaluation.train
  requirements = stage.requirements.digits
  loop_to      = stage.evaluation.train
  max_rounds   = 12
  strategy     = "compute_optimal"
  budget_flops = var.budget_flops
}
