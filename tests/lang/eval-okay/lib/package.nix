# A callPackage-style function.
{ stdenv, lib, zlib ? "default-zlib", extra ? "default-extra" }:
{ name = "pkg"; deps = [ stdenv lib zlib extra ]; }
