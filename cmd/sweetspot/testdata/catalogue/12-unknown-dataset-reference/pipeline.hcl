dataset "d" {
  generator = "blobs"
}

stage "requirements" "sla" {
  dataset = dataset.dd
}
