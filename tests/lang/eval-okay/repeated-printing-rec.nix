let s = rec { a = s; b = 1; }; in s.a
