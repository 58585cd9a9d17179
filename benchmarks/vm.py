"""VM step benchmarks: boot-to-step time and moving 100 MB into and out of a guest.

    python3 benchmarks/vm.py [--mb 100] [--runs 3] [--home DIR]

The kernel (`vmTools.kernel`) and busybox come from a dtx store (built with dtx-build into
--home, default a directory under /tmp kept between runs); the rest drives vm/ directly, as
builtin:run-in-vm does, and prints for each accelerator that works here (TCG always; KVM when the
boot probe succeeds, or when DTX_VM_ACCEL=kvm):

- boot-to-step: QEMU start until the guest's first step has run `true` (median of --runs);
- in:  staging a --mb MB store tree (one large file plus 2000 small ones) and writing the ext4
  build disk with mke2fs -d;
- step: the guest copying that tree to an output path (`cp -a`) and syncing;
- out: reading the output back to the host with debugfs rdump.
Needs qemu-system-x86 and e2fsprogs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))

EXPR = """
let pkgs = import <dtx> { }; in {
  kernel = pkgs.vmTools.kernel;
  busybox = pkgs.vmTools.initrdTools;
}
"""


def boot_inputs(home: Path) -> tuple[str, str]:
    """Build the kernel package and busybox into `home`; return their host paths."""
    expr = home / "vm-bench.dtx"
    expr.write_text(EXPR)
    env = {**os.environ, "DTX_HOME": str(home)}
    paths = []
    for attr in ("kernel", "busybox"):
        r = subprocess.run([sys.executable, "-m", "dtx.runtime.cli.build", str(expr), "-A", attr,
                            "--no-out-link", "--quiet"], env=env, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            sys.exit(f"cannot build vmTools.{attr}:\n{r.stderr}")
        paths.append(str(home / r.stdout.strip().lstrip("/")))
    return paths[0], paths[1] + "/bin/busybox"


def make_tree(root: Path, mb: int) -> None:
    """One big file of `mb` MB minus 8 MB, and 2000 files of 4 KiB."""
    (root / "small").mkdir(parents=True)
    with open(root / "big", "wb") as f:
        chunk = os.urandom(1 << 20)
        f.writelines(chunk for _ in range(max(1, mb - 8)))
    blob = os.urandom(4096)
    for i in range(2000):
        (root / "small" / f"f{i}").write_bytes(blob)


def run_once(accel: str, kernel: str, rd: str, tree: Path, work: Path, copy: bool) -> dict:
    from dtx.vm import console, disk, qemu
    times = {}
    t = time.perf_counter()
    img = str(work / "disk.img")
    disk.make_build_disk(img, str(work / "stage"), [(str(tree), "aaaa-input")] if copy else [],
                         {"step.sh": b"true\n",
                          "copy.sh": b"cp -a /nix/store/aaaa-input /nix/store/bbbb-output "
                                     b"&& sync\n"},
                         None, (2048 << 20) if copy else 0)
    times["in"] = time.perf_counter() - t
    spec = qemu.VMSpec(kernel=kernel, initrd=rd, disk=img, accel=accel, qemu=qemu.find_qemu())
    guest = console.Guest(qemu.qemu_argv(spec))
    t = time.perf_counter()
    try:
        guest.start()
        guest.wait_ready(time.monotonic() + 120)
        assert guest.run("/nix/.disk/dtx/step.sh", lambda line: None, time.monotonic() + 60) == 0
        times["boot-to-step"] = time.perf_counter() - t
        if copy:
            t = time.perf_counter()
            status = guest.run("/nix/.disk/dtx/copy.sh", print, time.monotonic() + 600)
            assert status == 0, status
            times["step"] = time.perf_counter() - t
        guest.shutdown()
    finally:
        guest.kill()
    if copy:
        t = time.perf_counter()
        assert disk.read_back(img, "/store/bbbb-output", str(work / "back"))
        times["out"] = time.perf_counter() - t
    disk.remove(str(work))
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=100)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--home", default=os.path.join(tempfile.gettempdir(), "dtx-vm-bench-home"))
    args = p.parse_args()
    from dtx.runtime import vmbuild
    from dtx.vm import qemu

    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    kernel_pkg, busybox = boot_inputs(home)
    cache = home / "vm-cache"
    kernel, rd = vmbuild.boot_files(str(cache), kernel_pkg, busybox)
    accels = ["tcg"]
    verdict = qemu.accel_verdict(str(cache / "accel.json"),
                                 lambda: vmbuild.probe_kvm(str(cache), kernel, rd),
                                 lambda m: print(m))
    if verdict == "kvm":
        accels.append("kvm")
    else:
        print("kvm: not used (the boot probe failed or /dev/kvm is not usable)")
    tree = Path(tempfile.mkdtemp(prefix="vm-bench-tree-"))
    make_tree(tree, args.mb)
    try:
        for accel in accels:
            boots = []
            for _ in range(args.runs):
                work = Path(tempfile.mkdtemp(prefix="vm-bench-"))
                boots.append(run_once(accel, kernel, rd, tree, work, False)["boot-to-step"])
            print(f"{accel}: boot-to-step median {statistics.median(boots):.2f} s "
                  f"(runs: {', '.join(f'{b:.2f}' for b in boots)})")
            work = Path(tempfile.mkdtemp(prefix="vm-bench-"))
            t = run_once(accel, kernel, rd, tree, work, True)
            print(f"{accel}: {args.mb} MB (1 file + 2000 x 4 KiB) in {t['in']:.2f} s "
                  f"({args.mb / t['in']:.0f} MB/s), guest copy {t['step']:.2f} s, "
                  f"out {t['out']:.2f} s ({args.mb / t['out']:.0f} MB/s)")
            print(json.dumps({"accel": accel, "boot_to_step_s": statistics.median(boots),
                              **{k + "_s": round(v, 3) for k, v in t.items()}}))
    finally:
        shutil.rmtree(tree, ignore_errors=True)


if __name__ == "__main__":
    main()
