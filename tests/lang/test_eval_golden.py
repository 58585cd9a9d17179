"""Golden tests of the evaluator, in source form, as in Nix's own `tests/functional/lang`.

Layout (every pair is picked up automatically; nothing needs registering):

- `eval-okay/NAME.nix` with `NAME.exp`: the expected output of `--eval --strict` (one line, as
  `nix-instantiate --eval --strict` prints it);
- `eval-fail/NAME.nix` with `NAME.err.exp`: the expected error, reduced to its first line
  (`error: …`) and its position line (`at FILE:LINE:COL:`) when there is one — the code frame and
  traces are left out, since they only repeat the position;
- `notyetpassing/NAME.nix` with either `NAME.exp` or `NAME.err.exp`: known gaps in dtx (none at
  present; the folder is then absent). They run as `xfail(strict=True)`, so a case that starts
  passing fails the run until it is moved to `eval-okay/` or `eval-fail/`;
- `eval-okay/lib/` holds files the cases import; the runner ignores subfolders.

Stable positions and paths: files are evaluated under their real absolute path, and every
occurrence of the absolute path of `tests/lang` in the output or error is replaced by
`/pwd/lang`, so `.exp` files read `/pwd/lang/eval-okay/lib` and
`at /pwd/lang/eval-fail/NAME.nix:2:8:` on every machine.

The expected files come from the oracle, Nix 2.8:

- `DTX_ACCEPT=nix pytest tests/lang/test_eval_golden.py` rewrites every `.exp` / `.err.exp`
  (those named in `DTX_WORDING` excepted) from `nix-instantiate`; this is how they are made;
- `DTX_ACCEPT=1 pytest …` rewrites them from dtx instead, for the few places where dtx's
  output legitimately differs (list them in `DTX_WORDING`, where the oracle test only compares
  the first line); review the diff before committing;
- `test_okay_matches_nix` / `test_fail_matches_nix` compare the checked-in files with a live
  `nix-instantiate` when it is on PATH (all files in one batched call), so the corpus cannot
  drift from Nix.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from dtx.lang.errors import ParseError
from dtx.runtime.builtins.control import deep_force
from dtx.runtime.errors import EvalError
from dtx.runtime.eval import Evaluator, run_deep
from dtx.runtime.glue import attach_store
from dtx.runtime.printer import print_value
from dtx.runtime.store import LocalStore

LANG_DIR = Path(__file__).resolve().parent
OKAY_DIR = LANG_DIR / "eval-okay"
FAIL_DIR = LANG_DIR / "eval-fail"
GAPS_DIR = LANG_DIR / "notyetpassing"
PLACEHOLDER = "/pwd/lang"
ACCEPT = os.environ.get("DTX_ACCEPT", "")
NIX = shutil.which("nix-instantiate")
# As `dtx-instantiate --eval` does, the cases see a read-only store: paths that are interpolated
# get their store paths, and nothing is written (its root is an empty directory of the run's).
_STORE_ROOT = tempfile.TemporaryDirectory(prefix="dtx-golden-")

# eval-fail cases whose .err.exp holds dtx's output rather than Nix's, and why. All of them are
# errors Nix 2.8 reports without a position where dtx gives one; the oracle test still checks
# that their first line is Nix's.
DTX_WORDING: dict[str, str] = {
    name: "dtx reports a position, Nix 2.8 none"
    for name in ("abort", "compare-attrs", "compare-function-equal-strict", "compare-int-string",
                 "dynamic-attr-not-string", "not-a-bool-not", "precedence-has-attr-update",
                 "update-not-set", "with-not-set")
}


def _cases(directory: Path) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.nix"))


def _normalise(text: str) -> str:
    return text.replace(str(LANG_DIR), PLACEHOLDER).rstrip("\n")


def summarise_error(text: str) -> str:
    """Reduce a rendered error to its first line and its position line."""
    lines = text.splitlines()
    out = [lines[0].rstrip()] if lines else [""]
    # The position line follows the message after one blank line; a multi-line message has none.
    for line in lines[1:4]:
        if re.match(r"\s+at .*:\d+:\d+:$", line):
            out.append(line.strip())
            break
    return _normalise("\n".join(out))


def eval_dtx(path: Path) -> tuple[bool, str]:
    """Evaluate a file strictly with dtx; return (ok, printed value or summarised error)."""
    ev = Evaluator()
    attach_store(ev, LocalStore(_STORE_ROOT.name, read_only=True))
    ev.trace_out = io.StringIO()

    def run():
        v = ev.eval_file(str(path))
        deep_force(v)
        return print_value(v, strict=True)

    try:
        return True, _normalise(run_deep(run))
    except ParseError as e:
        return False, summarise_error(str(e))
    except EvalError as e:
        return False, summarise_error(e.render())


def eval_nix(paths: list[Path]) -> dict[Path, tuple[bool, str]]:
    """Evaluate files with nix-instantiate, in one call when they all succeed."""
    out: dict[Path, tuple[bool, str]] = {}
    if len(paths) > 1:
        r = subprocess.run([NIX, "--eval", "--strict", *map(str, paths)], capture_output=True,
                           text=True, cwd=LANG_DIR)
        lines = r.stdout.splitlines()
        if r.returncode == 0 and len(lines) == len(paths):
            return {p: (True, _normalise(line)) for p, line in zip(paths, lines)}
    for p in paths:
        r = subprocess.run([NIX, "--eval", "--strict", str(p)], capture_output=True, text=True,
                           cwd=LANG_DIR)
        if r.returncode == 0:
            out[p] = (True, _normalise(r.stdout))
        else:
            out[p] = (False, summarise_error(r.stderr))
    return out


def _expected_file(directory: Path, name: str) -> Path:
    okay = directory / f"{name}.exp"
    return okay if okay.exists() or directory == OKAY_DIR else directory / f"{name}.err.exp"


def _check(directory: Path, name: str) -> None:
    path = directory / f"{name}.nix"
    exp_file = _expected_file(directory, name)
    ok, got = eval_dtx(path)
    if ACCEPT == "1" and directory != GAPS_DIR:
        exp_file.write_text(got + "\n")
        return
    if ACCEPT == "nix" and NIX and name not in DTX_WORDING:
        _, want = eval_nix([path])[path]
        exp_file.write_text(want + "\n")
    want_ok = exp_file.name.endswith(".exp") and not exp_file.name.endswith(".err.exp")
    want = exp_file.read_text().rstrip("\n")
    if want_ok:
        assert ok, f"{name} failed:\n{got}"
    else:
        assert not ok, f"{name} should fail but evaluated to:\n{got}"
    assert got == want


@pytest.mark.parametrize("name", _cases(OKAY_DIR))
def test_eval_okay(name):
    _check(OKAY_DIR, name)


@pytest.mark.parametrize("name", _cases(FAIL_DIR))
def test_eval_fail(name):
    _check(FAIL_DIR, name)


if _cases(GAPS_DIR):  # no gaps, no test (an empty parameter list would be a skip)
    @pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True))
                                      for n in _cases(GAPS_DIR)])
    def test_not_yet_passing(name):
        _check(GAPS_DIR, name)


def test_every_case_has_expected_output():
    for directory in (OKAY_DIR, FAIL_DIR, GAPS_DIR):
        for name in _cases(directory):
            assert (_expected_file(directory, name)).exists(), f"{directory.name}/{name}"


needs_nix = pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")


@needs_nix
def test_okay_matches_nix():
    paths = [OKAY_DIR / f"{n}.nix" for n in _cases(OKAY_DIR)]
    got = eval_nix(paths)
    wrong = [p.stem for p in paths
             if got[p] != (True, (p.with_suffix(".exp")).read_text().rstrip("\n"))]
    assert not wrong, f"Nix disagrees with these .exp files: {wrong}"


@needs_nix
def test_fail_matches_nix():
    wrong = []
    for directory in (FAIL_DIR, GAPS_DIR):
        for name in _cases(directory):
            exp_file = _expected_file(directory, name)
            if not exp_file.name.endswith(".err.exp"):
                continue
            path = directory / f"{name}.nix"
            ok, got = eval_nix([path])[path]
            want = exp_file.read_text().rstrip("\n")
            if name in DTX_WORDING:
                want = want.splitlines()[0]
            if ok or got != want:
                wrong.append(f"{directory.name}/{name}")
    assert not wrong, f"Nix disagrees with these .err.exp files: {wrong}"


@needs_nix
def test_gaps_okay_match_nix():
    paths = [GAPS_DIR / f"{n}.nix" for n in _cases(GAPS_DIR)
             if (GAPS_DIR / f"{n}.exp").exists()]
    got = eval_nix(paths)
    wrong = [p.stem for p in paths
             if got[p] != (True, (p.with_suffix(".exp")).read_text().rstrip("\n"))]
    assert not wrong, f"Nix disagrees with these notyetpassing .exp files: {wrong}"
