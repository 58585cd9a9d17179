(import ./lib/relative.nix).sibling
