locals {
  a = local.b
  b = local.a
}

dataset "d" {
  generator = "blobs"
  rows      = local.a
}
