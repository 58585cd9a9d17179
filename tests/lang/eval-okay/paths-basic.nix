[ ./lib ./lib/helper.nix (./lib + "/helper.nix") (./. + "/lib") ]
