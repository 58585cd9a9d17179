"""Build benchmarks: sandbox start-up cost and a no-op rebuild of a 500-derivation graph.

    python3 benchmarks/build.py [--derivations 500] [--runs 5]

1. Sandbox start-up: the time to run a trivial builder (busybox `true`) in the build sandbox
   with 10 and with 300 store paths bind-mounted, against bubblewrap running the same program
   with nothing mounted (median of --runs).
2. No-op rebuild: a graph of N small derivations (each depends on up to three earlier ones) is
   built once with `dtx-build -j 2`; then `dtx-build` of the already-built graph is timed, and
   `nix-build` of the same expression (built once first) for comparison, both as whole
   processes. The ratio dtx/nix is printed.
Needs bubblewrap, busybox-static and nix-bin (install.sh installs them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def sandbox_startup(runs: int) -> None:
    from dtx.runtime.sandbox import SandboxSpec, bwrap_argv, probe, write_etc
    bwrap = probe()
    work = Path(tempfile.mkdtemp(prefix="dtx-bench-sandbox-"))
    try:
        store = work / "store"
        store.mkdir()
        bb = store / "00000000000000000000000000000000-busybox"
        (bb / "bin").mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", bb / "bin" / "busybox")
        inputs = [(str(bb), "/nix/store/" + bb.name)]
        for i in range(300):
            p = store / f"{i:032d}-input-{i}"
            p.mkdir()
            inputs.append((str(p), "/nix/store/" + p.name))
        write_etc(str(work / "etc"))
        print("sandbox start-up (median of %d runs)" % runs)
        bare = median_time(lambda: subprocess.run(
            [bwrap, "--ro-bind", str(bb), "/bb", "--", "/bb/bin/busybox", "true"],
            check=True), runs)
        print(f"  bwrap, nothing mounted        {bare * 1000:8.1f} ms")
        for n in (10, 300):
            scratch = work / f"scratch-{n}"
            build = work / f"build-{n}"
            scratch.mkdir()
            build.mkdir()
            spec = SandboxSpec(argv=[f"/nix/store/{bb.name}/bin/busybox", "true"], env={},
                               store_dir="/nix/store", store_scratch=str(scratch),
                               build_dir=str(build), etc_dir=str(work / "etc"),
                               inputs=inputs[:n])
            argv = bwrap_argv(spec, bwrap)
            t = median_time(lambda: subprocess.run(argv, check=True), runs)
            print(f"  dtx sandbox, {n:3d} store paths  {t * 1000:8.1f} ms")
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)])
        shutil.rmtree(work, ignore_errors=True)


def graph_expr(n: int, bb: Path) -> str:
    lines = ["let",
             f'  bb = builtins.path {{ path = {bb}; name = "busybox"; }};',
             "  mk = name: deps: derivation {",
             '    inherit name deps; system = "x86_64-linux"; builder = "${bb}/bin/sh";',
             '    args = [ "-c" "echo $name $deps > $out" ];',
             "  };"]
    for i in range(n):
        deps = " ".join(f"d{j}" for j in (i - 1, i // 2, i // 3) if 0 <= j < i)
        lines.append(f'  d{i} = mk "d{i}" [ {deps} ];')
    lines.append("in [ " + " ".join(f"d{i}" for i in range(n)) + " ]")
    return "\n".join(lines) + "\n"


def noop_rebuild(n: int, runs: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="dtx-bench-build-"))
    try:
        bb = work / "bb" / "bin"
        bb.mkdir(parents=True)
        shutil.copy(shutil.which("busybox") or "/bin/busybox", bb / "busybox")
        (bb / "sh").symlink_to("busybox")
        expr = work / "graph.nix"
        expr.write_text(graph_expr(n, work / "bb"))
        env = dict(os.environ, DTX_HOME=str(work / "home"))
        dtx = [sys.executable, "-m", "dtx.runtime.cli.build", str(expr), "--no-out-link",
               "--quiet"]
        print(f"no-op rebuild of a graph of {n} derivations (median of {runs} runs)")
        start = time.perf_counter()
        subprocess.run(dtx + ["-j", "2"], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"  first dtx-build (-j 2)        {time.perf_counter() - start:8.2f} s")
        t_dtx = median_time(lambda: subprocess.run(dtx, env=env, check=True,
                                                   stdout=subprocess.DEVNULL), runs)
        print(f"  no-op dtx-build               {t_dtx:8.2f} s")
        nix = shutil.which("nix-build")
        if nix is None:
            print("  nix-build not installed: no comparison")
            return
        nix_cmd = [nix, str(expr), "--no-out-link", "--option", "build-users-group", "",
                   "-j", "2", "--quiet"]
        subprocess.run(nix_cmd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        t_nix = median_time(lambda: subprocess.run(nix_cmd, check=True,
                                                   stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL), runs)
        print(f"  no-op nix-build               {t_nix:8.2f} s")
        print(f"  ratio dtx/nix                 {t_dtx / t_nix:8.1f}")
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(work)])
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--derivations", type=int, default=500)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    sandbox_startup(args.runs)
    noop_rebuild(args.derivations, args.runs)


if __name__ == "__main__":
    main()
