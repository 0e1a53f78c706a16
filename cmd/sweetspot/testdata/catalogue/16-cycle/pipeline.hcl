dataset "d" {
  generator = "blobs"
}

stage "optimization" "tune" {
  input   = stage.evaluation.train
  dataset = dataset.d
}

stage "evaluation" "train" {
  input   = stage.optimization.tune
  dataset = dataset.d
}
