variable "target" {
  default = 0.9
}

variable "target" {
  default = 0.95
}

locals {
  seed = 7
}

locals {
  seed = 8
}

dataset "digits" {
  generator = "spirals"
  target    = "label"
}

dataset "digits" {
  generator = "moons"
  target    = "label"
}

stage "requirements" "sla" {
  min_accuracy = var.target
}

stage "requirements" "sla" {
  min_accuracy = 0.5
}
