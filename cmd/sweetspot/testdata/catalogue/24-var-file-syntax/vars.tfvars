rows = [10
