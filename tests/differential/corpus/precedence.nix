let f = x: x + 1; s = { a = { b = 1; }; }; in
[ (f 1 + 2) (- f 1) (2 * 3 + 4 * 5) (10 - 2 - 3) (2 + 3 * 4 - 6 / 2) (s ? a.b && true)
  (!false || false) (false && true || true) (true -> false -> true) (1 < 2 == 3 > 2)
  ([ 1 ] ++ [ 2 ] ++ [ ]) ({ a = 1; } // { b = 2; } // { a = 3; }) (s.a.b or 0 + 1)
  (f (-1)) ("a" + "b" + "c") (1 + 2 == 3 && 4 < 5 || false) ]
