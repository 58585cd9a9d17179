"""The build sandbox: a plan (`SandboxSpec`) and its translation to a bubblewrap command line.

A builder sees, as Nix's sandbox shows it:
- the logical store directory (`/nix/store`) as a writable directory holding read-only bind
  mounts of its input closure and nothing else; outputs are created there and land in a scratch
  directory on the host, from which the build moves them into the store;
- `/build` (its build directory, also `$NIX_BUILD_TOP` and `$TMPDIR`), a minimal `/dev`, `/proc`,
  and `/etc/passwd`, `/etc/group`, `/etc/hosts` describing a single build user `nixbld`
  (uid 1000, gid 100);
- fresh mount, PID, IPC, UTS, user and network namespaces: only the loopback interface, unless
  the derivation is fixed-output (its result is checked against a hash, so it may use the
  network, and sees the host's `/etc/resolv.conf` and `/etc/services`).

`bwrap_argv` is a pure function of the spec, so what a sandbox will see is unit-testable without
running anything; `probe` tells whether bubblewrap works on this host at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

BUILD_UID = 1000
BUILD_GID = 100
BUILD_DIR = "/build"

PASSWD = (f"root:x:0:0:Nix build user:{BUILD_DIR}:/noshell\n"
          f"nixbld:x:{BUILD_UID}:{BUILD_GID}:Nix build user:{BUILD_DIR}:/noshell\n"
          "nobody:x:65534:65534:Nobody:/:/noshell\n")
GROUP = f"root:x:0:\nnixbld:!:{BUILD_GID}:\nnogroup:x:65534:\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"


class SandboxUnavailable(Exception):
    pass


@dataclass
class SandboxSpec:
    """What one build's sandbox contains; paths on the host are absolute."""

    argv: list[str]  # the builder and its arguments, as the builder sees them
    env: dict[str, str]
    store_dir: str  # the logical store directory
    store_scratch: str  # host directory mounted writable at store_dir (outputs land here)
    build_dir: str  # host directory mounted at /build
    etc_dir: str  # host directory holding passwd, group and hosts
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (host path, logical path)
    network: bool = False
    extra_ro: list[tuple[str, str]] = field(default_factory=list)  # e.g. resolv.conf


def write_etc(etc_dir: str) -> None:
    """Write the sandbox's /etc files into `etc_dir`."""
    os.makedirs(etc_dir, exist_ok=True)
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("hosts", HOSTS)):
        with open(os.path.join(etc_dir, name), "w") as f:
            f.write(text)


def bwrap_argv(spec: SandboxSpec, bwrap: str = "bwrap") -> list[str]:
    """Translate a sandbox plan into the bubblewrap command that realises it."""
    argv = [bwrap, "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts",
            "--unshare-cgroup-try"]
    if not spec.network:
        argv.append("--unshare-net")
    argv += ["--die-with-parent", "--new-session",
             "--uid", str(BUILD_UID), "--gid", str(BUILD_GID), "--hostname", "localhost",
             "--tmpfs", "/", "--dev", "/dev", "--proc", "/proc",
             "--bind", spec.store_scratch, spec.store_dir]
    for host, logical in spec.inputs:
        argv += ["--ro-bind", host, logical]
    argv += ["--bind", spec.build_dir, BUILD_DIR]
    for name in ("passwd", "group", "hosts"):
        argv += ["--ro-bind", os.path.join(spec.etc_dir, name), f"/etc/{name}"]
    for host, inside in spec.extra_ro:
        argv += ["--ro-bind-try", host, inside]
    argv += ["--chdir", BUILD_DIR, "--clearenv"]
    for key in sorted(spec.env):
        argv += ["--setenv", key, spec.env[key]]
    argv += ["--"] + spec.argv
    return argv


_probe_result: str | None = None


def find_bwrap() -> str:
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed; install the 'bubblewrap' "
                                 "package")
    return path


def probe() -> str:
    """Check once that bubblewrap can create the sandbox's namespaces here; return bwrap's
    path or raise SandboxUnavailable saying why not."""
    global _probe_result
    if _probe_result is not None:
        return _probe_result
    bwrap = find_bwrap()
    result = subprocess.run(
        [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc",
         "--unshare-uts", "--uid", str(BUILD_UID), "--gid", str(BUILD_GID),
         "--ro-bind", "/", "/", "--", "/bin/true" if os.path.exists("/bin/true") else "true"],
        capture_output=True, text=True)
    if result.returncode != 0:
        why = result.stderr.strip() or f"exit status {result.returncode}"
        raise SandboxUnavailable(
            "cannot create a build sandbox: bubblewrap failed to set up user namespaces "
            f"({why}). Run dtx as root, or enable unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces)")
    _probe_result = bwrap
    return bwrap
