stage "requirments" "sla" {
  min_accuracy = 0.9
}

stage "frobnicate" "x" {
  input = stage.requirments.sla
}

stage "dataset" "digits" {
  generator = "spirals"
}
