"""Fixtures for the image tests: scratch stores, a busybox stand-in, podman with private storage.

The builds run `dtx-build` as root (podman needs it here) against a store under a temporary
DTX_HOME. Each image expression gets `@BB@`, a directory holding a copy of the host's static
busybox and a `bin/sh` link, which `builtins.path` imports as the images' toolbox, so the tests
need no package from the package set except where they say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from podman_setup import Podman, ensure_containers_conf, missing_tools  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"


class Builder:
    """Runs `dtx-build` against one scratch store."""

    def __init__(self, workdir: Path, name: str = "dtx-home"):
        self.workdir = workdir
        self.home = workdir / name
        bb = workdir / "bb" / "bin"
        if not bb.exists():
            bb.mkdir(parents=True)
            shutil.copy(BUSYBOX, bb / "busybox")
            (bb / "sh").symlink_to("busybox")

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text.replace("@BB@", str(self.workdir / "bb")))
        return path

    def build(self, file: Path, *args: str, check: bool = True,
              link: bool = False) -> subprocess.CompletedProcess:
        """Run dtx-build; with `link`, leave a `result` link in the work directory."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
        env["DTX_HOME"] = str(self.home)
        result = subprocess.run([sys.executable, "-m", "dtx.runtime.cli.build", str(file),
                                 *([] if link else ["--no-out-link"]), "-j", "4", *args],
                                cwd=self.workdir, env=env, capture_output=True, text=True,
                                timeout=1200)
        if check and result.returncode != 0:
            raise AssertionError(f"dtx-build {file.name} {' '.join(args)} failed:\n"
                                 f"{result.stderr[-4000:]}")
        return result

    def out(self, file: Path, attr: str) -> Path:
        """Build `attr` of `file`; return the physical path of its output."""
        result = self.build(file, "-A", attr)
        logical = result.stdout.strip().splitlines()[-1]
        return self.home / logical.lstrip("/")


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="dtx-docker-test-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["chmod", "-R", "u+w", str(path)])
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def builder(workdir) -> Builder:
    if not os.path.exists(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing: install the Debian package 'busybox-static'")
    if shutil.which("bwrap") is None:
        pytest.fail("bwrap is missing: install the Debian package 'bubblewrap'")
    return Builder(workdir)


def _need_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail("missing Debian packages for the image tests: " + " ".join(missing) +
                    " (see tests/docker/README.md)")


@pytest.fixture
def tools():
    _need_tools()


@pytest.fixture
def podman(workdir) -> Podman:
    _need_tools()
    if os.geteuid() != 0:
        pytest.skip("podman tests run as root (the suite runs as root in CI)")
    ensure_containers_conf()
    p = Podman(workdir / "podman")
    yield p
    p.cleanup()
