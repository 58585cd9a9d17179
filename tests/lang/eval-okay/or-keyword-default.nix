let s = { a = 1; }; in [ (s.b or s.a) (s.a or 2) ({ }.x.y or ({ }.z or 3)) ]
