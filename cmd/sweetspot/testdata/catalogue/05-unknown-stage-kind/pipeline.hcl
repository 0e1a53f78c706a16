dataset "d" {
  generator = "blobs"
}

stage "requirement" "sla" {
  dataset = dataset.d
}
