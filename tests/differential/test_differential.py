"""Differential tests: dtx against Nix 2.8 (`nix-instantiate`) on the same programs.

Two sources of programs:

- a hypothesis strategy (`programs`) that builds well-typed Nix expressions — integer and float
  arithmetic (with overflow), comparisons, strings with escapes and interpolation, indented
  strings, lists, attribute sets with selection / `or` / `?` / `//`, lambdas of every shape and
  their application, let / rec / with, if, and a selection of builtins. Each generator knows the
  type it produces and only uses operations that cannot fail on it, so programs evaluate without
  error; when both evaluators still fail, the first lines of their errors are compared. Builtins
  that dtx does not register yet are left out, so coverage grows as they land;
- the fixed corpus `corpus/*.nix` of tricky cases.

Every program is evaluated with `--eval --strict` by dtx in-process and by nix-instantiate, and
the printed values must be identical. Nix is called once per batch (`nix-instantiate --eval
--strict -E p1 p2 …` prints one line per expression), falling back to one call per program when
the batch fails.

Hypothesis profiles: `ci` (the default: 30 batches of 8 programs, derandomized so every run tests
the same programs) and `thorough` (1000 random batches); pick one with
`DTX_HYPOTHESIS_PROFILE=thorough`.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dtx.lang.errors import ParseError
from dtx.runtime.builtins import load_all
from dtx.runtime.builtins.control import deep_force
from dtx.runtime.errors import EvalError
from dtx.runtime.eval import Evaluator, run_deep
from dtx.runtime.printer import print_value

NIX = shutil.which("nix-instantiate")
CORPUS = Path(__file__).resolve().parent / "corpus"
BATCH = 8

settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True, database=None,
                          phases=[Phase.explicit, Phase.generate],
                          suppress_health_check=list(HealthCheck))
settings.register_profile("thorough", max_examples=1000, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("DTX_HYPOTHESIS_PROFILE", "ci"))

pytestmark = pytest.mark.skipif(NIX is None, reason="nix-instantiate is not on PATH")

AVAILABLE = set(load_all())


# -- running both evaluators ------------------------------------------------------------------

def run_dtx(text: str, base_dir: str = "/") -> str:
    """Evaluate strictly with dtx; return the printed value or the error's first line."""
    ev = Evaluator()
    ev.trace_out = io.StringIO()

    def run():
        v = ev.eval_string(text, base_dir)
        deep_force(v)
        return print_value(v, strict=True)

    try:
        return _as_nix_bytes(run_deep(run))
    except ParseError as e:
        return str(e).splitlines()[0]
    except EvalError as e:
        return e.render().splitlines()[0]


def _as_nix_bytes(text: str) -> str:
    # Nix strings are bytes (`substring` may split a UTF-8 sequence); show stray bytes the way
    # run_nix decodes them.
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def run_nix(args: list[str], expr: bool = True) -> list[str]:
    """Evaluate expressions (or files) with nix-instantiate; one result line each."""
    flag = ["-E"] if expr else []
    r = subprocess.run([NIX, "--eval", "--strict", *flag, *args], capture_output=True,
                       encoding="utf-8", errors="backslashreplace", cwd="/")
    lines = r.stdout.splitlines()
    if r.returncode == 0 and len(lines) == len(args):
        return lines
    if len(args) == 1:
        return [(r.stderr.splitlines() or [""])[0]]
    return [run_nix([a], expr)[0] for a in args]


def assert_same(programs: list[str], dtx: list[str], nix: list[str]) -> None:
    wrong = [f"program: {p}\n    dtx: {d}\n    nix: {n}"
             for p, d, n in zip(programs, dtx, nix) if d != n]
    assert not wrong, "dtx and Nix disagree:\n" + "\n".join(wrong)


# -- the program generator --------------------------------------------------------------------
#
# `gen(draw, ty, depth, env)` returns the source of an expression of type `ty` (one of INT,
# FLOAT, BOOL, STR, LIST_INT, LIST_STR, ATTRS); `env` maps the variables in scope to their types.
# Every expression is parenthesised where it is used as an operand, so precedence is tested by
# the dedicated precedence generator and the corpus rather than by accident.

