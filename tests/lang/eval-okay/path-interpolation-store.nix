let p = ./path-interpolation-store.nix; in [ (builtins.typeOf "${p}") (builtins.typeOf ("a" + p)) ]
