"""Tests of the lexer, parser and `--parse` printer (dtx.lang).

Golden files, in source form:
- `parse/NAME.nix` with `parse/NAME.exp`: what `nix-instantiate --parse` prints;
- `parse-fail/NAME.nix` with `parse-fail/NAME.err.exp`: the error Nix reports.

Conventions that keep the expected output stable: the `.nix` text, minus its one final newline,
is parsed as an `-E` expression (source name `«string»`) with `/` as the base directory and
`HOME=/home/test`, exactly how the `.exp` files were produced from Nix 2.8. Run with
`DTX_ACCEPT=1` to regenerate the `.exp` files from the installed oracle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from dtx.lang import ast
    from dtx.lang.errors import ParseError
    from dtx.lang.lexer import Tok, tokenize
    from dtx.lang.parser import parse, parse_file
    from dtx.lang.printer import show
    from dtx.lang.source import Source
except ImportError:  # a checkout without `pip install -e .`: map dtx.lang to lang/
    import importlib.util
    import types

    root = Path(__file__).resolve().parents[2]
    pkg = types.ModuleType("dtx")
    pkg.__path__ = []
    sys.modules.setdefault("dtx", pkg)
    spec = importlib.util.spec_from_file_location(
        "dtx.lang", root / "lang" / "__init__.py", submodule_search_locations=[str(root / "lang")])
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dtx.lang"] = mod
    spec.loader.exec_module(mod)
    from dtx.lang import ast
    from dtx.lang.errors import ParseError
    from dtx.lang.lexer import Tok, tokenize
    from dtx.lang.parser import parse, parse_file
    from dtx.lang.printer import show
    from dtx.lang.source import Source

HERE = Path(__file__).parent
OK = sorted((HERE / "parse").glob("*.nix"))
FAIL = sorted((HERE / "parse-fail").glob("*.nix"))
HOME = "/home/test"
ACCEPT = os.environ.get("DTX_ACCEPT") == "1"
NIX = shutil.which("nix-instantiate")


def _expr(path: Path) -> str:
    text = path.read_text()
    return text[:-1] if text.endswith("\n") else text


def _ours(expr: str) -> str:
    try:
        return show(parse(expr, base_dir="/")) + "\n"
    except ParseError as e:
        return str(e) + "\n"


def _oracle(expr: str) -> str:
    r = subprocess.run([NIX, "--parse", "-E", expr], capture_output=True, text=True, cwd="/",
                       env=dict(os.environ, HOME=HOME))
    return r.stdout if r.returncode == 0 else r.stderr


@pytest.fixture(autouse=True)
def _home(monkeypatch):
    monkeypatch.setenv("HOME", HOME)


@pytest.mark.parametrize("path", OK, ids=lambda p: p.name)
def test_parse_golden(path):
    exp = path.with_suffix(".exp")
    if ACCEPT and NIX:
        exp.write_text(_oracle(_expr(path)))
    assert _ours(_expr(path)) == exp.read_text()


@pytest.mark.parametrize("path", FAIL, ids=lambda p: p.name)
def test_parse_fail_golden(path):
    exp = path.with_suffix(".err.exp")
    if ACCEPT and NIX:
        exp.write_text(_oracle(_expr(path)))
    if path.name in KNOWN_DIFFERENT:
        pytest.xfail(KNOWN_DIFFERENT[path.name])
    assert _ours(_expr(path)) == exp.read_text()


# Cases where Nix's message or position is an artefact we do not reproduce.
KNOWN_DIFFERENT = {
    "fail-016.nix": "Nix reports a path without interpolation ending in a stray segment at 1:1",
}


@pytest.mark.skipif(NIX is None, reason="nix-instantiate not on PATH")
@pytest.mark.parametrize("path", OK + FAIL, ids=lambda p: p.name)
def test_against_live_oracle(path):
    if path.name in KNOWN_DIFFERENT:
        pytest.xfail(KNOWN_DIFFERENT[path.name])
    assert _ours(_expr(path)) == _oracle(_expr(path))


# --- unit tests ------------------------------------------------------------------------------

def _types(text: str) -> list[str]:
    return [t.type for t in tokenize(Source("«string»", text, "/"), None, Tok)]


@pytest.mark.parametrize("text, types", [
    ("a-b", ["ID"]),
    ("a - b", ["ID", "MINUS", "ID"]),
    ("a/b", ["PATH", "PATH_END"]),
    ("1e20", ["INT", "ID"]),
    ("1.5e3", ["FLOAT"]),
    (".5", ["FLOAT"]),
    ("x:x", ["URI"]),
    ("x: x", ["ID", "COLON", "ID"]),
    ("http://x.org/y?z", ["URI"]),
    ("<nixpkgs/lib>", ["SPATH"]),
    ("~/x", ["HPATH", "PATH_END"]),
    ("./a${b}c", ["PATH", "DOLLAR_CURLY", "ID", "RBRACE", "STR", "PATH_END"]),
    ("{ ... }", ["LBRACE", "ELLIPSIS", "RBRACE"]),
    ("if then else assert with let in rec inherit or",
     ["IF", "THEN", "ELSE", "ASSERT", "WITH", "LET", "IN", "REC", "INHERIT", "OR_KW"]),
    ('"a${ {b=1;}.b }c"', ["QUOTE", "STR", "DOLLAR_CURLY", "LBRACE", "ID", "EQUALS", "INT",
                           "SEMI", "RBRACE", "DOT", "ID", "RBRACE", "STR", "QUOTE"]),
    ("''a''${b}''", ["IND_STRING_OPEN", "IND_STR", "IND_ESC", "IND_STR", "IND_STRING_CLOSE"]),
    ("a /* c */ # d\n b", ["ID", "ID"]),
    ("== != <= >= && || -> // ++", ["EQ", "NEQ", "LEQ", "GEQ", "AND", "OR", "IMPL", "UPDATE",
                                   "CONCAT"]),
])
def test_lexer(text, types):
    assert _types(text) == types


def test_string_values():
    toks = list(tokenize(Source("«string»", r'"a\nb\t\"\\$${x}\q"', "/"), None, Tok))
    assert toks[1].value == 'a\nb\t"\\$${x}q'


def test_invalid_integer():
    with pytest.raises(ParseError, match="invalid integer '9223372036854775808'"):
        parse("9223372036854775808")


def test_spans():
    e = parse("let x = 1; in\n  x + 2")
    assert isinstance(e, ast.Let)
    body = e.body
    assert isinstance(body, ast.BinOp) and body.op == "+"
    assert body.span.line_col() == (2, 3)
    assert (body.span.start, body.span.end) == (16, 21)
    assert e.attrs["x"].span.line_col() == (1, 5)


def test_desugaring():
    e = parse("{ a.b = 1; a.c = 2; }")
    inner = e.attrs["a"].value
    assert isinstance(inner, ast.Attrs) and list(inner.attrs) == ["b", "c"]
    e = parse("let { body = 1; }")
    assert isinstance(e, ast.Select) and e.path == ["body"] and e.expr.rec
    e = parse("./a/../b", base_dir="/x/y")
    assert isinstance(e, ast.Path) and e.parts == ["/x/y/b"]
    e = parse('{ "a" = 1; ${"b"} = 2; "${c}" = 3; }')
    assert list(e.attrs) == ["a", "b"] and len(e.dynamic) == 1
    e = parse('"a${x}"')
    interp = e.parts[1]
    assert isinstance(e, ast.String) and e.parts[0] == "a"
    assert isinstance(interp, ast.Interpolation) and isinstance(interp.expr, ast.Var)
    assert interp.span.line_col() == (1, 3) and interp.expr.span.line_col() == (1, 5)
    e = parse("f x y")
    assert isinstance(e, ast.Call) and len(e.args) == 2


def test_errors_are_parse_errors():
    for text in ["{", "a b )", "let ${x} = 1; in 1", "{ a = 1; a = 2; }", "''", "%", "a/b/"]:
        with pytest.raises(ParseError):
            parse(text)


def test_duplicate_attribute_message():
    with pytest.raises(ParseError) as info:
        parse("{ a.b = 1; a.b = 2; }")
    assert info.value.message == "attribute 'a.b' already defined at (string):1:3"
    assert info.value.span.line_col() == (1, 12)


def test_parse_file(tmp_path):
    f = tmp_path / "x.nix"
    f.write_text("[ ./y {\n a = 1; } ]")
    e = parse_file(str(f))
    assert e.items[0].parts == [str(tmp_path / "y")]
    assert e.span.source.name == str(f)


# --- the generated parse tables --------------------------------------------------------------

def test_tables_match_grammar():
    from dtx.lang import nix_tables, parser
    grammar = Path(parser.__file__).with_name("nix.lark").read_bytes()
    assert nix_tables.GRAMMAR == parser._grammar_crc(grammar), (
        "lang/nix_tables.py is stale: run `python3 -m dtx.lang.parser --write-tables`")


def test_tables_are_what_lark_builds():
    pytest.importorskip("lark")
    import json

    from dtx.lang import nix_tables, parser
    built = json.loads(json.dumps(parser.build_tables()))
    assert json.loads(nix_tables.TABLES) == built, (
        "lang/nix_tables.py differs from lark's tables: run "
        "`python3 -m dtx.lang.parser --write-tables`")


def test_first_parse_does_not_import_lark():
    code = ("import sys, dtx.lang.parser as p; p.parse('{ a = 1; }'); "
            "sys.exit(3 if 'lark' in sys.modules else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    if "ModuleNotFoundError" in r.stderr:
        pytest.skip("dtx is not installed")
    assert r.returncode == 0, r.stderr or "lark was imported"