INT, FLOAT, BOOL, STR, LIST_INT, LIST_STR, ATTRS = "int float bool str list_int list_str attrs".split()
TYPES = [INT, FLOAT, BOOL, STR, LIST_INT, LIST_STR, ATTRS]
# Attribute sets the generator builds always have these fields, so selection cannot fail.
ATTR_FIELDS = {"a": INT, "b": STR, "c": LIST_INT}
NAMES = ["x", "y", "z", "n", "s", "or_", "foo", "a1", "_u", "x'"]

INT_LITERALS = [0, 1, 2, 3, 7, 10, 42, 255, 1000, 65536, 2**31, 2**32 + 1, 3037000500,
                2**62, 9223372036854775807]
FLOAT_LITERALS = ["0.0", "1.0", "0.5", "0.1", "2.5", "3.14159", "100.0", "1.0e6", "1.5e7",
                  "1.0e-3", "123456.789", "0.333", "2.0e-7", ".25"]
PLAIN_CHARS = "abcXYZ 019_-.:/{}#é€"
FOLDL = "foldl'"
# `or` is left out: dtx prints it quoted (notyetpassing/print-or-attr-name.nix).
EXTRA_KEYS = ["zz", "B", "_x", '"1"', '"a b"']
UPDATE_KEYS = ["zz", "x.y", '"q r"', "d"]


def b(name: str) -> str | None:
    """Return `builtins.name` if dtx registers it, else None."""
    return f"builtins.{name}" if name in AVAILABLE else None


def without(env: dict, name: str) -> dict:
    return {k: v for k, v in env.items() if k != name}


def var_of(draw, env, ty):
    names = [n for n, t in env.items() if t == ty]
    return draw(st.sampled_from(names)) if names else None


def gen_int(draw, d, env):
    if d <= 0 or draw(st.integers(0, 3)) == 0:
        v = var_of(draw, env, INT)
        if v and draw(st.booleans()):
            return v
        n = draw(st.sampled_from(INT_LITERALS) | st.integers(-50, 50))
        return f"({n})" if n < 0 else str(n)
    choice = draw(st.integers(0, 14))
    sub = lambda ty: gen(draw, ty, d - 1, env)  # noqa: E731
    if choice <= 3:
        op = draw(st.sampled_from(["+", "-", "*"]))
        return f"({sub(INT)} {op} {sub(INT)})"
    if choice == 4:
        return f"({sub(INT)} / {draw(st.sampled_from([1, 2, 3, 7, -2, -5]))})"
    if choice == 5:
        return f"(if {sub(BOOL)} then {sub(INT)} else {sub(INT)})"
    if choice == 6:
        return gen_let(draw, INT, d, env)
    if choice == 7:
        return gen_lambda_app(draw, INT, d, env)
    if choice == 8:
        return f"({sub(ATTRS)}).a"
    if choice == 9:
        return f"({sub(ATTRS)}.{draw(st.sampled_from(['zz', 'q']))} or {sub(INT)})"
    if choice == 10 and b("length"):
        return f"({b('length')} {sub(LIST_INT)})"
    if choice == 11 and b("stringLength"):
        return f"({b('stringLength')} {sub(STR)})"
    if choice == 12 and b("foldl'"):
        return f"({b(FOLDL)} (acc: e: acc + e) {sub(INT)} {sub(LIST_INT)})"
    if choice == 13 and b("elemAt"):
        items = [sub(INT) for _ in range(draw(st.integers(1, 4)))]
        k = draw(st.integers(0, len(items) - 1))
        return f"({b('elemAt')} [ {' '.join(items)} ] {k})"
    if choice == 14:
        return gen_with(draw, INT, d, env)
    return f"(- {sub(INT)})"


