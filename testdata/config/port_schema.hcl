dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "requirements" "sla" {}

stage "legacy_choice" "old" {
  plugin = "acme"
  family = "mlp"
}

# legacy_choice emits depth as int64 and no width; evaluation wants both as
# int32.
stage "evaluation" "train" {
  input   = stage.legacy_choice.old
  dataset = dataset.digits
  epochs  = 3
}

# The proposals are a candidates table; model_choice reads requirements.
stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = "mlp"
}

stage "evaluation" "second" {
  input   = stage.model_choice.mlp
  dataset = dataset.digits
  epochs  = 3
}

stage "resize" "fit" {
  input      = stage.evaluation.second
  loop_to    = stage.model_choice.mlp
  max_rounds = 3
}

# results lack min_accuracy and max_params.
stage "model_choice" "from_results" {
  input  = stage.evaluation.second.results
  family = "mlp"
}
