"""QEMU command lines as data, and the probe that decides between KVM and TCG.

`qemu_argv(spec)` is a pure function of a `VMSpec`: no file is read and nothing runs, so the
translation is unit-tested on its own (tests/vm/test_qemu.py). The guest gets:
- the kernel (the ELF `vmlinux` when dtx could extract it, booted by PVH, else the bzImage) and
  the initrd, with `console=ttyS0` and the disk names for the guest init (`dtx.disk=`);
- the user's extra disks first (`diskImage`: /dev/vda, as nixpkgs' `vmTools.hd` says), then the
  build's disk (vm/disk.py: the input closure, the build directory, room for the outputs), all
  virtio, raw;
- the serial console on stdio through a chardev with `signal=off` (Ctrl-C reaches dtx, not the
  guest), no display, no network, no reboot (the guest's `reboot -f` ends QEMU).

Acceleration (DESIGN.md, "VM steps"): `/dev/kvm` can exist and pass ioctl checks while guests
hang under it, so KVM is used only after a real boot with a deadline succeeded on this host.
`accel_verdict` caches the verdict per host (host name and kernel release) in a JSON file;
`DTX_VM_ACCEL=kvm|tcg` overrides both probe and cache. The TCG notice is shown when the probe
fails (once per host); each VM build's log names the accelerator it used.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

PROBE_DEADLINE = 8.0


class VMError(Exception):
    """QEMU is missing, or a guest could not be started or driven."""


@dataclass
class VMSpec:
    """Everything that determines the QEMU command line of one guest."""
    kernel: str
    initrd: str
    disk: str
    extra_disks: list[str] = field(default_factory=list)
    accel: str = "tcg"
    memory_mb: int = 512
    cpus: int = 1
    cmdline: list[str] = field(default_factory=list)
    qemu_opts: list[str] = field(default_factory=list)
    qemu: str = "qemu-system-x86_64"


def disk_name(spec: VMSpec) -> str:
    """Return the guest's name of the build's disk (it comes after the extra disks)."""
    return "vd" + chr(ord("a") + len(spec.extra_disks))


def qemu_argv(spec: VMSpec) -> list[str]:
    """Return the argv that boots `spec`."""
    if spec.accel not in ("kvm", "tcg"):
        raise VMError(f"unknown accelerator '{spec.accel}' (expected kvm or tcg)")
    append = ["console=ttyS0", "quiet", "loglevel=1", "panic=-1", "reboot=t",
              f"dtx.disk={disk_name(spec)}", *spec.cmdline]
    machine = "q35,accel=kvm" if spec.accel == "kvm" else "q35,accel=tcg"
    argv = [spec.qemu, "-machine", machine, "-m", str(spec.memory_mb),
            "-smp", str(spec.cpus), "-nodefaults", "-no-user-config", "-no-reboot",
            "-display", "none", "-vga", "none", "-nic", "none"]
    if spec.accel == "kvm":
        argv += ["-cpu", "host"]
    argv += ["-kernel", spec.kernel, "-initrd", spec.initrd, "-append", " ".join(append)]
    for disk in spec.extra_disks:
        argv += ["-drive", f"file={disk},format=raw,if=virtio,cache=unsafe,werror=report"]
    argv += ["-drive", f"file={spec.disk},format=raw,if=virtio,cache=unsafe,werror=report",
             "-chardev", "stdio,id=s0,signal=off", "-serial", "chardev:s0",
             *spec.qemu_opts]
    return argv


def find_qemu() -> str:
    """Return the path of qemu-system-x86_64, or raise a VMError naming the package."""
    found = shutil.which("qemu-system-x86_64")
    if found is None:
        raise VMError("qemu-system-x86_64 is not installed (Debian package qemu-system-x86)")
    return found


# -- acceleration -------------------------------------------------------------------------------

def host_key() -> str:
    """Identify this host (and its kernel) for the cached KVM verdict."""
    u = os.uname()
    return f"{u.nodename} {u.release} {u.version}"


def kvm_usable() -> bool:
    """Tell whether /dev/kvm exists and this user may open it (the probe is still needed)."""
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


_notices: set[str] = set()


def notice_once(message: str, show: Callable[[str], None] | None = None) -> None:
    """Show `message` once per process (on stderr unless `show` is given)."""
    if message in _notices:
        return
    _notices.add(message)
    (show or (lambda m: print(m, file=sys.stderr)))(message)


def accel_verdict(cache_file: str, probe: Callable[[], bool],
                  show: Callable[[str], None] | None = None) -> str:
    """Return "kvm" or "tcg" for this host: `DTX_VM_ACCEL` first, then the cached verdict, else
    run `probe` (a real boot with a deadline) when /dev/kvm is usable and cache its result."""
    forced = os.environ.get("DTX_VM_ACCEL", "")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise VMError(f"DTX_VM_ACCEL must be 'kvm' or 'tcg', not '{forced}'")
        return forced
    if not kvm_usable():
        notice_once("notice: /dev/kvm is not usable; VM steps run under software emulation "
                    "(TCG), which is slower", show)
        return "tcg"
    key = host_key()
    cache: dict = {}
    try:
        with open(cache_file) as f:
            cache = json.load(f)
    except (OSError, ValueError):
        pass
    verdict = cache.get(key)
    if verdict not in ("kvm", "tcg"):
        verdict = "kvm" if probe() else "tcg"
        cache[key] = verdict
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
        tmp = f"{cache_file}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(cache, f, indent=1, sort_keys=True)
        os.replace(tmp, cache_file)
        if verdict == "tcg":
            notice_once(f"notice: KVM did not boot a test guest within {PROBE_DEADLINE:g} s on "
                        "this host; VM steps run under software emulation (TCG), which is slower "
                        f"(verdict cached in {cache_file}; DTX_VM_ACCEL=kvm|tcg overrides it)",
                        show)
    return verdict
