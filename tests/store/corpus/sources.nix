# Sources: toFile (with references between files), paths as attributes and in strings,
# builtins.path with name, filter and flat hashing, filterSource.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  fileA = builtins.toFile "a.txt" "contents of a\n";
  fileB = builtins.toFile "b.sh" "#!/bin/sh\ncat ${fileA}\n";
  fileC = builtins.toFile "c.conf" "include ${fileB}\ninclude ${fileA}\n";
  noDir = path: type: !(type == "directory" && baseNameOf path == ".hidden");
  noTmp = path: type: builtins.match ".*\\.tmp" (baseNameOf path) == null;
in {
  toFileInput = mk { name = "tofile-input"; script = fileA; };
  toFileChain = mk { name = "tofile-chain"; conf = fileC; builder = fileB; };
  toFileInArgs = mk { name = "tofile-args"; args = [ fileB "${fileC}" ]; };
  pathAttr = mk { name = "path-attr"; src = ./fixtures/file.txt; };
  pathDirAttr = mk { name = "path-dir-attr"; src = ./fixtures/dir; };
  pathInterp = mk { name = "path-interp"; cmd = "cat ${./fixtures/file.txt} ${./fixtures/dir}/a.txt"; };
  pathBuilder = mk { name = "path-builder"; builder = ./fixtures/dir/run.sh; };
  builtinsPath = mk {
    name = "builtins-path";
    named = builtins.path { path = ./fixtures/dir; name = "renamed-source"; };
    filtered = builtins.path { path = ./fixtures/dir; name = "filtered"; filter = p: t: noDir p t && noTmp p t; };
    flat = builtins.path { path = ./fixtures/flat.bin; recursive = false; };
    plain = builtins.path { path = ./fixtures/file.txt; };
  };
  filterSource = mk {
    name = "filter-source";
    src = builtins.filterSource noTmp ./fixtures/dir;
    src2 = builtins.filterSource (p: t: t != "symlink") ./fixtures/dir;
  };
  mixedSources = mk {
    name = "mixed-sources";
    srcs = [ ./fixtures/file.txt fileA (builtins.filterSource noDir ./fixtures/dir) ];
  };
}
