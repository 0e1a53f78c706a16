dataset "d" {
  path   = "data.csv.gz"
}
