# Each file reports its first syntax error; the stages are not decoded at
# all, since the parser could not see the rest of a broken body.
stage "resize" "fit" {
  strategy = = "knee"
}
