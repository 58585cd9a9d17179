"""The generated reference (docs/reference/) is up to date, and every example in the builtins'
docs evaluates to the result the doc shows.

An example's expression is evaluated with `--strict` semantics in a scratch directory against a
read-only scratch store; its result is compared with the documented one after evaluating that too
(so `./foo` and `{ a = 1; }` compare as values). A documented result containing `…` is a pattern
over the printed value instead. Examples may use these fixtures: `drv`, a derivation named `a`;
the files `./x.nix` (`{ a = 1; }` with `a` on line 2, column 3) and `./file`.
"""

from __future__ import annotations

import os
import re
import sys
from argparse import Namespace

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_reference

EXAMPLES = gen_reference.doc_examples()
FIXTURE_NAMES = {"drv": 'derivation { name = "a"; builder = "b"; system = "s"; }'}


def test_reference_is_up_to_date():
    stale = gen_reference.stale()
    assert not stale, f"{stale} stale: run python3 tests/docs/gen_reference.py"


def test_every_builtin_is_documented():
    docs = gen_reference.builtin_docs()
    assert len(docs) > 90
    for d in docs:
        assert d.body or d.signature, f"builtins.{d.name} has no documentation"
        if d.arity > 0:
            assert d.signature, f"builtins.{d.name}: the doc does not start with its signature"
            assert d.signature.split()[0] in (d.name, f"builtins.{d.name}"), d.signature


def test_examples_were_found():
    assert len([e for e in EXAMPLES if e.expected is not None]) >= 70


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    """An evaluator over a read-only scratch store, in a directory holding the fixture files."""
    from dtx.runtime.cli.common import make_evaluator
    work = tmp_path_factory.mktemp("examples")
    (work / "x.nix").write_text("{\n  a = 1;\n}\n")
    (work / "file").write_text("contents\n")
    old = {k: os.environ.get(k) for k in ("DTX_HOME", "DTX_STORE_DIR")}
    os.environ["DTX_HOME"] = str(work / "home")
    os.environ.pop("DTX_STORE_DIR", None)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        yield make_evaluator(Namespace(include=[]), read_only=True)
    finally:
        os.chdir(cwd)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _eval_printed(state, text: str) -> str:
    from dtx.runtime.builtins.control import deep_force
    from dtx.runtime.eval import run_deep
    from dtx.runtime.printer import print_value
    names = [n for n in FIXTURE_NAMES if re.search(rf"\b{n}\b", text)]
    if names:
        bindings = " ".join(f"{n} = {FIXTURE_NAMES[n]};" for n in names)
        text = f"let {bindings} in\n{text}"

    def go():
        value = state.eval_string(text, os.getcwd())
        deep_force(value)
        return print_value(value, strict=True)
    return run_deep(go)


def _pattern(expected: str) -> re.Pattern:
    parts = [re.escape(p) for p in " ".join(expected.split()).split("…")]
    return re.compile(".*".join(parts) + r"\Z", re.DOTALL)


@pytest.mark.parametrize("example", EXAMPLES,
                         ids=[f"{e.builtin}-{i}" for i, e in enumerate(EXAMPLES)])
def test_example(example, evaluator):
    from dtx.lang.parser import parse
    if example.expected is None:
        parse(example.expr, "«example»", os.getcwd())
        return
    got = _eval_printed(evaluator, example.expr)
    if "…" in example.expected:
        assert _pattern(example.expected).match(" ".join(got.split())), \
            f"{example.expr}\n  gives {got}\n  the doc says {example.expected}"
    else:
        want = _eval_printed(evaluator, example.expected)
        assert got == want, f"{example.expr}\n  gives {got}\n  the doc says {example.expected}"


def test_example_parsing():
    """The example conventions, on a made-up doc."""
    body = ("```nix\nf 1  # 2\nf (-1)  # => 0\ng {\n  a = 1;\n}\n# => { a = 1; }\n"
            "h \"#x\"\n# 3\nonly.parsed\n```")
    saved = gen_reference.builtin_docs
    try:
        gen_reference.builtin_docs = lambda: [gen_reference.BuiltinDoc("f", 1, False, "f x", body)]
        found = gen_reference.doc_examples()
    finally:
        gen_reference.builtin_docs = saved
    assert [(e.expr, e.expected) for e in found] == [
        ("f 1", "2"), ("f (-1)", "0"), ("g {\n  a = 1;\n}", "{ a = 1; }"), ('h "#x"', "3"),
        ("only.parsed", None)]
