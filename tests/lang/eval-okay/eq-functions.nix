let f = x: x; in [ (f == f) ([ f ] == [ f ]) (let l = [ f ]; in l == l) (let s = { a = f; }; in s == s) ]
