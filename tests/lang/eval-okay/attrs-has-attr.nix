let s = { a = { b = 1; }; "c d" = 2; }; in [ (s ? a) (s ? a.b) (s ? a.c) (s ? x.y) (s ? "c d") (s ? ${"a"}) (1 ? a) ]
