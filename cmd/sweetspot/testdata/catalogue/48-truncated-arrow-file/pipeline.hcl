dataset "d" {
  path   = "data.arrow"
}
