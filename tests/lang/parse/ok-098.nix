<nixpkgs/x>
