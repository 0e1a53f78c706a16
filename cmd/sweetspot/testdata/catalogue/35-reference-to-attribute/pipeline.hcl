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
  steps = stage.requirements.sla.min_accuracy
}
