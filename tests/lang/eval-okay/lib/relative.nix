# Paths in an imported file are relative to that file.
{ sibling = (import ./helper.nix).value; }
