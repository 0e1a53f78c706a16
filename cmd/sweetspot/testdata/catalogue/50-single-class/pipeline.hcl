dataset "d" {
  path   = "data.csv"
  task = "classification"
}
