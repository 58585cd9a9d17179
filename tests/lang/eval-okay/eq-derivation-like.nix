let a = { type = "derivation"; outPath = "/x"; other = 1; }; b = { type = "derivation"; outPath = "/x"; other = 2; }; c = { type = "derivation"; outPath = "/y"; }; in [ (a == b) (a == c) ]
