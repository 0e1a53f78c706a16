dataset "d" {
  path   = "data.parquet"
}
