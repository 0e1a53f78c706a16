# The first design's sketch (docs/architecture.md) writes several arguments on one line with commas; HCL
# allows one argument in a single-line block, and no commas.
variable "target" { type = number, default = 0.95 }

stage "requirements" "sla" {
  min_accuracy = var.target
  budget { max_trials = 40, max_wall = "15m" }
}
