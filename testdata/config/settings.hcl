sweetspot {
  required_version = var.version
  telemetry {
    otlp_endpoint = "localhost:4317"
    protocol      = "grcp"
  }
  telemetry {
    protocol = "grpc"
  }
  required_plugins {
    prune = { source = "example.com/acme/prune" }
  }
  backend = "s3"
}

sweetspot {
}
