dataset "d" {
  generator = "spiral"
}
