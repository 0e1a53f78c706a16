dataset "d" {
  generator     = "blobs"
  test_fraction = 1.5
}
