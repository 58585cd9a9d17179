let lib = rec { inc = x: x + 1; twice = f: x: f (f x); add2 = twice inc; }; in lib.add2 5
