let x = { a = 1; }; l = [ 1 ]; in [ x x { b = x; c = x; } l l ]
