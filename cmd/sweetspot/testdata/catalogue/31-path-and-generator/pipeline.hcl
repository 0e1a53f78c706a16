dataset "d" {
  path      = "data.csv"
  generator = "blobs"
}
