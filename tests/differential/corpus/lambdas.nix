let
  f = { a, b ? a * 2, c ? b + 1, ... }@args: [ a b c (builtins.attrNames args) ];
  g = x@{ ... }: x;
  h = a: { b ? a }: b;
in [ (f { a = 1; }) (f { a = 1; c = 0; z = 9; }) (g { }) (h 3 { }) (h 3 { b = 4; }) ]
