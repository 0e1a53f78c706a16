# The exec stage: a size search like the quickstart's, but each candidate is
# trained by an external program, here train.py, a small MLP in pure Python
# (standard library only). Any trainer works the same way: it reads the
# candidate as JSON on stdin and the dataset as files, and prints its metrics
# as JSON lines. See README.md.
#
#   go run ./cmd/sweetspot run examples/exec

variable "target_accuracy" {
  type        = number
  default     = 0.85
  description = "Least test accuracy the chosen model must reach."
}

variable "fail_width" {
  type        = string
  default     = ""
  description = "A width at which train.py crashes on purpose (try -var fail_width=8): the trial fails with its traceback, the run goes on."
}

dataset "blobs" {
  generator     = "blobs"
  rows          = 600
  classes       = 3
  features      = 4
  test_fraction = 0.25
  seed          = 7
}

stage "requirements" "sla" {
  dataset      = dataset.blobs
  min_accuracy = var.target_accuracy
  max_params   = 5000

  budget {
    max_trials = 14
    max_wall   = "5m"
  }
}

stage "model_choice" "mlp" {
  input         = stage.requirements.sla
  depth         = [1]
  width         = { min = 2, max = 32 }
  steps         = 5
  learning_rate = 0.03
  batch_size    = 16
  epochs        = 30
}

stage "exec" "train" {
  input          = stage.model_choice.mlp
  dataset        = dataset.blobs
  command        = ["python3", "train.py"]
  dataset_format = "csv"
  env            = { TRAIN_FAIL_WIDTH = var.fail_width }
  trial_timeout  = "2m"
  parallelism    = 2
}

stage "resize" "fit" {
  input        = stage.exec.train
  requirements = stage.requirements.sla
  strategy     = "smallest_meeting"
  loop_to      = stage.exec.train
  max_rounds   = 4
}