def gen_float(draw, d, env):
    if d <= 0 or draw(st.integers(0, 2)) == 0:
        return draw(st.sampled_from(FLOAT_LITERALS))
    sub = lambda ty: gen(draw, ty, d - 1, env)  # noqa: E731
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return f"({sub(FLOAT)} {draw(st.sampled_from(['+', '-', '*']))} {sub(FLOAT)})"
    if choice == 1:
        return f"({sub(INT)} {draw(st.sampled_from(['+', '-', '*']))} {sub(FLOAT)})"
    if choice == 2:
        return f"({sub(FLOAT)} / {draw(st.sampled_from(['2', '3.0', '0.5', '7']))})"
    if choice == 3:
        return f"(if {sub(BOOL)} then {sub(FLOAT)} else {sub(FLOAT)})"
    return f"(- {sub(FLOAT)})"


def gen_bool(draw, d, env):
    if d <= 0:
        return draw(st.sampled_from(["true", "false"]))
    sub = lambda ty: gen(draw, ty, d - 1, env)  # noqa: E731
    choice = draw(st.integers(0, 8))
    if choice == 0:
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        ty = draw(st.sampled_from([INT, FLOAT, STR]))
        return f"({sub(ty)} {op} {sub(ty)})"
    if choice == 1:
        return f"({sub(BOOL)} {draw(st.sampled_from(['&&', '||', '->']))} {sub(BOOL)})"
    if choice == 2:
        return f"(!{sub(BOOL)})"
    if choice == 3:
        ty = draw(st.sampled_from(TYPES))
        return f"({sub(ty)} {draw(st.sampled_from(['==', '!=']))} {sub(ty)})"
    if choice == 4:
        path = draw(st.sampled_from(["a", "b", "zz", "a.b", "c.d", '"a"', "${\"b\"}"]))
        return f"({sub(ATTRS)} ? {path})"
    if choice == 5 and b("elem"):
        return f"({b('elem')} {sub(INT)} {sub(LIST_INT)})"
    if choice == 6 and b("isInt"):
        return f"({b('isInt')} {sub(draw(st.sampled_from(TYPES)))})"
    if choice == 7:
        return f"({sub(INT)} < {sub(FLOAT)})"
    return draw(st.sampled_from(["true", "false"]))


def string_literal(draw, d, env) -> str:
    """A double-quoted string with escapes, `$` edge cases and interpolation."""
    pieces = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.integers(0, 6))
        if kind <= 1:
            pieces.append(draw(st.text(PLAIN_CHARS, max_size=4)))
        elif kind == 2:
            pieces.append(draw(st.sampled_from(["\\n", "\\t", "\\r", "\\\\", '\\"', "\\${",
                                                "\\$", "\\a", "\\'"])))
        elif kind == 3:
            pieces.append(draw(st.sampled_from(["$a", "$$a", "$ ", "$1"])))
        elif kind == 4 and d > 0:
            pieces.append("${" + gen(draw, STR, d - 1, env) + "}")
        elif kind == 5 and d > 0 and b("toString"):
            pieces.append("${toString " + gen(draw, INT, d - 1, env) + "}")
        else:
            pieces.append(draw(st.sampled_from(["\n", "\t", "'", "''"])))
    return '"' + "".join(pieces) + '"'


def indented_literal(draw, d, env) -> str:
    """An indented string: varying indentation, escapes and interpolation."""
    lines = []
    for _ in range(draw(st.integers(0, 4))):
        indent = " " * draw(st.sampled_from([0, 1, 2, 4, 6])) + draw(st.sampled_from(["", "\t"]))
        pieces = []
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.integers(0, 4))
            if kind <= 1:
                pieces.append(draw(st.text(PLAIN_CHARS.replace("{", ""), max_size=4)))
            elif kind == 2:
                pieces.append(draw(st.sampled_from(["''$", "'''", "''\\n", "''\\t", "$a", '"'])))
            elif kind == 3 and d > 0:
                pieces.append("${" + (var_of(draw, env, STR) or '"v"') + "}")
            else:
                pieces.append(draw(st.sampled_from(["\\n", "x \\$ y"])))
        lines.append(indent + "".join(pieces))
    first = draw(st.sampled_from(["", "\n", " "]))
    return "''" + first + "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n  "])) + "''"


