stgae "model_choice" "mlp" {
  family = "mlp"
}

parallelism = 4

output "best" {
  value = 1
}
