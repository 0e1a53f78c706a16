taget = 0.9
widths = "many"
