scopedImport { magic = 42; x = "over"; } ./lib/uses-magic.nix
