"""docs/tutorial.md runs as written: every command of its ```console blocks, in order, in one
scratch working directory (holding a link to examples/) against one scratch store, with the
output compared to what the tutorial shows.

The rules (the tutorial states them too):
- A line starting with `$ ` is a command; a command with a here-document (`<<'EOF'`) goes on to
  the closing `EOF` line. The other lines up to the next command are its expected output:
  standard output and standard error together. No lines shown means no output.
- In an expected line, `…` matches any text; a line holding only `…` matches any number of lines.
  Blank lines at the end of an output are ignored.
- A command may fail only when its shown output has a line starting with `error:`, and then it
  must fail.

Commands run with bash (`-o pipefail`), `DTX_HOME` pointing at the scratch store and podman
using private storage (vfs) configured by CONTAINERS_STORAGE_CONF / CONTAINERS_CONF.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"


@dataclass
class Command:
    line: int  # in tutorial.md, 1-based
    text: str
    expected: list[str] = field(default_factory=list)


def commands(text: str) -> list[Command]:
    """The commands of the ```console blocks, with their expected outputs."""
    out: list[Command] = []
    lines = text.splitlines()
    i = 0
    in_block = False
    while i < len(lines):
        line = lines[i]
        if not in_block:
            in_block = line.strip() == "```console"
            i += 1
            continue
        if line.strip() == "```":
            in_block = False
            i += 1
            continue
        if line.startswith("$ "):
            cmd = Command(i + 1, line[2:])
            m = re.search(r"<<-?'?(\w+)'?", cmd.text)
            if m:
                end = m.group(1)
                i += 1
                while lines[i] != end:
                    cmd.text += "\n" + lines[i]
                    i += 1
                cmd.text += "\n" + end
            out.append(cmd)
        elif out:
            out[-1].expected.append(line)
        else:
            raise AssertionError(f"tutorial.md:{i + 1}: output before any command")
        i += 1
    return out


def _line_pattern(expected: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(p) for p in expected.split("…")) + r"\Z")


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether the output lines `actual` fit the shown lines `expected` (`…` rules above)."""
    def go(e: int, a: int) -> bool:
        if e == len(expected):
            return a == len(actual)
        if expected[e].strip() == "…":
            return any(go(e + 1, k) for k in range(a, len(actual) + 1))
        return (a < len(actual) and _line_pattern(expected[e]).match(actual[a]) is not None
                and go(e + 1, a + 1))
    return go(0, 0)


def test_matching_rules():
    assert matches(["a", "…", "/nix/store/…-x"], ["a", "b", "c", "/nix/store/abc-x"])
    assert matches(["…"], [])
    assert not matches([], ["out"])
    assert not matches(["a…"], ["b"])
    cmds = commands("```console\n$ cat > f <<'EOF'\nx\nEOF\n$ cat f\nx\n```\n")
    assert [(c.text, c.expected) for c in cmds] == [("cat > f <<'EOF'\nx\nEOF", []),
                                                     ("cat f", ["x"])]


@pytest.fixture
def scratch(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    podman = tmp_path / "podman"
    podman.mkdir()
    (podman / "storage.conf").write_text(
        f'[storage]\ndriver = "vfs"\ngraphroot = "{podman}/root"\nrunroot = "{podman}/run"\n')
    (podman / "containers.conf").write_text(
        '[containers]\ndefault_ulimits = []\n\n'
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n')
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DTX_") or k == "DTX_DEBIAN_MIRROR"}
    env.update(DTX_HOME=str(tmp_path / "store"), XDG_STATE_HOME=str(tmp_path / "state"),
               CONTAINERS_STORAGE_CONF=str(podman / "storage.conf"),
               CONTAINERS_CONF=str(podman / "containers.conf"), NO_COLOR="1")
    yield work, env
    for args in (["rm", "--all", "--force"], ["rmi", "--all", "--force"]):
        subprocess.run(["podman", *args], env=env, capture_output=True, timeout=120, check=False)
    subprocess.run(["chmod", "-R", "u+w", str(tmp_path)], capture_output=True, check=False)


def test_tutorial(scratch):
    missing = [t for t in ("bwrap", "podman", "runc") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the tutorial needs {', '.join(missing)} (install.sh installs them)")
    work, env = scratch
    cmds = commands(TUTORIAL.read_text(encoding="utf-8"))
    assert len(cmds) > 30
    started = time.monotonic()
    for cmd in cmds:
        r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd.text], cwd=work, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600, check=False)
        actual = r.stdout.rstrip("\n").splitlines()
        where = f"tutorial.md:{cmd.line}: $ {cmd.text.splitlines()[0]}"
        fails = any(e.startswith("error:") for e in cmd.expected)
        assert (r.returncode != 0) == fails, \
            f"{where}\nexit status {r.returncode}, output:\n{r.stdout[-3000:]}"
        assert matches(cmd.expected, actual), (
            f"{where}\nshown:\n" + "\n".join(cmd.expected) + "\ngot:\n" + r.stdout[-3000:])
    assert time.monotonic() - started < 240, "the tutorial takes more than four minutes"
