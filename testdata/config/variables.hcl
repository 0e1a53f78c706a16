variable "target" {
  type = number
}

variable "widths" {
  type    = list(number)
  default = ["four", 8]
}

variable "depth" {
  type = number
}

variable "family" {
  type    = string
  default = "mlp"
}

variable "bad_type" {
  type = lisst(number)
}

variable "flags" {
  type    = map(bool)
  default = {}
}

variable "3d" {
  default = true
}

stage "requirements" "sla" {
  min_accuracy = var.target
}
