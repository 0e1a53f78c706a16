stage "requirements" "sla" {
  timeout     = "thirty seconds"
  description = ["not", "a", "string"]
}

stage "requirements" "quick" {
  timeout = "-5s"
}

stage "requirements" "9lives" {}

stage "requirements" "fine" {
  timeout = "1m"
}

stage "requirements" "queued" {
  task_queue = "gpu box"
}
