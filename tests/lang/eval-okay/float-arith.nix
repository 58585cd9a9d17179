[ (0.5 + 0.25) (10.0 / 4) (2.0 * 2.0) (1.0 - 1) (-1.5) (- 2.5) (1.5 < 2) (builtins.floor 2.7) (builtins.ceil 2.1) (builtins.floor (-2.5)) (builtins.ceil (-2.5)) ]
