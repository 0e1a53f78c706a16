dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "requirements" "sla" {}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = "mlp"
}

stage "evaluation" "train" {
  input      = stage.model_choice.mlp
  dataset    = dataset.digits
  epochs     = 3
  loop_to    = stage.model_choice.mlp
  max_rounds = 3
}

stage "resize" "fit" {
  input      = stage.evaluation.train
  loop_to    = stage.standardize.after
  max_rounds = 0
}

stage "resize" "again" {
  input   = stage.evaluation.train
  loop_to = stage.evaluation.train
}

stage "resize" "bounded" {
  input      = stage.evaluation.train
  max_rounds = 2
}

stage "resize" "odd" {
  input      = stage.evaluation.train
  loop_to    = dataset.digits
  max_rounds = 1.5
}

stage "standardize" "after" {
  input = stage.resize.fit
}
