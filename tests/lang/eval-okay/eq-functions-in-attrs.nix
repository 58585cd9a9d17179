# Nix compares the values of a variable bound in two set literals by identity, so a function in
# both is equal (as in lists); dtx says false.
let f = x: x; in [ ({ a = f; } == { a = f; }) ([ f ] == [ f ]) ]
