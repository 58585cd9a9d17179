[ (builtins.toJSON { a = [ 1 2.5 "x" null true ]; b = { c = "q\"\n"; }; }) (builtins.fromJSON "{\"x\": [1, 2.5, \"s\", null, false], \"y\": {}}") (builtins.toJSON "\u00e9\t") (builtins.toJSON 0.1) ]
