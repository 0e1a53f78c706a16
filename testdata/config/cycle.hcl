# evaluation -> resize -> standardize -> evaluation, through ports only: to
# train the proposals again, resize must declare loop_to instead.
dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "evaluation" "train" {
  input   = stage.standardize.proposals
  dataset = dataset.digits
  epochs  = 3
}

stage "resize" "fit" {
  input = stage.evaluation.train
}

stage "standardize" "proposals" {
  input = stage.resize.fit.proposals
}

stage "standardize" "self" {
  input = stage.standardize.self
}
