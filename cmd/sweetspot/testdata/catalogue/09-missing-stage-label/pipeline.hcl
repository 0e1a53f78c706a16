stage "requirements" {
  min_accuracy = 0.9
}
