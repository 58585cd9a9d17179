# Nix prints the attribute name `or` bare; dtx quotes it.
{ or = 1; a.or = 2; }
