"""Benchmark the dtx evaluator against `nix-instantiate --eval --strict` on several workloads.

Each workload is a Nix program (written to a temporary file) whose value is small, so the
timings measure evaluation rather than printing. Both evaluators run as whole processes
(`python3 -m dtx.runtime.cli.instantiate --eval --strict FILE` and `nix-instantiate --eval
--strict FILE`), 5 times each; the table shows the medians and the ratio dtx/nix. Start-up is
included in both, as a user sees it; the `startup` row measures it alone.

Usage:
    python3 benchmarks/eval.py                 # every workload, the table
    python3 benchmarks/eval.py -w fixpoint     # only some workloads (repeatable)
    python3 benchmarks/eval.py -n 3            # runs per evaluator
    python3 benchmarks/eval.py --profile NAME  # one workload in-process under cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WORKLOADS: dict[str, str] = {}


def workload(name: str):
    """Register the decorated function, which returns the program's source, as a workload."""
    def register(fn):
        WORKLOADS[name] = fn()
        return fn
    return register


@workload("startup")
def _startup() -> str:
    return "1 + 1"


@workload("deep-recursion")
def _deep_recursion() -> str:
    # Non-tail recursion 50 000 deep, several times over.
    return """
let
  sum = n: if n == 0 then 0 else n + sum (n - 1);
  count = n: if n == 0 then 0 else 1 + count (n - 1);
in [ (sum 50000) (count 50000) (sum 30000) ]
"""


@workload("lists")
def _lists() -> str:
    return """
let
  xs = builtins.genList (i: i) 200000;
  ys = map (x: x * 3 + 1) xs;
  zs = builtins.filter (x: builtins.bitAnd x 1 == 0) ys;
  built = builtins.foldl' (acc: x: if x < 2000 then acc ++ [ x ] else acc) [ ] xs;
in [
  (builtins.length zs)
  (builtins.foldl' (a: b: a + b) 0 zs)
  (builtins.length built)
  (builtins.length (builtins.concatMap (x: [ x x ]) (builtins.genList (i: i) 50000)))
  (builtins.elemAt (builtins.sort builtins.lessThan (map (x: 50000 - x) (builtins.genList (i: i) 20000))) 0)
]
"""


@workload("attrsets")
def _attrsets() -> str:
    return """
let
  names = builtins.genList (i: "attr${toString i}") 5000;
  big = builtins.listToAttrs (map (n: { name = n; value = builtins.stringLength n; }) names);
  updated = builtins.foldl' (acc: i: acc // { "k${toString (builtins.bitAnd i 255)}" = i; })
    { } (builtins.genList (i: i) 3000);
  mapped = builtins.mapAttrs (n: v: v * 2) big;
  recset = rec { a = 1; b = a + 1; c = b + a; d = { inherit a b c; e = d.a + c; }; };
in [
  (builtins.length (builtins.attrNames big))
  (builtins.length (builtins.attrNames updated))
  mapped.attr4999
  (builtins.foldl' (acc: n: acc + mapped.${n}) 0 names)
  recset.d.e
  (builtins.length (builtins.attrNames (builtins.removeAttrs big (builtins.genList (i: "attr${toString i}") 2500))))
]
"""


@workload("strings")
def _strings() -> str:
    return """
let
  pieces = builtins.genList (i: "item-${toString i}") 20000;
  joined = builtins.concatStringsSep "," pieces;
  built = builtins.foldl' (acc: p: "${acc}${p};") "" (builtins.genList (i: toString i) 3000);
  indented = i: ''
    line ${toString i}
      nested ${toString (i * 2)}
  '';
  replaced = builtins.replaceStrings [ "item" "-" ] [ "I" "_" ] joined;
in [
  (builtins.stringLength joined)
  (builtins.stringLength built)
  (builtins.stringLength (builtins.concatStringsSep "" (builtins.genList indented 5000)))
  (builtins.stringLength replaced)
  (builtins.substring 0 20 replaced)
]
"""


@workload("fixpoint")
def _fixpoint() -> str:
    # nixpkgs' lib.fix / lib.extends with 30 overlays over a few hundred attributes.
    return """
let
  fix = f: let x = f x; in x;
  extends = overlay: f: self: let super = f self; in super // overlay self super;
  composeAll = overlays: base: builtins.foldl' (f: o: extends o f) base overlays;
  names = builtins.genList (i: "p${toString i}") 300;
  base = self: builtins.listToAttrs (map (n: {
    name = n;
    value = { pname = n; version = 1; deps = [ ]; };
  }) names) // { total = builtins.length (builtins.attrNames self); };
  overlay = k: self: super: builtins.listToAttrs (builtins.genList (i:
    let n = "p${toString (builtins.bitAnd (i * 7 + k * 13) 255)}"; in {
      name = n;
      value = super.${n} // {
        version = super.${n}.version + 1;
        deps = super.${n}.deps ++ [ self.p0.pname ];
      };
    }) 40) // { "layer${toString k}" = k; };
  pkgs = fix (composeAll (builtins.genList overlay 30) base);
in [
  pkgs.total
  (builtins.foldl' (acc: n: acc + pkgs.${n}.version + builtins.length pkgs.${n}.deps) 0 names)
  pkgs.layer29
]
"""


