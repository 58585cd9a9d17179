"""Printing values the way `nix-instantiate --eval` (Nix 2.8) prints them.

Without `--strict` only what has already been evaluated is shown; an unevaluated part prints as
`<CODE>`. A list or set met a second time while printing prints as `«repeated»`. Attribute names
are sorted and quoted when they are not plain identifiers; floats print like C++'s default
stream formatting (six significant digits).
"""

from __future__ import annotations

import math
import re

from .values import Attrs, CStr, Lambda, NixPath, PrimOp, PrimOpApp, Thunk

_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_'-]*\Z")
# `or` is a keyword only after a selection, so Nix prints it bare as an attribute name.
_KEYWORDS = frozenset({"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit"})


_NEEDS_ESCAPE = re.compile(r'["\\\n\r\t]|\$\{')
_ESCAPE = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "${": "\\${"}


def quote_string(s: str) -> str:
    """Quote a string as a Nix string literal, escaping `"`, `\\`, newlines, tabs and `${`."""
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPE[m.group()], s) + '"'


def attr_name(name: str) -> str:
    """Render an attribute name: bare when it is an identifier, quoted otherwise."""
    if _IDENT.match(name) and name not in _KEYWORDS:
        return name
    return quote_string(name)


def format_float(f: float) -> str:
    """Format a float as a C++ ostream does by default (`%g`)."""
    if f != f:
        return "-nan" if math.copysign(1.0, f) < 0 else "nan"
    if f in (float("inf"), float("-inf")):
        return "inf" if f > 0 else "-inf"
    return "%g" % f


def print_value(v, strict: bool = False) -> str:
    """Render a value; with `strict` it must already be deeply forced (or is forced here)."""
    out: list[str] = []
    _print(v, out, set(), strict)
    return "".join(out)


def _print(v, out: list, seen: set, strict: bool) -> None:
    if type(v) is Thunk:
        if v.code is not None:
            if not strict:
                out.append("<CODE>")
                return
            v.force()
        v = v.value
    t = type(v)
    if t is str or t is CStr:
        out.append(quote_string(v))
    elif t is bool:
        out.append("true" if v else "false")
    elif t is int:
        out.append(str(v))
    elif v is None:
        out.append("null")
    elif t is float:
        out.append(format_float(v))
    elif t is NixPath:
        out.append(v.path)
    elif t is Attrs:
        if id(v) in seen:
            out.append("«repeated»")
            return
        seen.add(id(v))
        out.append("{ ")
        for name in sorted(v.d):
            out.append(attr_name(name))
            out.append(" = ")
            _print(v.d[name], out, seen, strict)
            out.append("; ")
        out.append("}")
    elif t is list:
        if id(v) in seen:
            out.append("«repeated»")
            return
        seen.add(id(v))
        out.append("[ ")
        for item in v:
            _print(item, out, seen, strict)
            out.append(" ")
        out.append("]")
    elif t is Lambda:
        out.append("<LAMBDA>")
    elif t is PrimOp:
        out.append("<PRIMOP>")
    elif t is PrimOpApp:
        out.append("<PRIMOP-APP>")
    else:
        raise TypeError(f"not a Nix value: {v!r}")
