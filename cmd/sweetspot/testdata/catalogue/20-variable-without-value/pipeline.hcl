variable "rows" {
  type = number
}

dataset "d" {
  generator = "blobs"
  rows      = var.rows
}
