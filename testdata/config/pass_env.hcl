stage "requirements" "sla" {
  pass_env = ["AWS_PROFILE", "HF_TOKEN=abc", "SWEETSPOT_REATTACH", "AWS_PROFILE", "9LIVES"]
}

stage "requirements" "wrong_type" {
  pass_env = "AWS_PROFILE"
}

stage "requirements" "fine" {
  pass_env = ["AWS_PROFILE", "LC_ALL"]
}
