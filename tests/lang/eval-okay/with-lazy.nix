let f = x: with x; 1; in f (throw "unused")
