# A replay search whose outcome the variables choose (TestExitCodes):
# results.csv, copied beside this file, is examples/replay's table of
# measurements, so nothing trains.

variable "target_accuracy" {
  type = number
}

variable "max_trials" {
  type = number
}

variable "max_rounds" {
  type    = number
  default = 8
}

dataset "spirals" {
  generator     = "spirals"
  rows          = 2000
  noise         = 0.05
  test_fraction = 0.25
  seed          = 7
}

stage "requirements" "sla" {
  dataset      = dataset.spirals
  min_accuracy = var.target_accuracy

  budget {
    max_trials = var.max_trials
  }
}

stage "model_choice" "mlp" {
  input         = stage.requirements.sla
  depth         = [1]
  width         = { min = 4, max = 256 }
  steps         = 6
  learning_rate = 0.01
  batch_size    = 32
  epochs        = 60
}

stage "replay" "table" {
  input = stage.model_choice.mlp
  path  = "results.csv"
}

stage "resize" "fit" {
  input        = stage.replay.table
  requirements = stage.requirements.sla
  strategy     = "smallest_meeting"
  loop_to      = stage.replay.table
  max_rounds   = var.max_rounds
}
