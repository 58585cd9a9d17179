let h = import ./lib/helper.nix; in [ h.value (h.double 21) (import ./lib/fn.nix 5) ]
