"""Podman for the image tests, on a machine without a Docker daemon.

What it takes (DESIGN.md, Tooling facts): `/etc/containers/containers.conf` with
`[containers]` / `default_ulimits = []` (crun otherwise fails to set RLIMIT_NOFILE), containers
run with `--runtime runc`, and each test its own `--root`/`--runroot`, so tests never share image
storage and can run side by side. `ensure_containers_conf` adds the setting when it is missing
(run as root); `Podman(dir)` runs podman against storage under `dir`.

Usable on its own: `python3 tests/docker/podman_setup.py` writes the configuration and checks
that podman, runc, skopeo and umoci are there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CONTAINERS_CONF = Path("/etc/containers/containers.conf")
TOOLS = {"podman": "podman", "runc": "runc", "skopeo": "skopeo", "umoci": "umoci"}


def missing_tools() -> list[str]:
    """The Debian packages whose programs are not on PATH."""
    return [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]


def ensure_containers_conf(path: Path = CONTAINERS_CONF) -> None:
    """Make sure `[containers]` in containers.conf sets `default_ulimits = []`."""
    text = path.read_text() if path.exists() else ""
    if re.search(r"(?m)^\s*default_ulimits\s*=\s*\[\s*\]", text):
        return
    if re.search(r"(?m)^\s*default_ulimits\s*=", text):
        text = re.sub(r"(?m)^\s*default_ulimits\s*=.*$", "default_ulimits = []", text)
    elif re.search(r"(?m)^\s*\[containers\]\s*$", text):
        text = re.sub(r"(?m)^\s*\[containers\]\s*$", "[containers]\ndefault_ulimits = []",
                      text, count=1)
    else:
        text += ("\n" if text and not text.endswith("\n") else "") + \
            "[containers]\ndefault_ulimits = []\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Podman:
    """podman with private storage under `base` and runc as the runtime."""

    def __init__(self, base: Path):
        self.base = Path(base)
        self.root = self.base / "root"
        self.runroot = self.base / "runroot"
        self.root.mkdir(parents=True, exist_ok=True)
        self.runroot.mkdir(parents=True, exist_ok=True)

    def argv(self, *args: str) -> list[str]:
        return ["podman", "--root", str(self.root), "--runroot", str(self.runroot),
                "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                "--events-backend", "none", *args]

    def __call__(self, *args: str, check: bool = True, timeout: float = 300,
                 input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(self.argv(*args), capture_output=True, text=True,
                                timeout=timeout, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def load(self, archive: str | Path) -> str:
        """Load a docker-archive; return podman's output (it names the loaded image)."""
        return self("load", "-i", str(archive)).stdout

    def run(self, image: str, *args: str, options: tuple[str, ...] = (),
            check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return self("run", "--rm", "--runtime", "runc", "--network", "none", *options, image,
                    *args, check=check, timeout=timeout)

    def cleanup(self) -> None:
        """Stop what runs, then delete the storage (as `podman system reset` would)."""
        self("rm", "--all", "--force", check=False, timeout=120)
        self("rmi", "--all", "--force", check=False, timeout=120)
        subprocess.run(["chmod", "-R", "u+w", str(self.base)], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def main() -> int:
    missing = missing_tools()
    if missing:
        print("missing Debian packages: " + " ".join(missing), file=sys.stderr)
        return 1
    if os.geteuid() == 0:
        ensure_containers_conf()
        print(f"{CONTAINERS_CONF}: default_ulimits = [] is set")
    else:
        print("not root: leaving containers.conf alone", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
