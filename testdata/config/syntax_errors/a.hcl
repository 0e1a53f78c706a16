stage "model_choice" "mlp" {
  family = "mlp"
  depth  = [1, 2
}

stage "evaluation" "train" {
  epochs = 30
}
