dataset "d" {
  generator = "blobs"
}

stage "requirements" "sla" {
  dataset = dataset.d
  budget = {
    max_trials = 3
  }
}
