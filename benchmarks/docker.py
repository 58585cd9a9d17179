"""Image benchmark: a ~200 MB image built by dtx, against `tar | gzip` and `podman build`.

    python3 benchmarks/docker.py [--megabytes 200] [--files 800] [--runs 3]

In a scratch store (a temporary DTX_HOME), a derivation writes about `--megabytes` MB of varied
files (half random bytes, half base64 text, in sizes from 20 KB to 500 KB, in subdirectories);
it is built first, untimed. Then, each the median of `--runs`:
1. dtx, cold: `dtx-build` of `buildLayeredImage { contents = [ data ]; }` (gzip, the default),
   as a whole process, the data already in the store; each run builds a new image (its tag
   changes), so nothing is reused. Also with `compressor = "none"`, which is what podman
   stores.
2. `tar -C data -c . | gzip -6 > x`: what the compression alone costs with GNU tools.
3. `podman build --runtime runc` of `FROM scratch` + `COPY . /data/` (vfs storage in a fresh
   temporary `--root`): what building the same image with a container engine costs.
4. dtx, no change: `dtx-build` of the last image again, which has nothing to do.
5. `streamLayeredImage` of the same files: `dtx-build` of the stream script (cold, a new tag
   each run), then running it into a pipe (`| cat > /dev/null`), against `cat` of the
   uncompressed archive built in 1 into the same pipe (what the stored image costs to read).
Times and ratios are printed. Needs bubblewrap, busybox-static and podman with runc (install.sh
installs them); the podman part runs as root and is skipped otherwise.
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

EXPR = r"""
{ run ? "0", megabytes ? "200", files ? "800", compressor ? "gz" }:
let
  pkgs = import <dtx> { };
  data = pkgs.runCommand "bench-data" { inherit megabytes files; } ''
    total=$((megabytes * 1024 * 1024))
    each=$((total / files))
    i=0
    while [ $i -lt $files ]; do
      dir=$out/d$((i % 20))
      mkdir -p $dir
      # Sizes vary around the mean (from 1/10 to 19/10 of it); odd files are text.
      size=$((each / 10 + (i * 7919 % 19) * each / 10))
      if [ $((i % 2)) -eq 0 ]; then
        head -c $size /dev/urandom > $dir/f$i.bin
      else
        head -c $((size * 3 / 4)) /dev/urandom | base64 > $dir/f$i.txt
      fi
      i=$((i + 1))
    done
  '';
