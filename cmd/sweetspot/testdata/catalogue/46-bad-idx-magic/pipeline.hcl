dataset "d" {
  path   = "images-idx3-ubyte"
  target_path = "labels-idx1-ubyte"
}
