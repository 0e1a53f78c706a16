dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "requirements" "sla" {
  min_acuracy = 0.9

  budget {
    max_trials = 40
    max_wal    = "15m"
  }
}

stage "model_choice" "mlp" {
  inptu  = stage.requirements.sla
  family = "mlp"
}

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.digits
  epoch   = 30
  colour  = "blue"
}
