# Three unrelated mistakes, all reported in one pass.
dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "requirements" "sla" {
  min_accuracy = "high"
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = "mlp"
  wdith  = { min = 4, max = 64 }
}

stage "evaluation" "train" {
  input   = stage.model_chioce.mlp
  dataset = dataset.digits
  epochs  = 3
}
