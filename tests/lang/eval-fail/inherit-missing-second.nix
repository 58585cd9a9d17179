let s = {}; in {
  x = 1;
  inherit (s) b; inherit (s) a;
}.a
