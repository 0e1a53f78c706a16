dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "requirements" "sla" {
  min_accuracy = var.target
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = local.family
}
