# A synthetic dataset, scaled by a third-party plugin (examples/plugins/standardize),
# profiled against a service-level target, then laid out as a first ladder of MLP sizes.

dataset "blobs" {
  generator = "blobs"
  rows      = 2000
  classes   = 3
  features  = 4
  seed      = 7
}

stage "standardize" "scale" {
  plugin = "standardize"
  input  = dataset.blobs
}

stage "requirements" "sla" {
  dataset        = stage.standardize.scale
  min_accuracy   = 0.85
  max_latency_ms = 0.5
  max_params     = 50000

  budget {
    max_trials = 20
    max_wall   = "10m"
  }
}

stage "model_choice" "mlp" {
  input  = stage.requirements.sla
  depth  = [1, 2]
  width  = { min = 4, max = 256 }
  steps  = 5
}
