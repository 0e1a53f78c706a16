# The zoo: which of 260 measured digit classifiers, in five families, is
# the smallest that meets the target? Every candidate is a named row of
# zoo.csv; model_choice reads the rows (family "table", one family per
# value of the family column), replay looks each one up by name, and
# resize searches all five families at once among the rows alone.
#   go run ./cmd/sweetspot run examples/zoo -var target_accuracy=0.95

variable "target_accuracy" {
  type        = number
  default     = 0.95
  description = "Least test accuracy the chosen model must reach."
}

stage "requirements" "sla" {
  min_accuracy = var.target_accuracy

  budget {
    max_trials = 100
  }
}

stage "model_choice" "zoo" {
  input = stage.requirements.sla

  family "table" {
    path  = "zoo.csv"
    size  = "param_count"
    group = "family"
  }
}

stage "replay" "table" {
  input = stage.model_choice.zoo
  path  = "zoo.csv" # each model is looked up by its name
}

stage "resize" "pick" {
  input        = stage.replay.table
  requirements = stage.requirements.sla
  space        = stage.model_choice.zoo.space
  strategy     = "smallest_meeting"
  loop_to      = stage.replay.table
  max_rounds   = 30
}
