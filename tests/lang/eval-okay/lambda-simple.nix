let id = x: x; k = x: y: x; in [ (id 1) (k 2 3) ((x: x * x) 7) ]
