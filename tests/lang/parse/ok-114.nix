with {}; ./a/b/c.nix
