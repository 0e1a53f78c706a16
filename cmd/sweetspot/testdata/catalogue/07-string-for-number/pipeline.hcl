dataset "d" {
  generator = "blobs"
}

stage "requirements" "sla" {
  dataset      = dataset.d
  min_accuracy = "high"
}
