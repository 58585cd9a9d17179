with {}; <nixpkgs> {}
