variable "base" {
  type    = number
  default = 8
}

locals {
  min_layers = 1
}

stage "model_zoo" "zoo" {
  family "table" {
    path = "zoo.csv"
  }
  family "axis" {
    name = "convnet"
    size "s" {
      min     = 1
      max     = 32
      scale   = "log"
      integer = true
    }
    knobs  = { channels = var.base * s, layers = local.min_layers + floor(log(s, 2)) }
    params = 9 * channels * channels * layers
  }
}
