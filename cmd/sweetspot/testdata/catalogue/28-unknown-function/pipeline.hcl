dataset "d" {
  generator = uper("blobs")
}
