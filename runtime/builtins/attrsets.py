"""Builtins over attribute sets: listing names and values, lookup, removal, intersection,
`mapAttrs`, `catAttrs` and `unsafeGetAttrPos`.

Names are listed in byte order (Python's code-point order on `str` is the same as UTF-8 byte
order). Attribute values are passed on as they are, unevaluated; `mapAttrs` builds thunks.
"""

from __future__ import annotations

from ..apply import call
from ..errors import EvalError
from ..values import Attrs, Thunk, force, type_error, want_attrs, want_list
from . import builtin
from .lists import want_plain_string

_MISSING = object()  # a default for dict lookups that `null` values cannot be mistaken for


@builtin("attrNames", 1)
def attr_names(s):
    """`builtins.attrNames set`: return the names of the attributes of `set`, sorted.

    ```nix
    builtins.attrNames { y = 1; x = "foo"; }  # [ "x" "y" ]
    ```"""
    return sorted(want_attrs(s).d)


@builtin("attrValues", 1)
def attr_values(s):
    """`builtins.attrValues set`: return the values of the attributes of `set`, in the order of
    their sorted names.

    ```nix
    builtins.attrValues { y = 1; x = "foo"; }  # [ "foo" 1 ]
    ```"""
    d = want_attrs(s).d
    return [d[name] for name in sorted(d)]


@builtin("getAttr", 2)
def get_attr(name, s):
    """`builtins.getAttr name set`: return the attribute `name` of `set` (`set.${name}`); a
    missing attribute is an error.

    ```nix
    builtins.getAttr "x" { x = 1; }  # 1
    ```"""
    name = want_plain_string(name)
    v = want_attrs(s).d.get(name, _MISSING)
    if v is _MISSING:
        raise EvalError(f"attribute '{name}' missing for call to 'getAttr'")
    return force(v)


@builtin("hasAttr", 2)
def has_attr(name, s):
    """`builtins.hasAttr name set`: return whether `set` has an attribute `name` (`set ?
    ${name}`).

    ```nix
    builtins.hasAttr "x" { x = 1; }  # true
    ```"""
    name = want_plain_string(name)
    return name in want_attrs(s).d


@builtin("removeAttrs", 2)
def remove_attrs(s, names):
    """`removeAttrs set list`: return `set` without the attributes named in `list`; names it
    does not have are ignored.

    ```nix
    removeAttrs { x = 1; y = 2; z = 3; } [ "a" "x" "z" ]  # { y = 2; }
    ```"""
    s = want_attrs(s)
    names = want_list(names)
    drop = {want_plain_string(force(n)) for n in names}
    d = s.d
    if not any(n in d for n in drop):
        return s
    pos = s.pos
    return Attrs({k: v for k, v in d.items() if k not in drop},
                 None if pos is None else {k: p for k, p in pos.items() if k not in drop})


@builtin("intersectAttrs", 2)
def intersect_attrs(e1, e2):
    """`builtins.intersectAttrs e1 e2`: return the attributes of `e2` whose names are also in
    `e1`.

    ```nix
    builtins.intersectAttrs { a = 0; b = 0; } { b = 1; c = 2; }  # { b = 1; }
    ```"""
    d1 = want_attrs(e1).d
    e2 = want_attrs(e2)
    d2 = e2.d
    if len(d1) < len(d2):
        d = {k: d2[k] for k in d1 if k in d2}
    else:
        d = {k: v for k, v in d2.items() if k in d1}
    pos = e2.pos
    if pos is not None:
        pos = {k: pos[k] for k in d if k in pos}
    return Attrs(d, pos)


def _call_name_value(env):
    f, name, value = env
    return call(call(force(f), name), value)


@builtin("mapAttrs", 2, lazy=True)
def map_attrs(f, s):
    """`builtins.mapAttrs f set`: return a set with the names of `set`, where each attribute
    `name` has the value `f name set.${name}`, computed lazily.

    ```nix
    builtins.mapAttrs (name: value: value * 10) { a = 1; b = 2; }  # { a = 10; b = 20; }
    ```"""
    s = want_attrs(force(s))
    return Attrs({name: Thunk(_call_name_value, (f, name, v)) for name, v in s.d.items()})


@builtin("catAttrs", 2)
def cat_attrs(name, xs):
    """`builtins.catAttrs name list`: return the values of the attribute `name` of the sets in
    `list` that have it, in order.

    ```nix
    builtins.catAttrs "a" [ { a = 1; } { b = 0; } { a = 2; } ]  # [ 1 2 ]
    ```"""
    name = want_plain_string(name)
    out = []
    for s in want_list(xs):
        s = force(s)
        if type(s) is not Attrs:
            raise type_error(s, "a set")
        v = s.d.get(name, _MISSING)
        if v is not _MISSING:
            out.append(v)
    return out


@builtin("unsafeGetAttrPos", 2)
def unsafe_get_attr_pos(name, s):
    """`builtins.unsafeGetAttrPos name set`: return where the attribute `name` of `set` was
    defined, as `{ file; line; column; }`, or `null` if that is not known.

    ```nix
    builtins.unsafeGetAttrPos "a" (import ./x.nix)  # { column = 3; file = "/…/x.nix"; line = 2; }
    ```"""
    name = want_plain_string(name)
    s = want_attrs(s)
    if s.pos is None:
        return None
    span = s.pos.get(name)
    if span is None:
        return None
    source = span.source
    # Like Nix 2.8, a source that is not a file (`-E`, stdin) names itself by its text.
    file = source.name if source.path is not None or source.name[:1] != "«" else source.text
    line, column = span.line_col()
    return Attrs({"file": file, "line": line, "column": column})
