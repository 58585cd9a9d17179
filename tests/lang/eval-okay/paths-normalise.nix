[ (baseNameOf ./lib/../lib/./helper.nix) (baseNameOf (./lib + "/../lib//helper.nix")) ]
