dataset "d" {
  path   = "nothere.csv"
}