def gen_str(draw, d, env):
    v = var_of(draw, env, STR)
    if v and draw(st.integers(0, 3)) == 0:
        return v
    if d <= 0:
        return string_literal(draw, 0, env)
    sub = lambda ty: gen(draw, ty, d - 1, env)  # noqa: E731
    choice = draw(st.integers(0, 12))
    if choice <= 2:
        return string_literal(draw, d, env)
    if choice == 3:
        return indented_literal(draw, d, env)
    if choice == 4:
        return f"({sub(STR)} + {sub(STR)})"
    if choice == 5 and b("toString"):
        return f"(toString {sub(draw(st.sampled_from([INT, FLOAT, BOOL, LIST_STR])))})"
    if choice == 6 and b("concatStringsSep"):
        return f"({b('concatStringsSep')} {sub(STR)} {sub(LIST_STR)})"
    if choice == 7 and b("substring"):
        start, length = draw(st.integers(0, 6)), draw(st.integers(0, 6))
        return f"({b('substring')} {start} {length} {sub(STR)})"
    if choice == 8 and b("replaceStrings"):
        n = draw(st.integers(1, 2))
        old = " ".join(string_literal(draw, 0, env) for _ in range(n))
        new = " ".join(string_literal(draw, 0, env) for _ in range(n))
        return f"({b('replaceStrings')} [ {old} ] [ {new} ] {sub(STR)})"
    if choice == 9 and b("toJSON"):
        return f"({b('toJSON')} {sub(draw(st.sampled_from(TYPES)))})"
    if choice == 10:
        return f"({sub(ATTRS)}).b"
    if choice == 11:
        return gen_let(draw, STR, d, env)
    return gen_lambda_app(draw, STR, d, env)


def gen_list(draw, ty, d, env):
    elem = INT if ty == LIST_INT else STR
    sub = lambda t: gen(draw, t, d - 1, env)  # noqa: E731
    if d <= 0:
        return "[ " + " ".join(gen(draw, elem, 0, env) for _ in range(draw(st.integers(0, 3)))) + " ]"
    choice = draw(st.integers(0, 7))
    if choice <= 1:
        return "[ " + " ".join(sub(elem) for _ in range(draw(st.integers(0, 4)))) + " ]"
    if choice == 2:
        return f"({sub(ty)} ++ {sub(ty)})"
    if choice == 3 and b("map"):
        f = "(e: e * 2 + 1)" if elem == INT else '(e: e + "!")'
        return f"(map {f} {sub(ty)})"
    if choice == 4 and b("filter"):
        f = f"(e: e > {draw(st.integers(-5, 5))})" if elem == INT else '(e: e != "")'
        return f"({b('filter')} {f} {sub(ty)})"
    if choice == 5 and elem == STR and b("attrNames"):
        return f"({b('attrNames')} {sub(ATTRS)})"
    if choice == 6 and elem == INT and b("genList"):
        return f"({b('genList')} (i: i * {draw(st.integers(-3, 3))}) {draw(st.integers(0, 5))})"
    if choice == 7:
        return f"(if {sub(BOOL)} then {sub(ty)} else {sub(ty)})"
    return f"({sub(ATTRS)}).c" if elem == INT else "[ ]"


def gen_attrs(draw, d, env):
    """An attribute set with at least the fields of ATTR_FIELDS."""
    sub = lambda t: gen(draw, t, d - 1, env)  # noqa: E731
    if d <= 0:
        return "{ a = 1; b = \"s\"; c = [ 2 ]; }"
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return f"({sub(ATTRS)} // {sub(ATTRS)})"
    if choice == 1:
        key = draw(st.sampled_from(UPDATE_KEYS))
        return f"({sub(ATTRS)} // {{ a = {sub(INT)}; {key} = {sub(STR)}; }})"
    if choice == 2:
        # rec with references between fields; a nested attrpath.
        return (f"(rec {{ a = {sub(INT)}; b = {sub(STR)}; c = [ a ] ++ {sub(LIST_INT)}; "
                f"d.e = a; d.f = b; }})")
    if choice == 3:
        inner = gen(draw, INT, d - 1, {**env, "k": INT})
        value = gen(draw, INT, d - 1, without(env, "k"))
        return (f"(let k = {value}; in {{ inherit k; a = {inner}; b = {sub(STR)}; "
                f"c = [ k ]; ${{\"dyn\" + \"amic\"}} = k; ${{null}} = 1; }})")
    if choice == 4 and b("mapAttrs"):
        return f"({b('mapAttrs')} (name: v: v) {sub(ATTRS)})"
    fields = [f"{k} = {sub(t)};" for k, t in ATTR_FIELDS.items()]
    extra = [f"{draw(st.sampled_from(EXTRA_KEYS))} = {sub(INT)};"]
    items = draw(st.permutations(fields + extra))
    return "{ " + " ".join(items) + " }"