@workload("nixpkgs-like")
def _nixpkgs_like() -> str:
    # A package set of 3000 callPackage'd functions that depend on each other.
    return """
let
  lib = {
    optional = c: x: if c then [ x ] else [ ];
    concatMapStringsSep = sep: f: l: builtins.concatStringsSep sep (map f l);
  };
  mkDerivation = { pname, version, buildInputs ? [ ], meta ? { } }: {
    type = "derivation";
    name = "${pname}-${version}";
    inherit pname version buildInputs meta;
    outPath = "/nix/store/${pname}-${version}";
  };
  pkg = i: { stdenv, lib, fetchurl, dep1 ? null, dep2 ? null, enableX ? false, ... }:
    stdenv.mkDerivation {
      pname = "pkg${toString i}";
      version = "1.${toString i}";
      buildInputs = lib.optional (dep1 != null) dep1 ++ lib.optional (dep2 != null) dep2
        ++ lib.optional enableX "x11";
      meta = { description = "package ${toString i}"; license = "mit"; };
    };
  callPackageWith = autoArgs: fn: overrides:
    let args = builtins.intersectAttrs (builtins.functionArgs fn) autoArgs; in fn (args // overrides);
  pkgs = self: builtins.listToAttrs (builtins.genList (i: {
    name = "pkg${toString i}";
    value = callPackageWith self (pkg i) (
      (if i > 10 then { dep1 = self."pkg${toString (i / 2)}"; } else { })
      // (if i > 20 then { dep2 = self."pkg${toString (i - 7)}"; } else { }));
  }) 3000) // {
    stdenv = { inherit mkDerivation; };
    inherit lib;
    fetchurl = url: url;
  };
  set = let self = pkgs self; in self;
  names = builtins.filter (n: builtins.substring 0 3 n == "pkg") (builtins.attrNames set);
in [
  (builtins.length names)
  (builtins.foldl' (acc: n: acc + builtins.length set.${n}.buildInputs) 0 names)
  (builtins.stringLength (lib.concatMapStringsSep " " (n: set.${n}.name) names))
  set.pkg2999.buildInputs
]
"""


def _time(cmd: list[str], runs: int) -> tuple[float, str]:
    """Run `cmd` `runs` times; return the median wall time and the first run's output."""
    times, first = [], None
    for _ in range(runs):
        start = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if first is None:
            first = r.stdout.strip() if r.returncode == 0 else \
                "FAILED: " + (r.stderr.strip().splitlines() or ["?"])[0]
    return statistics.median(times), first


def run_table(names: list[str], runs: int) -> None:
    nix = shutil.which("nix-instantiate")
    tmp = tempfile.mkdtemp(prefix="dtx-bench-")
    print(f"{'workload':<16}{'dtx (s)':>10}{'nix (s)':>10}{'dtx/nix':>10}  agree")
    for name in names:
        path = os.path.join(tmp, f"{name}.nix")
        with open(path, "w") as f:
            f.write(WORKLOADS[name])
        t_dtx, out_dtx = _time([sys.executable, "-m", "dtx.runtime.cli.instantiate", "--eval",
                                "--strict", path], runs)
        if nix:
            t_nix, out_nix = _time([nix, "--eval", "--strict", path], runs)
            agree = "yes" if out_dtx == out_nix else f"NO (dtx: {out_dtx[:60]})"
            print(f"{name:<16}{t_dtx:>10.3f}{t_nix:>10.3f}{t_dtx / t_nix:>10.1f}  {agree}")
        else:
            print(f"{name:<16}{t_dtx:>10.3f}{'-':>10}{'-':>10}  (nix-instantiate not found)")


def profile(name: str, top: int) -> None:
    """Evaluate one workload in-process under cProfile and print the top functions."""
    from dtx.runtime.builtins.control import deep_force
    from dtx.runtime.eval import Evaluator, run_deep
    from dtx.runtime.printer import print_value

    ev = Evaluator()
    prof = cProfile.Profile()

    def run():
        prof.enable()
        try:
            v = ev.eval_string(WORKLOADS[name], os.getcwd())
            deep_force(v)
            return print_value(v, strict=True)
        finally:
            prof.disable()

    start = time.perf_counter()
    out = run_deep(run)
    print(f"{name}: {time.perf_counter() - start:.2f} s under the profiler -> {out[:80]}")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-w", "--workload", action="append", choices=sorted(WORKLOADS),
                   help="run only this workload (repeatable)")
    p.add_argument("-n", "--runs", type=int, default=5, help="runs per evaluator (median)")
    p.add_argument("--profile", metavar="NAME", choices=sorted(WORKLOADS),
                   help="profile one workload in-process with cProfile")
    p.add_argument("--top", type=int, default=25, help="functions to show when profiling")
    args = p.parse_args(argv)
    if args.profile:
        profile(args.profile, args.top)
    else:
        run_table(args.workload or list(WORKLOADS), args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
