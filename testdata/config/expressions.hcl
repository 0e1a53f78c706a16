variable "widths" {
  type    = list(number)
  default = [4, 8]
}

stage "requirements" "sla" {
  min_accuracy = mins(0.9, 0.95)
  max_params   = var.widths[5]
  max_latency_ms = upper(0.5) + 1
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  family = format("%s-%d", "mlp")
  depth  = [for w in var.widths : w / 0 if w > "x"]
}
