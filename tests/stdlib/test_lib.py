"""Tests of lib against real Nix: the same lib expressions evaluated with dtx and with
nix-instantiate give the same results (the test imports dtx's lib in both).

The cases live in `lib-cases/*.cases`: blocks separated by blank lines, each an expression (one
or more lines) followed by `=> ` and the expected `--eval --strict` output, or the first line of
the error. The expected values come from nixpkgs' documentation of each function (and from its
definition where the documentation gives no example), so a function that is wrong in the same
way under both evaluators is still caught. Each expression is evaluated as
`let lib = import <stdlib/lib/default.dtx>; in EXPR` with `lib-cases/` as the base directory.

`test_dtx` evaluates the cases in-process, with a read-only store for the few derivations;
`test_nix` (when `nix-instantiate` is on PATH) runs them through Nix, many per process;
`test_same` checks that both evaluators print the same thing.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess

import pytest

from dtx.runtime.builtins.control import deep_force
from dtx.runtime.errors import EvalError
from dtx.runtime.eval import Evaluator, run_deep
from dtx.runtime.printer import print_value

HERE = os.path.dirname(os.path.abspath(__file__))
CASES_DIR = os.path.join(HERE, "lib-cases")
LIB = os.path.normpath(os.path.join(HERE, "..", "..", "stdlib", "lib", "default.dtx"))


def load_cases() -> list[tuple[str, str, str]]:
    """Return (id, expression, expected) for every case of every `.cases` file."""
    cases = []
    for path in sorted(glob.glob(os.path.join(CASES_DIR, "*.cases"))):
        name = os.path.basename(path)[:-len(".cases")]
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        expr: list[str] = []
        start = 0
        for number, line in enumerate(lines, 1):
            if line.startswith("#") and not expr:
                continue
            if line.startswith("=> "):
                assert expr, f"{path}:{number}: expected value without an expression"
                cases.append((f"{name}:{start}", "\n".join(expr), line[3:]))
                expr = []
            elif line.strip():
                if not expr:
                    start = number
                expr.append(line)
            else:
                assert not expr, f"{path}:{number}: expression without an expected value"
    return cases


CASES = load_cases()
IDS = [case_id for case_id, _, _ in CASES]


def wrap(expr: str) -> str:
    """Bind `lib` around a case's expression."""
    return f"let lib = import {LIB}; in\n{expr}"


# -- running dtx --------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def dtx_evaluator() -> Evaluator:
    """One evaluator for all cases, so `lib` is parsed once; derivations get a read-only store."""
    from dtx.runtime.glue import attach_store
    from dtx.runtime.store import LocalStore
    state = Evaluator()
    attach_store(state, LocalStore(store_dir=state.store_dir, read_only=True))
    state.trace_out = open(os.devnull, "w")
    return state


def run_dtx(expr: str) -> str:
    state = dtx_evaluator()
    try:
        value = state.eval_string(wrap(expr), CASES_DIR)
        deep_force(value)
        return print_value(value, strict=True)
    except EvalError as e:
        return e.render().splitlines()[0]


@functools.lru_cache(maxsize=None)
def dtx_results() -> tuple[str, ...]:
    return run_deep(lambda: tuple(run_dtx(expr) for _, expr, _ in CASES))


@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_dtx(index):
    case_id, expr, expected = CASES[index]
    actual = dtx_results()[index]
    assert actual == expected, f"{case_id}: {expr}\n  dtx:      {actual!r}\n  expected: {expected!r}"


# -- running Nix --------------------------------------------------------------------------------

NIX = shutil.which("nix-instantiate")


@functools.lru_cache(maxsize=None)
def nix_results() -> tuple[str, ...]:
    """Run every case through Nix, many per process; a failing case ends a process, and the
    next one carries on after it."""
    exprs = [wrap(expr) for _, expr, _ in CASES]
    results: list[str] = []
    env = dict(os.environ, NIX_PATH="")
    env.pop("IN_NIX_SHELL", None)
    while len(results) < len(exprs):
        todo = exprs[len(results):]
        p = subprocess.run([NIX, "--eval", "--strict", "-E", *todo], cwd=CASES_DIR,
                           capture_output=True, encoding="utf-8", errors="surrogateescape",
                           env=env)
        results += p.stdout.splitlines()[:len(todo)]
        if p.returncode != 0:
            errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
            results.append(errors[0] if errors else f"exit {p.returncode}")
    return tuple(results)


needs_nix = pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")


@needs_nix
@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_nix(index):
    case_id, expr, expected = CASES[index]
    actual = nix_results()[index]
    assert actual == expected, f"{case_id}: {expr}\n  nix:      {actual!r}\n  expected: {expected!r}"


@needs_nix
@pytest.mark.parametrize("index", range(len(CASES)), ids=IDS)
def test_same(index):
    case_id, expr, _ = CASES[index]
    assert dtx_results()[index] == nix_results()[index], case_id


def test_enough_cases():
    assert len(CASES) >= 150


def test_lib_has_the_documented_functions():
    """Every function the reference (docs/lib.md) lists is in `lib` under that name."""
    from gen_lib_docs import collect
    state = dtx_evaluator()
    names = [entry.name for entries in collect().values() for entry in entries]
    listing = " ".join(f'"{n}"' for n in names)
    text = f"let lib = import {LIB}; in builtins.filter (n: !(lib ? ${{n}})) [ {listing} ]"

    def run():
        value = state.eval_string(text, HERE)
        deep_force(value)
        return print_value(value, strict=True)
    assert run_deep(run) == "[ ]"
