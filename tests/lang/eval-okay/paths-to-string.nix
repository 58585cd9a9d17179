let p = ./lib; in [ (builtins.typeOf p) (baseNameOf p) (builtins.isPath p) (builtins.isPath "${"x"}") (toString p == "${toString p}") ]
