locals {
  upstream = stage.requirements.sla
}

stage "requirements" "sla" {
  dataset = dataset.digits
  budget {
    max_trials = length(stage.model_choice.mlp)
  }
}

dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = dataset.digits
}

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.digits
  epochs  = 3
  plugin  = stage.model_choice.mlp
}
