[ ({ or = 1; }.or) (let or = 2; f = x: x; in f or) (let s = { or = 3; }; in s.or) ({ or = 4; }.or or 5) ]
