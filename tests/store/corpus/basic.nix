# Plain derivations: names, args, env values with escapes, placeholders, nulls, reference
# restrictions, passAsFile and multiple outputs.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
in rec {
  plain = mk { name = "plain"; };
  withArgs = mk { name = "with-args"; args = [ "-c" "echo hi" 42 (-7) true false null [ "a" [ "b" 3 ] ] 1.5 ]; };
  otherSystem = mk { name = "other-system"; system = "aarch64-darwin"; builder = "/usr/bin/env"; };
  plusName = mk { name = "gtk+-3.0_beta.1"; };
  oddName = mk { name = "a?b=c+d-e.f_g"; };
  dotName = mk { name = ".hidden-start"; };
  versioned = mk { name = "hello-2.12.1"; pname = "hello"; version = "2.12.1"; };
  envTypes = mk {
    name = "env-types";
    anInt = 123; aNeg = -5; aFloat = 3.25; aTrue = true; aFalse = false; aNull = null;
    aList = [ 1 "two" true null [ 3 4 ] 0.5 ];
    emptyList = [ ];
    emptyString = "";
  };
  escapes = mk {
    name = "escapes";
    quote = "she said \"hi\"";
    backslash = "a\\b\\\\c";
    multiLine = "line one\nline two\n\ttabbed\r\nend";
    dollar = "\${not interpolated} $HOME";
    unicode = "caf\u00e9 – ✓";
    long = builtins.concatStringsSep "\n" (builtins.genList (i: "row ${toString i}\t\"q\"\\") 200);
    script = ''
      #!/bin/sh
      echo "quoted ''${out}" > $out
      printf '%s\n' "a\tb"
    '';
  };
  placeholders = mk {
    name = "placeholders";
    outputs = [ "out" "bin" ];
    configureFlags = [ "--prefix=${builtins.placeholder "out"}" "--bindir=${builtins.placeholder "bin"}/bin" ];
    other = builtins.placeholder "dev";
  };
  ignoreNulls = mk {
    name = "ignore-nulls";
    __ignoreNulls = true;
    dropped = null;
    kept = "yes";
    alsoKept = false;
  };
  ignoreNullsFalse = mk { name = "ignore-nulls-false"; __ignoreNulls = false; dropped = null; };
  references = mk {
    name = "references";
    allowedReferences = [ plain ];
    allowedRequisites = [ plain withArgs ];
    disallowedReferences = [ versioned ];
    disallowedRequisites = [ ];
  };
  passAsFile = mk {
    name = "pass-as-file";
    passAsFile = [ "big" "other" ];
    big = builtins.concatStringsSep "," (builtins.genList toString 500);
    other = "small\n";
  };
  multi = mk { name = "multi"; outputs = [ "out" "dev" "lib" ]; };
  multiReordered = mk { name = "multi-reordered"; outputs = [ "lib" "out" "dev" ]; };
  useDev = mk { name = "use-dev"; inputs = [ multi.dev ]; };
  useLib = mk { name = "use-lib"; lib = multi.lib; dev = "${multi.dev}/include"; };
  useAll = mk { name = "use-all"; all = multi.all; first = multi; };
  useOut = mk { name = "use-out"; dep = multi.out; other = multiReordered; };
  outputsString = mk { name = "outputs-string"; outputs = [ "out" "man" "doc" "devdoc" ]; };
}
