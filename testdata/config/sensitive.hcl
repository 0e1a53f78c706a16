# A sensitive value must not be printed in a diagnostic, even through a
# local; a plain one is ("with var.plain as ...").
variable "token" {
  type      = string
  default   = "s3cret"
  sensitive = true
}

variable "plain" {
  default = "visible"
}

locals {
  derived = "${var.token}-x"
}

stage "requirements" "a" {
  min_accuracy = var.token
}

stage "requirements" "b" {
  min_accuracy = local.derived
}

stage "requirements" "c" {
  min_accuracy = var.plain
}
