# Mistakes in required_plugins, each reported where it is.
sweetspot {
  required_plugins {
    good     = { source = "example.com/acme/sweetspot-plugin-good", version = ">= 1.2, < 2" }
    nosource = { version = ">= 1.0" }
    empty    = { source = "" }
    badver   = { source = "./plugins/badver", version = ">= one" }
    typo     = { source = "example.com/acme/typo", verison = "1.0" }
    wrongty  = { source = 42 }
    notobj   = "example.com/acme/notobj"
    dynamic  = { source = var.where }
    twice    = { source = "a", source = "b" }
  }
}

stage "requirements" "sla" {
  min_accuracy = 0.9
}
