# Interpolating a path, or appending one to a string, copies it to the store; dtx evaluated
# in-process has no store yet.
let p = ./path-interpolation-store.nix; in [ (builtins.typeOf "${p}") (builtins.typeOf ("a" + p)) ]
