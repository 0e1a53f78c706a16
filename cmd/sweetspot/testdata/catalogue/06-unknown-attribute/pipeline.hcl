dataset "d" {
  generator = "blobs"
}

stage "requirements" "sla" {
  dataset     = dataset.d
  min_acuracy = 0.9
}
