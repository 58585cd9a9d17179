"""Pull benchmark: dtx's registry client against `skopeo copy`, both writing a docker-archive.

    python3 benchmarks/pull.py [--size-mb 200] [--layers 5] [--runs 3]

Starts Debian's `docker-registry` on 127.0.0.1 (tests/docker/registry.py), pushes an image of
about --size-mb megabytes in --layers gzip-compressed layers of incompressible data, then times,
as whole processes and from an empty destination each run:
- dtx: `pull_image` (what `builtin:docker-pull` runs: digest-checked streams on a thread pool,
  layers decompressed on the fly, a deterministic docker-archive);
- skopeo: `skopeo copy --src-tls-verify=false docker://… docker-archive:…`.
Prints the median wall time of each and the ratio dtx/skopeo. Needs docker-registry and skopeo.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "docker"))
from registry import LocalRegistry

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def make_layer(size: int, seed: int) -> tuple[bytes, bytes]:
    """A layer tar with one file of `size` pseudo-random bytes, and its gzip form."""
    data = hashlib.shake_256(f"layer-{seed}".encode()).digest(size)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(f"data/layer-{seed}.bin")
        info.size = size
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return raw, gzip.compress(raw, compresslevel=1, mtime=0)


def push(reg: LocalRegistry, repo: str, size_mb: int, layers: int) -> int:
    per = size_mb * 1_000_000 // layers
    descs, diff_ids, total = [], [], 0
    for i in range(layers):
        raw, gz = make_layer(per, i)
        digest = reg.push_blob(repo, gz)
        descs.append({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                      "digest": digest, "size": len(gz)})
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        total += len(gz)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    config_digest = reg.push_blob(repo, config)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": config_digest, "size": len(config)},
                "layers": descs}
    reg.push_manifest(repo, "latest", json.dumps(manifest).encode(), DOCKER_MANIFEST)
    return total


DTX_PULL = """
import sys, tempfile
from dtx.runtime.image.pull import PullRequest, pull_image
work = tempfile.mkdtemp(dir=sys.argv[2])
pull_image(PullRequest(sys.argv[1], arch="amd64"), sys.argv[3], work, lambda _l: None)
"""


def timed(argv: list[str], runs: int, dest: Path) -> float:
    times = []
    for _ in range(runs):
        if dest.exists():
            dest.unlink()
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    for tool in ("docker-registry", "skopeo"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install {tool}")
    work = Path(tempfile.mkdtemp(prefix="dtx-bench-pull-"))
    try:
        with LocalRegistry(work / "registry") as reg:
            image = f"{reg.host}/bench/big"
            compressed = push(reg, "bench/big", opts.size_mb, opts.layers)
            print(f"image: {opts.layers} layers, {compressed / 1e6:.0f} MB compressed, "
                  f"median of {opts.runs} runs")
            dtx_dest = work / "dtx.tar"
            dtx = timed([sys.executable, "-c", DTX_PULL, image, str(work), str(dtx_dest)],
                        opts.runs, dtx_dest)
            sk_dest = work / "skopeo.tar"
            skopeo = timed(["skopeo", "copy", "--src-tls-verify=false", f"docker://{image}",
                            f"docker-archive:{sk_dest}:bench/big:latest"], opts.runs, sk_dest)
            print(f"{'tool':<8} {'seconds':>8} {'archive MB':>11}")
            print(f"{'dtx':<8} {dtx:8.2f} {dtx_dest.stat().st_size / 1e6:11.0f}")
            print(f"{'skopeo':<8} {skopeo:8.2f} {sk_dest.stat().st_size / 1e6:11.0f}")
            print(f"ratio dtx/skopeo: {dtx / skopeo:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
