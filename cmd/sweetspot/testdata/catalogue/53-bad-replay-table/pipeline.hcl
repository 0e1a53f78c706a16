# A zoo replayed from a table with three mistakes: numbers with thousands
# separators, accuracy in percent, and a column the config maps that the
# table lacks. validate reports all three, each with its file and line.
stage "requirements" "sla" {
  min_accuracy = 0.9
}

stage "model_choice" "zoo" {
  input = stage.requirements.sla

  family "table" {
    path = "models.csv"
    size = "param_count"
  }
}

stage "replay" "zoo" {
  input   = stage.model_choice.zoo
  path    = "measured.csv"
  columns = { loss = "xent" }
}
