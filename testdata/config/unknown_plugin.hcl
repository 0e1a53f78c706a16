stage "requirements" "sla" {}

stage "standardize" "z" {
  plugin  = "acmee"
  input   = stage.requirements.sla
  columns = ["a"]
}

stage "evaluation" "train" {
  plugin = "acme"
  input  = stage.standardize.z
  epochs = 3
}

stage "standardize" "w" {
  plugin = ["acme"]
  input  = stage.requirements.sla
}

stage "legacy_choice" "old" {}
