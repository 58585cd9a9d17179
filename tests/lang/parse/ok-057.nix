let b = 1; in {a, b}: a