def gen_let(draw, ty, d, env):
    name = draw(st.sampled_from(NAMES))
    bound_ty = draw(st.sampled_from([INT, STR, FLOAT, LIST_INT]))
    # let and rec are recursive: the value must not see an outer variable of the same name.
    value = gen(draw, bound_ty, d - 1, without(env, name))
    body = gen(draw, ty, d - 1, {**env, name: bound_ty})
    if draw(st.booleans()):
        return f"(let {name} = {value}; in {body})"
    # rec set selected at once: the field refers to the other.
    return f"(rec {{ {name} = {value}; result = {body}; }}).result"


def gen_with(draw, ty, d, env):
    name = draw(st.sampled_from(NAMES))
    bound_ty = draw(st.sampled_from([INT, STR]))
    value = gen(draw, bound_ty, d - 1, env)
    # A name already in scope may be lexical (which beats `with`) or from an outer `with` (which
    # this one beats): the body simply does not use it.
    inner = without(env, name) if name in env else {**env, name: bound_ty}
    body = gen(draw, ty, d - 1, inner)
    return f"(with {{ {name} = {value}; }}; {body})"


def gen_lambda_app(draw, ty, d, env):
    shape = draw(st.integers(0, 3))
    sub = lambda t, e=env: gen(draw, t, d - 1, e)  # noqa: E731
    if shape == 0:
        return f"((p: {sub(ty, {**env, 'p': INT})}) {sub(INT)})"
    if shape == 1:
        body = sub(ty, {**env, "p": INT, "q": STR})
        default = sub(STR, {**without(env, "q"), "p": INT})
        return f"(({{ p, q ? {default} }}: {body}) {{ p = {sub(INT)}; }})"
    if shape == 2:
        body = sub(ty, {**env, "p": INT, "q": INT})
        return f"((args@{{ p, q ? p * 2, ... }}: {body}) {{ p = {sub(INT)}; extra = 1; }})"
    body = sub(ty, {**env, "p": INT, "q": INT})
    return f"((p: q: {body}) {sub(INT)} {sub(INT)})"


def gen(draw, ty, depth, env):
    if ty == INT:
        return gen_int(draw, depth, env)
    if ty == FLOAT:
        return gen_float(draw, depth, env)
    if ty == BOOL:
        return gen_bool(draw, depth, env)
    if ty == STR:
        return gen_str(draw, depth, env)
    if ty in (LIST_INT, LIST_STR):
        return gen_list(draw, ty, depth, env)
    return gen_attrs(draw, depth, env)


@st.composite
def programs(draw):
    ty = draw(st.sampled_from(TYPES))
    return gen(draw, ty, draw(st.integers(1, 4)), {})


# -- tests ------------------------------------------------------------------------------------

@given(st.lists(programs(), min_size=BATCH, max_size=BATCH))
def test_generated_programs_agree(batch):
    assert_same(batch, [run_dtx(p) for p in batch], run_nix(batch))


CORPUS_FILES = sorted(CORPUS.glob("*.nix"))


@pytest.fixture(scope="module")
def corpus_nix() -> dict[str, str]:
    return dict(zip((p.name for p in CORPUS_FILES),
                    run_nix([str(p) for p in CORPUS_FILES], expr=False)))


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.stem)
def test_corpus_agrees(path, corpus_nix):
    dtx = run_dtx(path.read_text(), str(path.parent))
    assert_same([path.name], [dtx], [corpus_nix[path.name]])
