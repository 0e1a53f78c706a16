variable "rows" {
  type    = number
  default = 50
}

dataset "d" {
  generator = "blobs"
  rows      = var.rows
}
