variable "rows" {
  type    = number
  default = "many"
}

dataset "d" {
  generator = "blobs"
  rows      = var.rows
}
