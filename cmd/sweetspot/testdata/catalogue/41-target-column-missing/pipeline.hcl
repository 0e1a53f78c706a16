dataset "d" {
  path   = "data.csv"
  target = "label"
}
