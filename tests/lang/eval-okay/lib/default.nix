# Imported as a directory by import-directory.nix.
{ name = "lib/default.nix"; }
