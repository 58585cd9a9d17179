"""Benchmark instantiation: dtx-instantiate against nix-instantiate on a generated derivation graph.

The generated file is an attribute set of N derivations (default 3000); derivation i depends on
up to three earlier ones (through `${dep}` in an attribute and a list of dependencies), every
tenth one also on a `builtins.toFile` script and a toFile config that refers to another script;
every third one has outputs `out` and `dev`. Timed, median of R runs
(default 5):

- instantiating into an empty store: `dtx-instantiate FILE` with a new DTX_HOME each run, and
  `nix-instantiate --store ROOT FILE` with a new store root each run (every .drv is written);
- instantiating again into a store that has every .drv already (as a user re-instantiating);
- `--eval --strict --json` of the set of drvPaths only (read-only: nothing is written), both.

Then the dtx run is profiled in-process with cProfile and the top functions are printed.
Usage: `python benchmarks/instantiate.py [N] [RUNS]`.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def generate(n: int) -> str:
    lines = [
        "let",
        '  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);',
        "  scripts = builtins.genList (i: builtins.toFile \"script-${toString i}.sh\"",
        '    "#!/bin/sh\\necho step ${toString i}\\n") 50;',
        "in rec {",
    ]
    for i in range(n):
        deps = sorted({(i * 7 + 3) % i, (i * 13 + 5) % i, i - 1}) if i > 1 else ([0] if i else [])
        parts = [f'name = "pkg-{i}"', f'version = "1.{i % 97}"']
        if deps:
            parts.append(f'src = "${{d{deps[0]}}}/share"')
            parts.append("deps = [ " + " ".join(f"d{d}" for d in deps) + " ]")
        if i % 10 == 0:
            parts.append(f"script = builtins.elemAt scripts {i % 50}")
            parts.append(f'conf = builtins.toFile "conf-{i}" '
                         f'"use ${{builtins.elemAt scripts {(i // 10) % 50}}}"')
        if i % 3 == 0:
            parts.append('outputs = [ "out" "dev" ]')
        lines.append(f"  d{i} = mk {{ " + "; ".join(parts) + "; };")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _time(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=dict(os.environ if env is None else env),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{r.stderr}")
    return elapsed


def _stores(make, runs: int, again: bool = True) -> tuple[float, float | None]:
    """Medians of `runs` runs into empty stores and (with `again`) of `runs` runs into a store
    filled by a first run; `make(dir)` gives the command and environment using the store in
    `dir`."""
    cold, warm = [], []
    for i in range(runs):
        d = tempfile.mkdtemp(prefix="dtx-bench-store-")
        try:
            cold.append(_time(*make(d)))
            if i == 0 and again:
                warm = [_time(*make(d)) for _ in range(runs)]
        finally:
            _rmtree(d)
    return statistics.median(cold), statistics.median(warm) if warm else None


def _rmtree(path: str) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            try:
                os.chmod(os.path.join(dirpath, d), 0o755)
            except OSError:
                pass
    shutil.rmtree(path, ignore_errors=True)


def profile_dtx(path: str, top: int = 15) -> str:
    from dtx.runtime.eval import Evaluator, run_deep
    from dtx.runtime.glue import attach_store
    from dtx.runtime.store import LocalStore
    from dtx.runtime.values import force

    home = tempfile.mkdtemp(prefix="dtx-bench-prof-")
    try:
        ev = Evaluator()
        attach_store(ev, LocalStore(root=home))
        prof = cProfile.Profile()

        def go():  # run_deep evaluates in a thread with a big stack: profile inside it
            prof.enable()
            try:
                value = force(ev.eval_file(path))
                return [str(force(force(v).d["drvPath"])) for v in value.d.values()]
            finally:
                prof.disable()
        drvs = run_deep(go)
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats("tottime").print_stats(top)
        out.write(f"({len(drvs)} derivations)\n")
        return out.getvalue()
    finally:
        _rmtree(home)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    dtx = shutil.which("dtx-instantiate")
    dtx_cmd = [dtx] if dtx else [sys.executable, "-m", "dtx.runtime.cli.instantiate"]
    nix = shutil.which("nix-instantiate")
    work = tempfile.mkdtemp(prefix="dtx-bench-inst-")
    try:
        graph = os.path.join(work, "graph.nix")
        with open(graph, "w") as f:
            f.write(generate(n))
        drv_paths = os.path.join(work, "drvpaths.nix")
        with open(drv_paths, "w") as f:
            f.write("builtins.mapAttrs (n: d: d.drvPath) (import ./graph.nix)\n")
        print(f"graph: {n} derivations, {runs} runs each (median)")

        def dtx_in(cmd):
            return lambda d: (cmd, dict(os.environ, DTX_HOME=d))
        dtx_cold, dtx_warm = _stores(dtx_in(dtx_cmd + [graph]), runs)
        dtx_eval, _ = _stores(dtx_in(dtx_cmd + ["--eval", "--strict", "--json", drv_paths]),
                              runs, again=False)
        rows = [("into an empty store", dtx_cold), ("again (all written)", dtx_warm),
                ("--eval drvPaths", dtx_eval)]
        if nix:
            nix_cold, nix_warm = _stores(lambda d: ([nix, "--store", d, graph], None), runs)
            nix_eval = statistics.median(
                _time([nix, "--eval", "--strict", "--json", drv_paths]) for _ in range(runs))
            for (label, a), b in zip(rows, (nix_cold, nix_warm, nix_eval)):
                print(f"{label:20} dtx {a:7.3f} s   nix {b:7.3f} s   ratio {a / b:6.1f}x")
        else:
            for label, a in rows:
                print(f"{label:20} dtx {a:7.3f} s   (nix-instantiate not found)")
        print("\nprofile of dtx instantiating the graph (in-process, by own time):")
        print(profile_dtx(graph))
    finally:
        _rmtree(work)


if __name__ == "__main__":
    main()