in {
  inherit data;
  image = pkgs.dockerTools.buildLayeredImage {
    name = "bench";
    tag = "run-${run}";
    inherit compressor;
    contents = [ data ];
    config.Cmd = [ "/bin/true" ];
  };
  stream = pkgs.dockerTools.streamLayeredImage {
    name = "bench";
    tag = "run-${run}";
    contents = [ data ];
    config.Cmd = [ "/bin/true" ];
  };
}
"""


class Scratch:
    def __init__(self, base: Path):
        self.base = base
        self.home = base / "dtx-home"
        self.file = base / "bench.dtx"
        self.file.write_text(EXPR)

    def build(self, attr: str, *args: str) -> Path:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
        env["DTX_HOME"] = str(self.home)
        result = subprocess.run([sys.executable, "-m", "dtx.runtime.cli.build", str(self.file),
                                 "-A", attr, "--no-out-link", "--quiet", *args],
                                env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.exit(f"dtx-build -A {attr} failed:\n{result.stderr[-3000:]}")
        return self.home / result.stdout.strip().splitlines()[-1].lstrip("/")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(times: list[float]) -> float:
    return statistics.median(times)


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def podman_build(data: Path, work: Path) -> None:
    ctx = work / "context"
    root = work / "podman"
    (root / "root").mkdir(parents=True)
    (root / "runroot").mkdir()
    try:
        subprocess.run(["podman", "--root", str(root / "root"), "--runroot",
                        str(root / "runroot"), "--storage-driver", "vfs",
                        "--cgroup-manager", "cgroupfs", "--events-backend", "none",
                        "build", "--runtime", "runc", "-q", "-t", "bench:podman",
                        "-f", str(work / "Dockerfile"), str(ctx)],
                       check=True, capture_output=True)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(root)], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--files", type=int, default=800)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    opts = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="dtx-bench-docker-"))
    base.chmod(0o755)
    try:
        s = Scratch(base)
        args = ("--argstr", "megabytes", str(opts.megabytes), "--argstr", "files",
                str(opts.files))
        print(f"building the data ({opts.megabytes} MB in {opts.files} files), untimed ...")
        data = s.build("data", *args)
        print(f"  {size_of(data) / 1e6:.0f} MB in {sum(1 for _ in data.rglob('*'))} entries")

        dtx_times = []
        image = data
        for run in range(opts.runs):
            start = time.perf_counter()
            image = s.build("image", *args, "--argstr", "run", str(run))
            dtx_times.append(time.perf_counter() - start)
        dtx = median(dtx_times)
        def plain_build(run: int) -> None:
            s.build("image", *args, "--argstr", "run", f"plain-{run}", "--argstr", "compressor",
                    "none")

        plain = median([timed(lambda r=r: plain_build(r)) for r in range(opts.runs)])
        stored = s.build("image", *args, "--argstr", "run", f"plain-{opts.runs - 1}",
                         "--argstr", "compressor", "none")

        stream_times = []
        script = data
        for run in range(opts.runs):
            start = time.perf_counter()
            script = s.build("stream", *args, "--argstr", "run", f"stream-{run}")
            stream_times.append(time.perf_counter() - start)
        stream_build = median(stream_times)
        streamed = median([timed(lambda: subprocess.run(
            f"'{script}' | cat > /dev/null", shell=True, check=True))
            for _ in range(opts.runs)])
        read_back = median([timed(lambda: subprocess.run(
            f"cat '{stored}' | cat > /dev/null", shell=True, check=True))
            for _ in range(opts.runs)])

        tgz = base / "data.tar.gz"
        tar_times = [timed(lambda: subprocess.run(
            f"tar -C '{data}' -c . | gzip -6 > '{tgz}'", shell=True, check=True))
            for _ in range(opts.runs)]
        tar = median(tar_times)

        podman = None
        if os.geteuid() == 0 and shutil.which("podman") and shutil.which("runc"):
            shutil.copytree(data, base / "context", symlinks=True)
            (base / "Dockerfile").write_text("FROM scratch\nCOPY . /data/\n")
            podman = median([timed(lambda: podman_build(data, base))
                             for _ in range(opts.runs)])

        noop = median([timed(lambda: s.build("image", *args, "--argstr", "run",
                                              str(opts.runs - 1)))
                       for _ in range(opts.runs)])

        print(f"\nmedian of {opts.runs} runs ({os.cpu_count()} CPUs)")
        print(f"  dtx-build image, cold           {dtx:8.2f} s   "
              f"({size_of(image) / 1e6:.0f} MB archive)")
        print(f"  dtx-build image, uncompressed   {plain:8.2f} s")
        print(f"  tar | gzip -6                   {tar:8.2f} s   "
              f"({tgz.stat().st_size / 1e6:.0f} MB)   dtx/tar+gzip = {dtx / tar:.2f}")
        if podman is not None:
            print(f"  podman build (FROM scratch+COPY){podman:8.2f} s   "
                  f"                dtx/podman    = {dtx / podman:.2f}, "
                  f"uncompressed {plain / podman:.2f}")
        else:
            print("  podman build                    skipped (needs root, podman and runc)")
        print(f"  dtx-build again, no change      {noop:8.2f} s   "
              f"                no-change/cold = {noop / dtx:.3f}")
        print(f"  dtx-build stream script, cold   {stream_build:8.2f} s   "
              f"({size_of(script) / 1e3:.0f} kB script)   stream/uncompressed = "
              f"{stream_build / plain:.2f}")
        print(f"  stream script | cat             {streamed:8.2f} s   "
              f"({size_of(stored) / 1e6:.0f} MB archive)")
        print(f"  cat stored archive | cat        {read_back:8.2f} s   "
              f"                stream/cat    = {streamed / read_back:.2f}")
        print("  runs: dtx " + " ".join(f"{t:.2f}" for t in dtx_times) +
              " · tar|gzip " + " ".join(f"{t:.2f}" for t in tar_times))
    finally:
        if opts.keep:
            print(f"kept {base}")
        else:
            subprocess.run(["chmod", "-R", "u+w", str(base)], capture_output=True, check=False)
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
