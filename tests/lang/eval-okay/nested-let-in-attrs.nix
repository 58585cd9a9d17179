{ a = let x = 1; in x; b = let y = { z = 2; }; in y.z; c = rec { d = 1; e = let f = d; in f + 1; }; }
