dataset "digits" {
  generator = "spirals"
}

stage "requirements" "sla" {
  budget {
    max_wall = "15m"
  }
}

stage "model_choice" "mlp" {
  input = stage.requirements.sla
  depth = [1, 2]
}
