dataset "d" {
  generator {
    name = "blobs"
  }
}
