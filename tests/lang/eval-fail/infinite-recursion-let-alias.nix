let inherit ({a = 1;}) a; b = a; c = d; d = c; in [b c]
