"""Benchmark the dtx parser against `nix-instantiate --parse` on a generated 20 000-line file.

The file is realistic Nix: a package set of attribute sets, `let` blocks, functions with set
patterns, string and indented-string interpolation, lists, selections with `or`, `with`,
`inherit`, `if`, operators and comments. Each parser runs 5 times; the medians of CPU time (ours:
this process; Nix: its child processes, start-up and printing included) are printed with their
ratio. It also measures start-up: the CPU time a fresh process spends in `import dtx.lang.parser`
and its first `parse("1")` (medians of 9 processes). Usage: `python benchmarks/parse.py [lines]`.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile

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


def _median_cpu(fn, runs=5) -> float:
    """Return the median CPU time of `fn()`, its child processes included."""
    times = []
    for _ in range(runs):
        t0 = os.times()
        fn()
        t1 = os.times()
        times.append(t1.user + t1.system + t1.children_user + t1.children_system
                     - t0.user - t0.system - t0.children_user - t0.children_system)
    return statistics.median(times)


_STARTUP = """
import time
t0 = time.process_time()
import dtx.lang.parser
t1 = time.process_time()
dtx.lang.parser.parse("1")
t2 = time.process_time()
print(t1 - t0, t2 - t1)
"""


def startup(runs=9) -> tuple[float, float]:
    """Return the median CPU seconds a fresh process spends importing the parser and in its first
    parse, interpreter start-up excluded."""
    env = dict(os.environ)
    if "dtx" not in sys.modules:  # running from a checkout through the shim
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    rows = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _STARTUP], check=True, capture_output=True,
                             text=True, env=env, cwd=tempfile.gettempdir()).stdout
        rows.append([float(x) for x in out.split()])
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)


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
        imp, first = startup()
        print(f"start-up: import {imp * 1000:.1f} ms, first parse {first * 1000:.1f} ms "
              f"(CPU, medians of 9 fresh processes)")
        parse_file(path)  # warm-up
        ours = _median_cpu(lambda: parse_file(path))
        print(f"dtx parse:             {ours:.3f} s CPU (median of 5)")
        nix = shutil.which("nix-instantiate")
        if nix:
            def run_nix():
                subprocess.run([nix, "--parse", path], check=True, stdout=subprocess.DEVNULL)
            theirs = _median_cpu(run_nix)
            print(f"nix-instantiate --parse: {theirs:.3f} s CPU (median of 5, includes printing "
                  f"and process start-up)")
            print(f"ratio dtx / nix:       {ours / theirs:.1f}x")
        else:
            print("nix-instantiate not found: no comparison")


if __name__ == "__main__":
    main()
