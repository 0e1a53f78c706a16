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

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = stage.model_choice.mlp
}
