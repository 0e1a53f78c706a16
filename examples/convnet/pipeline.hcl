# How small can a convolutional digit classifier be? The size knob is not a
# width: one size variable s scales a small convnet's channels and depth
# together (compound scaling), and the exec stage runs train.py (numpy)
# once per model with its knobs by name.
#   go run ./cmd/sweetspot run examples/convnet
# Needs /usr/bin/python3 with numpy (Debian: apt-get install python3-numpy;
# make python-numpy does it).

sweetspot {
  allow_outside_paths = true # the digits live in the repository's testdata/
}

variable "target_accuracy" {
  type        = number
  default     = 0.95
  description = "Least test accuracy the chosen model must reach."
}

dataset "digits" {
  path          = "../../testdata/datasets/sklearn/digits.csv.gz"
  test_fraction = 0.25
  seed          = 11
}

stage "requirements" "sla" {
  dataset      = dataset.digits
  min_accuracy = var.target_accuracy

  budget {
    max_trials = 12
    max_wall   = "10m"
  }
}

stage "model_choice" "convnet" {
  input         = stage.requirements.sla
  learning_rate = 0.01
  batch_size    = 32
  epochs        = 10

  family "axis" {
    name = "convnet"

    axis "s" {
      min     = 1
      max     = 10
      scale   = "log"
      integer = true
    }

    # 4 channels per unit of s, one more conv block per doubling of s.
    knobs = { channels = 4 * s, layers = 1 + floor(log(s, 2)) }
    # The exact count (train.py reports the same): the first block
    # 1 -> C (9C + C), each later block C -> C (9C^2 + C), the dense head
    # C -> 10 after global average pooling.
    params = 10 * channels + (layers - 1) * (9 * channels * channels + channels) + 10 * channels + 10
    steps  = 3
  }
}

stage "exec" "train" {
  input          = stage.model_choice.convnet
  dataset        = dataset.digits
  command        = ["/usr/bin/python3", "train.py"]
  dataset_format = "csv"
  trial_timeout  = "3m"
  parallelism    = 2
}

stage "resize" "fit" {
  input        = stage.exec.train
  requirements = stage.requirements.sla
  space        = stage.model_choice.convnet.space
  loop_to      = stage.exec.train
  max_rounds   = 8
}
