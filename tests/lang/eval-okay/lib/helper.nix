# Imported by import-neighbour.nix.
{
  value = "from helper";
  double = x: x * 2;
}
