# Chains: derivations that depend on each other through outputs, drvPath and strings.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  src = builtins.toFile "chain-src" "source\n";
in rec {
  base = mk { name = "base"; inherit src; outputs = [ "out" "dev" ]; };
  stage1 = mk { name = "stage1"; deps = [ base ]; };
  stage2 = mk { name = "stage2"; cmd = "${stage1}/bin/x --with ${base.dev}"; };
  stage3 = mk { name = "stage3"; inputs = [ stage1 stage2 base.dev ]; };
  # Only the .drv path: Nix puts the whole .drv closure into inputSrcs and all outputs
  # of every derivation in it into inputDrvs.
  drvOnly = mk { name = "drv-only"; drv = stage3.drvPath; };
  drvInString = mk { name = "drv-in-string"; note = "built from ${stage2.drvPath} and ${stage1}"; };
  drvAndOut = mk { name = "drv-and-out"; d = stage1.drvPath; o = stage1.outPath; };
  diamond = mk { name = "diamond"; left = stage2; right = stage3; again = stage1; };
  outPathOnly = mk { name = "outpath-only"; p = "${diamond.outPath}"; };
  builderFromDep = mk { name = "builder-from-dep"; builder = "${stage1}/bin/sh"; args = [ "${base.dev}/setup" ]; };
  deep = builtins.foldl' (prev: i: mk { name = "deep-${toString i}"; inherit prev; }) base (builtins.genList (x: x) 12);
  fanIn = mk { name = "fan-in"; deps = builtins.genList (i: mk { name = "leaf-${toString i}"; i = i; }) 6; };
}
