let f = { __functor = self: a: b: a * b + self.c; c = 1; }; in f 3 4
