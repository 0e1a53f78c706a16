stage "requirements" "sla" {}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = "mlp"
}

stage "evaluation" "train" {
  input  = stage.model_choice.mlp
  epochs = 3
}

stage "resize" "fit" {
  strategy = "knee"
}
