locals {
  a = local.c + 1
  b = local.a * 2
}

locals {
  c    = local.b - 1
  self = [local.self]
  ok   = 1
  uses = local.a + local.ok
}

stage "requirements" "sla" {
  min_accuracy = local.uses
}
