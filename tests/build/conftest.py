"""Fixtures for real builds: a static busybox as the builders' toolbox, a scratch store, and a
way to run `dtx-build` as root and as an ordinary user.

The ordinary user (`dtxtest`, created here if missing) runs Debian's /usr/bin/python3 on a
world-readable copy of dtx and the Python packages it imports, since the project's own
interpreter may live in a directory only root can read.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"
TEST_USER = "dtxtest"
_PACKAGES = ("lark", "requests", "urllib3", "idna", "charset_normalizer", "certifi", "attrs",
             "cattrs", "exceptiongroup", "typing_extensions")


def _need(tool: str, package: str) -> None:
    if not os.path.exists(tool) and shutil.which(tool) is None:
        pytest.fail(f"{tool} is missing: install the Debian package '{package}' "
                    "(install.sh does)")


@pytest.fixture(scope="session")
def unprivileged_runtime():
    """A world-readable directory with dtx and its imports, and the test user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", TEST_USER], check=True)
    base = Path(tempfile.mkdtemp(prefix="dtx-shim-"))
    base.chmod(0o755)
    pkg = base / "dtx"
    pkg.mkdir()
    for name in ("lang", "runtime", "stdlib", "vm"):
        shutil.copytree(ROOT / name, pkg / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in _PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            shutil.copytree(Path(spec.origin).parent, base / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["chmod", "-R", "a+rX", str(base)], check=True)
    yield base
    shutil.rmtree(base, ignore_errors=True)


class Runner:
    """Runs dtx commands against one scratch store, as root or as the test user."""

    def __init__(self, workdir: Path, user: str | None, shim: Path | None):
        self.workdir = workdir
        self.user = user
        self.shim = shim
        self.home = workdir / "dtx-home"
        bb = workdir / "bb" / "bin"
        bb.mkdir(parents=True)
        shutil.copy(BUSYBOX, bb / "busybox")
        (bb / "sh").symlink_to("busybox")
        self.busybox_dir = workdir / "bb"
        if user:
            subprocess.run(["chown", "-R", user, str(workdir)], check=True)

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.write_text(text.replace("@BB@", str(self.busybox_dir)))
        if self.user:
            shutil.chown(path, self.user)
        return path

    def run(self, command: str, *args: str, check: bool = False,
            env: dict | None = None, input: str | None = None) -> subprocess.CompletedProcess:
        module = f"dtx.runtime.cli.{command}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")}
        full_env["DTX_HOME"] = str(self.home)
        full_env.update(env or {})
        if self.user:
            full_env["PYTHONPATH"] = str(self.shim)
            full_env["HOME"] = str(self.workdir)
            argv = ["runuser", "-u", self.user, "--", "env", *[f"{k}={v}" for k, v in
                    full_env.items() if k in ("DTX_HOME", "PYTHONPATH", "HOME", "PATH")
                    or k.startswith("DTX_")], "/usr/bin/python3", "-m", module, *args]
        else:
            argv = [sys.executable, "-m", module, *args]
        result = subprocess.run(argv, cwd=self.workdir, env=full_env, capture_output=True,
                                text=True, timeout=600, input=input)
        if check and result.returncode != 0:
            raise AssertionError(f"{command} {' '.join(args)} failed:\n{result.stderr}")
        return result

    def interrupt_build(self, command: str) -> subprocess.CompletedProcess:
        """Run a dtx command (as root) until a build has started, then press Ctrl-C (SIGINT);
        return how it ended."""
        env = dict(os.environ, DTX_HOME=str(self.home))
        proc = subprocess.Popen([sys.executable, "-m", f"dtx.runtime.cli.{command}"],
                                cwd=self.workdir, env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        builds = self.builds_dir()
        while time.monotonic() < deadline and not (builds.exists() and any(builds.iterdir())):
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)

    def builds_dir(self) -> Path:
        """Where builds keep their scratch directories."""
        return self.home / "nix" / "var" / "nix" / "builds"

    def real(self, logical: str) -> Path:
        return self.home / logical.lstrip("/")


@pytest.fixture(params=["root", "user"])
def dtx(request, tmp_path_factory, unprivileged_runtime) -> Runner:
    """A Runner for each way of running dtx: as root and as an ordinary user."""
    _need(BUSYBOX, "busybox-static")
    _need("bwrap", "bubblewrap")
    workdir = Path(tempfile.mkdtemp(prefix="dtx-build-test-"))
    workdir.chmod(0o755)
    if request.param == "user":
        if os.geteuid() != 0:
            runner = Runner(workdir, None, None)  # already an ordinary user
        else:
            runner = Runner(workdir, TEST_USER, unprivileged_runtime)
    else:
        if os.geteuid() != 0:
            pytest.skip("needs root for the root variant (the suite runs as root in CI)")
        runner = Runner(workdir, None, None)
    yield runner
    subprocess.run(["chmod", "-R", "u+w", str(workdir)])
    shutil.rmtree(workdir, ignore_errors=True)
