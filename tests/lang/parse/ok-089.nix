let c = 1; a = 2; in a
