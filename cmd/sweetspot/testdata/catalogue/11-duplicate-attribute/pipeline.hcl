dataset "d" {
  generator = "blobs"
  rows      = 10
  rows      = 20
}
