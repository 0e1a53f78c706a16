# Replay: the resize loop searches a table of results measured before,
# instead of training.
#
# results.csv holds the evaluation stage's own measurements of the linear
# baseline and of every MLP of width 2..256 (depth 1) and 2..128 (depth 2)
# on the spirals below: 383 real trainings (README.md says how they were
# made and how to make them again). Here nothing is trained: the replay
# stage looks each candidate up, so the whole search takes seconds.
#   go run ./cmd/sweetspot run examples/replay

variable "target_accuracy" {
  type        = number
  default     = 0.94
  description = "Least test accuracy the chosen model must reach."
}

# The dataset the table was measured on. Nothing trains on it here: the
# requirements stage profiles it (2 features, 2 classes) so that
# model_choice counts each candidate's parameters as the table's models had
# them.
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
    max_trials = 30
  }
}

stage "model_choice" "mlp" {
  input = stage.requirements.sla
  depth = [1]
  width = { min = 4, max = 256 }
  steps = 6

  # The hyperparameters the table was measured with.
  learning_rate = 0.01
  batch_size    = 32
  epochs        = 60
}

stage "replay" "table" {
  input = stage.model_choice.mlp
  path  = "results.csv" # relative to this file
}

stage "resize" "fit" {
  input        = stage.replay.table
  requirements = stage.requirements.sla
  strategy     = "smallest_meeting"
  loop_to      = stage.replay.table
  max_rounds   = 8
}
