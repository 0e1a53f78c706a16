variable "base" {
  default = 8
}

dataset "digits" {
  generator = "spirals"
  target    = "label"
}

stage "model_zoo" "labels" {
  family {
    path = "zoo.csv"
  }
  family "axis" "extra" {
    name = "convnet"
  }
  family "axis" {
    size {
      min = 1
      max = 4
    }
  }
}

stage "model_zoo" "refs" {
  family "axis" {
    knobs  = { channels = var.base * s, rows = length(dataset.digits) }
    params = var.nope * channels + stage.model_zoo.labels
  }
}
