variable "target" {
  default = 0.9
}

locals {
  family = "mlp"
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = "cnn"
}

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.digits
  epochs  = var.epoch
}
