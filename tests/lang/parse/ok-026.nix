with {};assert a; b
