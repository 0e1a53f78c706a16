dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "requirements" "sla" {}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla.requirement
  family = "mlp"
}

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.digits.features
  epochs  = 3
}

stage "resize" "fit" {
  input = stage.evaluation.train
}

stage "standardize" "z" {
  input = stage.resize.fit.proposal
}

stage "standardize" "y" {
  input = var.x
}

stage "standardize" "x" {
  input = stage.resize
}
