dataset "d" {
  generator = "blobs"
