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
    return nix_batch(tuple(expr for _, expr, _ in CASES))


def nix_batch(exprs: tuple[str, ...]) -> tuple[str, ...]:
    """Run case expressions through Nix, many per process; a failing case ends a process, and
    the next one carries on after it."""
    if NIX is None:
        return ()
    exprs = [wrap(expr) for expr in exprs]
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
    """Every function the reference (docs/lib.md) lists is in `lib` where it says."""
    from gen_lib_docs import NOT_MERGED, SECTIONS, collect
    checks = []
    for section, entries in collect().items():
        attr = SECTIONS[section]
        for e in entries:
            checks.append(f'(if lib.{attr} ? "{e.name}" then [ ] else [ "{attr}.{e.name}" ])')
            if section not in NOT_MERGED:
                checks.append(f'(if lib ? "{e.name}" then [ ] else [ "{e.name}" ])')
    text = f"let lib = import {LIB}; in builtins.concatLists [ {' '.join(checks)} ]"
    state = dtx_evaluator()

    def run():
        value = state.eval_string(text, HERE)
        deep_force(value)
        return print_value(value, strict=True)
    assert run_deep(run) == "[ ]"


def test_every_binding_is_documented():
    from gen_lib_docs import undocumented
    assert undocumented() == []


def test_docs_are_up_to_date():
    """docs/lib.md is what gen_lib_docs.py generates (rerun it after editing a doc comment)."""
    from gen_lib_docs import DOC_PATH, render
    with open(DOC_PATH, encoding="utf-8") as f:
        assert f.read() == render()


# -- the examples of the doc comments -----------------------------------------------------------

# Examples that name files or store paths that do not exist: illustration only.
PLACEHOLDER_EXAMPLES = {"toDerivation", "importJSON", "importTOML", "readPathsFromFile",
                        "fileContents", "addContextFrom"}


def doc_examples() -> list[tuple[str, str, str]]:
    """Return (id, expression, expected) for each `expr` / `=> value` pair of every example."""
    from gen_lib_docs import SECTIONS, collect
    out = []
    for section, entries in collect().items():
        for e in entries:
            if e.name in PLACEHOLDER_EXAMPLES:
                continue
            expr: list[str] = []
            n = 0
            for line in e.example.splitlines():
                if line.lstrip().startswith("=> "):
                    n += 1
                    out.append((f"{SECTIONS[section]}.{e.name}.{n}", "\n".join(expr),
                                line.lstrip()[3:]))
                    expr = []
                elif line.strip():
                    expr.append(line)
    return out


EXAMPLES = doc_examples()


def wrap_example(expr: str) -> str:
    return f"with lib; with lib.versions;\n{expr}"


@functools.lru_cache(maxsize=None)
def example_results() -> tuple[tuple[str, ...], tuple[str, ...]]:
    dtx = run_deep(lambda: tuple(run_dtx(wrap_example(x)) for _, x, _ in EXAMPLES))
    return dtx, nix_batch(tuple(wrap_example(x) for _, x, _ in EXAMPLES))


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=[i for i, _, _ in EXAMPLES])
def test_doc_example(index):
    """Each documented example gives its documented result under dtx (and Nix, when present)."""
    case_id, expr, expected = EXAMPLES[index]
    dtx, nix = example_results()
    assert dtx[index] == expected, f"{case_id}: {expr}\n  dtx: {dtx[index]!r}"
    if NIX is not None:
        assert nix[index] == expected, f"{case_id}: {expr}\n  nix: {nix[index]!r}"
