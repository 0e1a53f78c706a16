variable "epochs" {
  type    = string
  default = "thirty"
}

dataset "digits" {
  generator     = "spirals"
  target        = "label"
  test_fraction = "a fifth"
}

stage "requirements" "sla" {
  max_params = [200000]

  budget {
    max_trials = true
  }
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = "mlp"
  depth  = ["one", 2]
  width  = { min = 4 }
}

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.digits
  epochs  = var.epochs
  timeout = 30
}
