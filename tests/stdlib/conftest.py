"""Fixtures for real builds of the stdlib: one scratch store shared by the whole session (the
bootstrap tools are fetched and stdenv is built once), and helpers that run `dtx-build`,
`dtx-instantiate` and `dtx-store` against it through their command-line entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


class Store:
    """Runs dtx commands against one scratch store (`DTX_HOME`), in a scratch directory."""

    def __init__(self, home: Path, workdir: Path):
        self.home = home
        self.workdir = workdir

    def write(self, name: str, text: str) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run(self, command: str, *args: str, check: bool = False,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DTX_")
               or k == "DTX_DEBIAN_MIRROR"}
        env["DTX_HOME"] = str(self.home)
        result = subprocess.run([sys.executable, "-m", f"dtx.runtime.cli.{command}", *args],
                                cwd=cwd or self.workdir, env=env, capture_output=True,
                                text=True, timeout=600, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"dtx-{command} {' '.join(args)} failed:\n{result.stderr}")
        return result

    def build(self, *args: str) -> list[str]:
        """Build (with `--no-out-link`) and return the output paths printed."""
        r = self.run("build", "--no-out-link", *args, check=True)
        return [line for line in r.stdout.splitlines() if line.startswith("/")]

    def build_attrs(self, file: str, attrs: list[str]) -> dict[str, str]:
        """Build several attributes of a file at once; return attribute → output path."""
        args = [a for attr in attrs for a in ("-A", attr)]
        self.build(file, *args)
        expr = ("f: let lib = import <dtx/lib>; in builtins.listToAttrs (map (n: { name = n; "
                "value = (lib.getAttrFromPath (lib.splitString \".\" n) f).outPath; }) [ %s ])")
        names = " ".join(json.dumps(a) for a in attrs)
        r = self.run("instantiate", "--eval", "--strict", "--json", "-E",
                     f"({expr % names}) (import ./{file})", check=True)
        return json.loads(r.stdout)

    def eval(self, expr: str, *args: str) -> object:
        """Evaluate an expression strictly and return it decoded from JSON."""
        r = self.run("instantiate", "--eval", "--strict", "--json", "-E", expr, *args)
        if r.returncode != 0:
            raise AssertionError(f"evaluation failed:\n{r.stderr}")
        return json.loads(r.stdout)

    def real(self, logical: str) -> Path:
        return self.home / logical.lstrip("/")


@pytest.fixture(scope="session")
def store():
    """A scratch store for the session; removed afterwards."""
    if shutil.which("bwrap") is None:
        pytest.fail("bwrap is missing: install the Debian package 'bubblewrap' (install.sh does)")
    base = Path(tempfile.mkdtemp(prefix="dtx-stdlib-test-"))
    base.chmod(0o755)
    workdir = base / "work"
    workdir.mkdir()
    yield Store(base / "home", workdir)
    subprocess.run(["chmod", "-R", "u+w", str(base)], check=False)
    shutil.rmtree(base, ignore_errors=True)
