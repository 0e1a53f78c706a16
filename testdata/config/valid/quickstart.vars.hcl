epochs = 10
target = 0.9
