dataset "d" {
  generator = "blobs"
}

stages "requirements" "sla" {
  dataset = dataset.d
}
