let f = x: x; or = 5; s = { or = 1; a.or = 2; }; in
[ (f or) s.or s.a.or (s.or or 3) (s.b or s.or) ({ }.x or f or) ]
