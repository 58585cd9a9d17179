let a = [ 1 ]; s = { inherit a; b = a; }; r = rec { self = r; v = 1; }; in [ s a a r.self.v r ]
