dataset "d" {
  generator = "blobs"
  rows      = var.row
}
