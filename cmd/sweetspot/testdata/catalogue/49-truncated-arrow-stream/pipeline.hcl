dataset "d" {
  path   = "data.arrows"
}
