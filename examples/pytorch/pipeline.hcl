# The smallest convolutional net that reaches a target accuracy on
# Fashion-MNIST, trained with PyTorch on the CPU by train.py through the
# exec stage. One knob, channels, sizes the net; a median pruner stops
# trials whose validation accuracy per epoch trails the finished ones'. Each trial
# writes its model as ONNX (model.onnx in its working directory), which
# the stage keeps in its models port: `sweetspot model export RUN
# CANDIDATE --format onnx` writes it out again.
#
#   make python-torch      # Debian's python3-torch and dataset-fashion-mnist
#   go run ./cmd/sweetspot run examples/pytorch

variable "target_accuracy" {
  type        = number
  default     = 0.8
  description = "Least accuracy on the held-out images the chosen net must reach."
}

variable "train_rows" {
  type        = number
  default     = 3000
  description = "Training images of the seeded subsample (of 60,000)."
}

stage "requirements" "sla" {
  min_accuracy = var.target_accuracy

  budget {
    max_trials = 10
    max_wall   = "5m"
  }
}

stage "model_choice" "convnet" {
  input         = stage.requirements.sla
  learning_rate = 0.005
  batch_size    = 64
  epochs        = 4

  family "axis" {
    name = "convnet"

    axis "c" {
      min     = 1
      max     = 16
      scale   = "log"
      integer = true
    }

    knobs = { channels = c }
    steps = 3
  }
}

stage "exec" "train" {
  input         = stage.model_choice.convnet
  command       = ["/usr/bin/python3", "train.py"]
  env           = { TRAIN_ROWS = var.train_rows, EVAL_ROWS = 1000 }
  trial_timeout = "3m"
  artifact      = "model.onnx"
  parallelism   = 2
  threads       = 1

  pruner "median" {
    metric        = "val_accuracy"
    warmup_trials = 2
    warmup_steps  = 2
    grace         = "30s"
  }
}

stage "resize" "fit" {
  input        = stage.exec.train
  requirements = stage.requirements.sla
  space        = stage.model_choice.convnet.space
  loop_to      = stage.exec.train
  max_rounds   = 6
}
