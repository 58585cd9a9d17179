# __structuredAttrs: the attributes go to the builder as JSON in the `__json` variable.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  dep = mk { name = "structured-dep"; outputs = [ "out" "dev" ]; };
in {
  structuredSimple = mk { name = "structured-simple"; __structuredAttrs = true; greeting = "hello"; };
  structuredNested = mk {
    name = "structured-nested";
    __structuredAttrs = true;
    outputs = [ "out" "doc" ];
    numbers = [ 1 (-2) 3.5 0.1 1.0e-7 100.0 123456789012 ];
    nothing = null;
    flags = { enable = true; disable = false; level = 3; };
    listOfSets = [ { a = 1; b = [ "x" "y" ]; } { } { nested = { deeper = { deepest = "z\n\"q\"\t\\"; }; }; } ];
    drv = dep;
    drvDev = dep.dev;
    interpolated = "${dep}/bin and ${dep.dev}/include";
    emptyList = [ ];
    emptySet = { };
    args2 = [ "not" "args" ];
  };
  structuredArgs = mk { name = "structured-args"; __structuredAttrs = true; args = [ "-c" "true" 7 ]; extra = [ dep ]; };
  structuredFixed = mk {
    name = "structured-fixed";
    __structuredAttrs = true;
    outputHashMode = "recursive";
    outputHashAlgo = "sha256";
    outputHash = "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh";
    meta = { description = "fixed, structured"; };
  };
  structuredIgnoreNulls = mk {
    name = "structured-ignore-nulls";
    __structuredAttrs = true;
    __ignoreNulls = true;
    gone = null;
    stays = [ null ];
  };
  structuredRefs = mk {
    name = "structured-refs";
    __structuredAttrs = true;
    outputChecks = { out = { allowedReferences = [ dep ]; maxSize = 4096; }; };
    exportReferencesGraph = { closure = dep; };
  };
}
