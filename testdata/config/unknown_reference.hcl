variable "target" {
  type    = number
  default = 0.9
}

locals {
  seed = 7
}

dataset "digits" {
  generator = "spirals"
  target    = "label"
  seed      = local.sed
}

stage "requirements" "sla" {
  min_accuracy = var.tagret
  max_params   = each.value
}

stage "model_choice" "mlp" {
  input  = stage.requirements.slaa
  family = "mlp"
}

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.digts
  epochs  = 3
}

stage "resize" "fit" {
  input = stage.evaluation.train
}

stage "standardize" "z" {
  input = stage.dataset.digits
}
