let a = {x = b;}.x; b = a; in b
