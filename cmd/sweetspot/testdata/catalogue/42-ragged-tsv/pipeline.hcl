dataset "d" {
  path   = "data.tsv"
}
