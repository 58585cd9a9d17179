[ ("é" < "z") ("ä" == "ä") (builtins.stringLength "é") ]
