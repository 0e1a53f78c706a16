# Which MLP, trained on how many images, gives the lowest test loss for a
# training budget of 5e10 FLOPs (6 x params x images x epochs)?
#
# examples/compute-samples on Fashion-MNIST (Debian's dataset-fashion-mnist:
# make fashion-mnist): 30000 of the 60000 training images, a quarter of
# them held out for the test. Every run trains 10 epochs on a subsample of
# the 22500 training rows; the resize stage fits the law to runs a quarter
# of the budget or less, then trains the compute-optimal width and rows and
# reports the loss it predicted there beside the loss measured.
#   go run ./cmd/sweetspot run examples/compute-fashion

sweetspot {
  allow_outside_paths = true
}

variable "budget_flops" {
  type    = number
  default = 5e10
}

variable "seed" {
  type    = number
  default = 1
}

dataset "fashion" {
  path          = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
  target_path   = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"
  max_rows      = 30000
  sample        = "random"
  seed          = 11
  test_fraction = 0.25
}

stage "requirements" "fashion" {
  dataset = dataset.fashion

  budget {
    max_trials = 40
  }
}

stage "model_choice" "mlp" {
  input  = stage.requirements.fashion
  depth  = [1]
  width  = { min = 8, max = 24 }
  steps  = 3
  epochs = 10
}

# patience = 0: every run trains all its epochs (keeping its best
# weights), so D counts the data each run saw.
stage "evaluation" "train" {
  input       = stage.model_choice.mlp
  dataset     = dataset.fashion
  parallelism = 2
  seed        = var.seed
  patience    = 0
}

stage "resize" "fit" {
  input        = stage.evaluation.train
  requirements = stage.requirements.fashion
  loop_to      = stage.evaluation.train
  max_rounds   = 12
  strategy     = "compute_optimal"
  resource     = "samples"
  budget_flops = var.budget_flops
}
