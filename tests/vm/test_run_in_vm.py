"""`vmTools.runInLinuxVM` end to end: real QEMU guests booted by `dtx-build`.

Each boot costs several seconds under TCG, so the module shares one DTX_HOME (the kernel and
busybox are fetched and the initrd made once) and boots five guests in all. Run as root: the
ownership checks need it (as an ordinary user, files come back owned by that user). The
accelerator is forced to TCG unless DTX_VM_ACCEL says otherwise, so no KVM probe runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="needs qemu-system-x86 (see tests/vm/README.md)")

EXPR = r'''
let
  pkgs = import <dtx> { };
  inherit (pkgs) vmTools;
in {
  owners = vmTools.runInLinuxVMCommand "vm-owners" {
    preVM = vmTools.createEmptyImage { size = 8; fullName = "scratch disk"; };
  } ''
    echo "guest $(uname -r) uid $(id -u)"
    echo written-by-guest | dd of=/dev/${vmTools.hd} conv=notrunc 2>/dev/null
    mkdir -p $out/sub
    echo data > $out/owned
    chown 999:999 $out/owned
    ln -s owned $out/link
    ln -s /nix/store/nowhere $out/sub/abs
    # what image builders do: an overlay whose upper directory gets a whiteout
    mkdir /tmp/l /tmp/u /tmp/w /tmp/m && echo x > /tmp/l/gone
    mount -t overlay overlay -o lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w /tmp/m
    rm /tmp/m/gone && [ -c /tmp/u/gone ] && echo whiteout-made > $out/overlay
  '';
  whiteout = vmTools.runInLinuxVMCommand "vm-whiteout" { } ''
    mkdir -p $out
    mknod $out/gone c 0 0
  '';
  fail = vmTools.runInLinuxVMCommand "vm-fail" { } ''
    echo "about to fail"
    exit 7
  '';
  hang = vmTools.runInLinuxVMCommand "vm-hang" { vmTimeout = 20; } ''
    echo "hanging now"
    sleep 1000
  '';
  interrupted = vmTools.runInLinuxVMCommand "vm-interrupted" { } ''
    echo "waiting for ctrl-c"
    sleep 1000
  '';
}
'''


def qemu_count(home: Path) -> int:
    """The QEMU processes of builds in the store at `home` (their disks live under it), so
    that VMs of anything else running on the machine are not counted."""
    pattern = "qemu-system-x86_64.*" + re.escape(str(home))
    out = subprocess.run(["pgrep", "-c", "-f", pattern], capture_output=True,
                         text=True, check=False).stdout.strip()
    return int(out or 0)


class VMBuilds:
    def __init__(self, base: Path):
        self.base = base
        self.home = base / "home"
        self.file = base / "vm.dtx"
        self.file.write_text(EXPR)

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
        env["DTX_HOME"] = str(self.home)
        env["DTX_VM_ACCEL"] = os.environ.get("DTX_VM_ACCEL", "tcg")
        return env

    def argv(self, attr: str) -> list[str]:
        return [sys.executable, "-m", "dtx.runtime.cli.build", str(self.file), "-A", attr,
                "-o", str(self.base / f"result-{attr}")]

    def build(self, attr: str) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(attr), env=self.env(), capture_output=True, text=True,
                              timeout=900, cwd=self.base, check=False)

    def read_log(self, drv_hint: str) -> str:
        logs = list((self.home / "nix" / "var" / "nix" / "log" / "drvs").rglob(f"*{drv_hint}*"))
        return logs[0].read_text() if logs else ""


@pytest.fixture(scope="module")
def vm():
    base = Path(tempfile.mkdtemp(prefix="dtx-vm-test-"))
    yield VMBuilds(base)
    subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
    shutil.rmtree(base, ignore_errors=True)


def test_outputs_come_back_with_owners_symlinks_and_disk_image(vm):
    r = vm.build("owners")
    assert r.returncode == 0, r.stderr
    out = Path(os.readlink(vm.base / "result-owners"))
    assert "guest 6.1" in r.stderr and "uid 0" in r.stderr
    assert (out / "owned").read_text() == "data\n"
    assert os.readlink(out / "link") == "owned"
    assert os.readlink(out / "sub" / "abs") == "/nix/store/nowhere"
    if os.geteuid() == 0:
        st = os.lstat(out / "owned")
        assert (st.st_uid, st.st_gid) == (999, 999)
    # preVM made the disk image under $out on the host; the guest wrote to it as /dev/vda.
    with open(out / "disk-image.img", "rb") as f:
        assert f.read(16) == b"written-by-guest"
    assert (out / "nix-support" / "full-name").read_text() == "scratch disk\n"
    assert (out / "overlay").read_text() == "whiteout-made\n"
    assert qemu_count(vm.home) == 0


def test_device_nodes_in_outputs_are_refused(vm):
    r = vm.build("whiteout")
    assert r.returncode != 0
    assert "character device" in r.stderr and "/gone' (0:0)" in r.stderr
    assert "archive such trees" in r.stderr


def test_failing_step_fails_the_build_with_its_status_and_log(vm):
    r = vm.build("fail")
    assert r.returncode != 0
    assert "failed in the VM with exit code 7" in r.stderr
    assert "about to fail" in r.stderr
    assert "about to fail" in vm.read_log("vm-fail")
    assert qemu_count(vm.home) == 0


def test_hanging_step_is_killed_at_its_timeout(vm):
    start = time.monotonic()
    r = vm.build("hang")
    assert r.returncode != 0
    assert "timed out after 20 seconds" in r.stderr
    assert "hanging now" in r.stderr
    assert time.monotonic() - start < 120
    assert qemu_count(vm.home) == 0


def test_ctrl_c_kills_the_guest(vm):
    proc = subprocess.Popen(vm.argv("interrupted"), env=vm.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd=vm.base,
                            # a background job may inherit SIGINT ignored; Python then never
                            # raises KeyboardInterrupt
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    seen = b""
    deadline = time.monotonic() + 300
    while b"waiting for ctrl-c" not in seen and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
    assert b"waiting for ctrl-c" in seen, seen.decode()
    assert qemu_count(vm.home) == 1
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0 and b"interrupted" in rest
    time.sleep(0.5)
    assert qemu_count(vm.home) == 0
