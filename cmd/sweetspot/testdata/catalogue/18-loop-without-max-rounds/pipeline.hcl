dataset "d" {
  generator = "blobs"
  rows      = 50
}

stage "requirements" "sla" {
  dataset      = dataset.d
  min_accuracy = 0.9
}

stage "model_choice" "mlp" {
  input = stage.requirements.sla
}

stage "optimization" "tune" {
  input   = stage.model_choice.mlp
  dataset = dataset.d
}

stage "evaluation" "train" {
  input   = stage.optimization.tune
  dataset = dataset.d
}

stage "resize" "fit" {
  input        = stage.evaluation.train
  requirements = stage.requirements.sla
  loop_to      = stage.evaluation.train
}
