dataset "d" {
  generator = "blobs
}
