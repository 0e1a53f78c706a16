row = 10
