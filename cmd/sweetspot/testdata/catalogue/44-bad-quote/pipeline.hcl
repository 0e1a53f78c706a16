dataset "d" {
  path   = "data.csv"
}
