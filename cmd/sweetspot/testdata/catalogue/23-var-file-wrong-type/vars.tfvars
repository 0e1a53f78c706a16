rows = "ten"
