let a = throw "never"; b = abort "never"; l = [ (throw "x") 1 ]; s = { x = throw "y"; z = 2; }; in [ (builtins.length l) s.z (builtins.elemAt l 1) ((x: 1) (throw "arg")) ]
