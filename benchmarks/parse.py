"""Benchmark the dtx parser against `nix-instantiate --parse` on a generated 20 000-line file.

The file is realistic Nix: a package set of attribute sets, `let` blocks, functions with set
patterns, string and indented-string interpolation, lists, selections with `or`, `with`,
`inherit`, `if`, operators and comments. Each parser runs 5 times; the medians are printed with
their ratio. Usage: `python benchmarks/parse.py [lines]`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def _import_parser():
    try:
        from dtx.lang.parser import parse_file
    except ImportError:  # running from a checkout without `pip install -e .`
        shim = tempfile.mkdtemp(prefix="dtx-shim-")
        os.makedirs(os.path.join(shim, "dtx"))
        open(os.path.join(shim, "dtx", "__init__.py"), "w").close()
        os.symlink(os.path.join(os.path.dirname(HERE), "lang"), os.path.join(shim, "dtx", "lang"))
        sys.path.insert(0, shim)
        from dtx.lang.parser import parse_file
    return parse_file


PACKAGE = '''\
  # Package number {i}: built from a tarball with a patch and a custom install phase.
  pkg{i} = {{ stdenv, fetchurl, lib, zlib ? null, enableDocs ? false, ... }}@args:
    let
      version = "1.{i}.0";
      pname = "pkg{i}";
      src = fetchurl {{
        url = "https://example.org/releases/${{pname}}-${{version}}.tar.gz";
        sha256 = "0000000000000000000000000000000000000000000000000000{i:012d}";
      }};
      flags = [ "--prefix=$out" "--with-zlib=${{zlib}}" ] ++ lib.optional enableDocs "--docs";
    in stdenv.mkDerivation rec {{
      inherit pname version src;
      buildInputs = [ zlib ] ++ (args.extraInputs or [ ]);
      configureFlags = flags ++ [ "-j${{toString (stdenv.cores or 1)}}" ];
      doCheck = !stdenv.isDarwin && version != "0";
      priority = {i} * 2 + 1 - (if enableDocs then 1 else 0);
      installPhase = \'\'
        mkdir -p $out/bin $out/share/${{pname}}
        cp -r build/* $out/bin/
        ''${{NOT_INTERPOLATED}} stays
        echo "${{pname}} ${{version}}" > $out/share/${{pname}}/VERSION
      \'\';
      passthru = {{ tests.simple = ./tests/pkg{i}.nix; updateScript = [ ./update.sh pname ]; }};
      meta = with lib; {{
        description = "Package {i}";
        license = licenses.mit;
        platforms = platforms.linux ++ platforms.darwin;
        broken = stdenv.hostPlatform.isAarch32 || (builtins.length flags > 3);
      }};
    }};
'''
PACKAGE_LINES = PACKAGE.count("\n")


def generate(lines: int) -> str:
    """Return a Nix expression of about `lines` lines."""
    out = ["{ lib, stdenv, fetchurl, zlib, ... }:", "", "rec {"]
    i = 0
    while len(out) + PACKAGE_LINES < lines - 1:
        out.extend(PACKAGE.format(i=i).splitlines())
        i += 1
    out.append("}")
    return "\n".join(out) + "\n"


def _median_time(fn, runs=5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    parse_file = _import_parser()
    text = generate(lines)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.nix")
        with open(path, "w") as f:
            f.write(text)
        n_lines = text.count("\n")
        print(f"file: {n_lines} lines, {len(text)} characters")
        parse_file(path)  # warm-up: builds the LALR tables once per process
        ours = _median_time(lambda: parse_file(path))
        print(f"dtx parse:             {ours:.3f} s (median of 5)")
        nix = shutil.which("nix-instantiate")
        if nix:
            def run_nix():
                subprocess.run([nix, "--parse", path], check=True, stdout=subprocess.DEVNULL)
            theirs = _median_time(run_nix)
            print(f"nix-instantiate --parse: {theirs:.3f} s (median of 5, includes printing "
                  f"and process start-up)")
            print(f"ratio dtx / nix:       {ours / theirs:.1f}x")
        else:
            print("nix-instantiate not found: no comparison")


if __name__ == "__main__":
    main()
