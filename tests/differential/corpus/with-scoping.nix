let x = "lexical"; in [
  (with { x = "with"; y = "y-with"; }; [ x y ])
  (with { y = 1; }; with { y = 2; }; y)
  (with { a = 1; }; let a = 2; in a)
  (with { a = 1; }; rec { b = a; a = 3; c = a; })
  ({ z ? "default" }: with { z = "with"; }; z) { }
]
