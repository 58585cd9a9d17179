[ (1 + 1.0) (2 * 1.5) (3 - 0.5) (1.0 / 4) (builtins.add 1 2.5) (builtins.mul 2 3) (builtins.sub 1.5 1) (1 + 2) ]
