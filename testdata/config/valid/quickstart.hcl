# The first design's quickstart pipeline (docs/architecture.md, "Where the
# code departs from the first design"), in valid HCL (a single-line block
# holds one argument at most, so the sketch's `{ a = 1, b = 2 }` blocks
# are written out).
sweetspot {
  required_version = ">= 0.1.0"
  required_plugins {
    prune = { source = "example.com/acme/prune", version = ">= 1.0" }
  }
  telemetry {
    otlp_endpoint = "localhost:4317"
    protocol      = "grpc"
  }
}

variable "target" {
  type        = number
  default     = 0.95
  description = "Accuracy the model must reach."
}

variable "widths" {
  type    = object({ min = number, max = optional(number, 2048) })
  default = { min = 4 }
}

variable "epochs" {
  type = number
}

variable "token" {
  type      = string
  default   = "s3cret"
  sensitive = true
}

# Locals may come in any order and several blocks.
locals {
  test_fraction = local.base_fraction * 2
}

locals {
  seed          = 7
  base_fraction = 0.1
  depths        = [for d in range(1, 3) : d]
}

stage "resize" "fit" {
  input      = stage.evaluation.train
  strategy   = upper("knee")
  loop_to    = stage.evaluation.train
  max_rounds = 6
}

dataset "digits" {
  path          = "testdata/datasets/digits.csv.gz"
  target        = "label"
  test_fraction = local.test_fraction
  seed          = local.seed
}

stage "requirements" "sla" {
  min_accuracy   = var.target
  max_latency_ms = 0.5
  max_params     = max(1000, 200000)
  timeout        = "30s"
  description    = "What the model must reach."

  budget {
    max_trials = 40
    max_wall   = "15m"
  }
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla.requirements
  family = "mlp"
  depth  = local.depths
  width  = var.widths
}

stage "evaluation" "train" {
  input   = stage.model_choice.mlp
  dataset = dataset.digits.data
  epochs  = var.epochs

  metric {
    name = "accuracy"
  }
  metric {
    name   = "latency_p95_ms"
    weight = 0.5
  }
}
