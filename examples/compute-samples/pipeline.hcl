# Which MLP, trained on how many rows, gives the lowest test loss for a
# training budget of 3.2e9 FLOPs (6 x params x rows x epochs)?
#
# The same question as examples/compute, with fresh data as the resource
# instead of epochs: every run trains 40 epochs, and the search varies the
# training rows it draws (a subsample of the training split; the test rows
# are never drawn). The resize stage fits loss = E + A/N^alpha + B/D^beta,
# D = rows x 40, to runs a quarter of the budget or less (widths x rows),
# then trains the compute-optimal width and rows and reports the loss it
# predicted there beside the loss measured.
#   go run ./cmd/sweetspot run examples/compute-samples

sweetspot {
  allow_outside_paths = true
}

variable "budget_flops" {
  type    = number
  default = 3.2e9
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
  width  = { min = 4, max = 32 }
  steps  = 4
  epochs = 40
}

# patience = 0: every run trains all 40 epochs (and keeps its best
# weights), so D counts the data each run saw; early stopping would end
# the small subsamples' runs early.
stage "evaluation" "train" {
  input       = stage.model_choice.mlp
  dataset     = dataset.digits
  parallelism = 2
  seed        = var.seed
  patience    = 0
}

stage "resize" "fit" {
  input        = stage.evaluation.train
  requirements = stage.requirements.digits
  loop_to      = stage.evaluation.train
  max_rounds   = 12
  strategy     = "compute_optimal"
  resource     = "samples"
  budget_flops = var.budget_flops
}
