dataset "d" {
  generator = = "blobs"
}
