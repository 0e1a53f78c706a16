# This file is maintained by "sweetspot init": it pins each plugin the
# pipeline requires to a version, and to the sha256 of its executable on
# each platform. sweetspot refuses to start a plugin whose executable does
# not match. Commit it with the pipeline; re-lock with "sweetspot init --upgrade".

plugin "prune" {
  source  = "example.com/acme/sweetspot-plugin-prune"
  version = "v1.2.0"
  hashes = {
    linux_amd64 = "sha256:0101010101010101010101010101010101010101010101010101010101010101"
  }
}

plugin "standardize" {
  source      = "../plugins/standardize"
  version     = "0.1.0"
  constraints = ">= 0.1, < 1"
  hashes = {
    darwin_arm64 = "sha256:0101010101010101010101010101010101010101010101010101010101010101"
    linux_amd64  = "sha256:abababababababababababababababababababababababababababababababab"
  }
}
