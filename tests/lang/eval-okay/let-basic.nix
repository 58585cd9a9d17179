let x = 1; y = x + 1; z = y * 10; in [ x y z ]
